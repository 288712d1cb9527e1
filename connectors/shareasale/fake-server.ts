// A fake ShareASale merchant API (`/w.cfm`) for tests and the demo, on 127.0.0.1 (port 0 by default).
// Faithful to the reference where it is known: signed requests (sha256 of token:date:action:secret,
// RFC 1123 date, either hex case), errors as text in a 200 body ("… - Error Code NNNN - ip"), 4002
// for an unregistered IP, monthly credits (1 per request, `apitokencount`), `transactiondetail` with
// mm/dd/yyyy dates, pages of `pageSize` rows and a header row, pipe or CSV, and void/edit by order
// number + order date with "Transaction Not Found" / "Multiple Transactions Found".
// Invented where the reference has nothing: error codes other than 4002 (4001 auth, 4031 credits),
// the apitokencount and void/edit success bodies, and the column headers (DEFAULT_SAS_COLUMNS).
import http from 'node:http';
import { createHash } from 'node:crypto';
import { stringify } from 'csv-stringify/sync';
import { DateTime } from 'luxon';
import { Decimal } from 'decimal.js';
import { listenOnLoopback, lowerBound } from '../fake-http.ts';

export const DEFAULT_SAS_COLUMNS = [
  'Trans ID', 'User ID', 'Merchant ID', 'Trans Date', 'Trans Amount', 'Commission', 'Comment', 'Voided', 'Lock Date',
  'Paid Date', 'Order Number', 'Trans Type', 'Affiliate Organization', 'Affiliate Website', 'Click Date',
];

export interface FakeSasStore {
  merchantId: string;
  token: string;
  secret: string;
  /** transactiondetail header, in order; rows are keyed by these names. */
  columns: string[];
  /** API-shaped rows: column header → text, as ShareASale prints them. Build them with `fakeSasRow`. */
  transactions: Array<Record<string, string>>;
  credits: { used: number; limit: number };
  /** Registered IPs; null accepts any (the "IP match only for version X and lower" setting). */
  allowedIps: string[] | null;
  pageSize: number;
  /** ShareASale's wall-clock zone for dates in and out. */
  timezone: string;
  /** Accepted skew of x-ShareASale-Date (ShareASale's own window is not documented). */
  maxSkewMs: number;
  /** Applied void/edit requests, in order. */
  applied: Array<{ action: 'void' | 'edit'; orderNumber: string; date: string; params: Record<string, string> }>;
}

export type SasFault =
  | { kind: 'http500'; action?: string; times?: number }
  | { kind: 'reset'; action?: string; times?: number }
  | { kind: 'text'; text: string; action?: string; times?: number }
  | { kind: 'delay'; delayMs: number; action?: string; times?: number }
  /** Appends a malformed line (wrong field count) to a transactiondetail page. */
  | { kind: 'badrow'; action?: string; times?: number };

export interface FakeSasRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  reply: string;
}

export interface FakeShareASale {
  url: string;
  store: FakeSasStore;
  setFaults(faults: SasFault[]): void;
  requests: FakeSasRequest[];
  /**
   * Builds now the list index by time and by order number, which a list call would otherwise build on first use after a
   * change (a benchmark loads data, then warms, so the timed run does not pay for sorting the
   * collection, as a real API would not).
   */
  warmIndexes(): void;
  close(): Promise<void>;
}

/** One API-shaped row. Dates may be Date (printed in the store zone) or ShareASale text. */
export function fakeSasRow(
  r: {
    transId: string | number;
    userId: string | number;
    transDate: Date | string;
    amount: string;
    commission: string;
    orderNumber?: string;
    comment?: string;
    voided?: string;
    lockDate?: string;
    paidDate?: string;
    transType?: string;
    organization?: string;
    website?: string;
    clickDate?: string;
    merchantId?: string;
  },
  zone = 'America/Chicago',
): Record<string, string> {
  const date = r.transDate instanceof Date ? sasDateTime(r.transDate, zone) : r.transDate;
  return {
    'Trans ID': String(r.transId),
    'User ID': String(r.userId),
    'Merchant ID': r.merchantId ?? '',
    'Trans Date': date,
    'Trans Amount': r.amount,
    Commission: r.commission,
    Comment: r.comment ?? `Sale - ${r.orderNumber ?? ''}`,
    Voided: r.voided ?? '',
    'Lock Date': r.lockDate ?? '',
    'Paid Date': r.paidDate ?? '',
    'Order Number': r.orderNumber ?? '',
    'Trans Type': r.transType ?? 'Sale',
    'Affiliate Organization': r.organization ?? '',
    'Affiliate Website': r.website ?? '',
    'Click Date': r.clickDate ?? '',
  };
}

const SAS_DATETIME = 'MM/dd/yyyy hh:mm:ss a';
const zoneOffsets = new Map<string, number | null>();
let meridiems: [string, string] | undefined;
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/**
 * `DateTime.fromJSDate(d, { zone }).toFormat('MM/dd/yyyy hh:mm:ss a')` without a luxon DateTime per
 * call (the world loader prints hundreds of thousands): the zone's offset is looked up once per
 * 15-minute slot (offset changes fall on such boundaries) and the wall clock is printed by hand.
 */
export function sasDateTime(d: Date, zone: string): string {
  const ms = d.getTime();
  const slot = Math.floor(ms / 900_000);
  const key = `${zone}|${slot}`;
  let off = zoneOffsets.get(key);
  if (off === undefined) {
    const at = DateTime.fromMillis(slot * 900_000, { zone });
    off = at.isValid && Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? at.offset : null;
    if (zoneOffsets.size > 500_000) zoneOffsets.clear();
    zoneOffsets.set(key, off);
  }
  if (off === null) return DateTime.fromJSDate(d, { zone }).toFormat(SAS_DATETIME);
  meridiems ??= [DateTime.fromMillis(0, { zone: 'UTC' }).toFormat('a'), DateTime.fromMillis(12 * 3_600_000, { zone: 'UTC' }).toFormat('a')];
  const w = new Date(ms + off * 60_000);
  const y = w.getUTCFullYear();
  if (y < 1000 || y > 9999) return DateTime.fromJSDate(d, { zone }).toFormat(SAS_DATETIME);
  const h = w.getUTCHours();
  return `${pad(w.getUTCMonth() + 1)}/${pad(w.getUTCDate())}/${y} ${pad(h % 12 || 12)}:${pad(w.getUTCMinutes())}:${pad(w.getUTCSeconds())} ${meridiems[h < 12 ? 0 : 1]}`;
}

function lowerKeys(q: URLSearchParams): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of q) o[k.toLowerCase()] = v;
  return o;
}

export async function startFakeShareASale(init: Partial<FakeSasStore> & { port?: number } = {}): Promise<FakeShareASale> {
  const store: FakeSasStore = {
    merchantId: init.merchantId ?? '12345',
    token: init.token ?? 'fake-sas-token',
    secret: init.secret ?? 'fake-sas-secret-0123456789',
    columns: init.columns ?? [...DEFAULT_SAS_COLUMNS],
    transactions: init.transactions ?? [],
    credits: init.credits ?? { used: 0, limit: 200 },
    allowedIps: init.allowedIps === undefined ? null : init.allowedIps,
    pageSize: init.pageSize ?? 5000,
    timezone: init.timezone ?? 'America/Chicago',
    maxSkewMs: init.maxSkewMs ?? 15 * 60_000,
    applied: [],
  };
  let faults: Array<SasFault & { left: number }> = [];
  const requests: FakeSasRequest[] = [];

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://fake');
    const q = lowerKeys(u.searchParams);
    const action = q.action ?? '';
    const entry: FakeSasRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: { 'x-shareasale-date': header(req, 'x-shareasale-date'), 'x-shareasale-authentication': header(req, 'x-shareasale-authentication') },
      reply: '',
    };
    requests.push(entry);
    const send = (text: string, status = 200): void => {
      entry.reply = text.slice(0, 500);
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    const fault = faults.find((f) => f.left > 0 && (!f.action || f.action === action));
    if (fault) fault.left--;
    const go = (): void => {
      if (fault?.kind === 'http500') return send('Internal Server Error', 500);
      if (fault?.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'text') return send(fault.text);
      if (u.pathname !== '/w.cfm') return send('Not Found', 404);
      const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      const authError = checkAuth(store, q, req, action, ip);
      if (authError) return send(authError);
      if (store.allowedIps && !store.allowedIps.includes(ip)) return send(`Error: Invalid Account - Error Code 4002 - ${ip}`);
      if (store.credits.used >= store.credits.limit) return send(`Error: Monthly API request limit exceeded - Error Code 4031 - ${ip}`);
      store.credits.used++;
      switch (action) {
        case 'transactiondetail':
          return send(transactionDetail(store, q, fault?.kind === 'badrow'));
        case 'apitokencount':
          return send(`Credits Used|Monthly Limit|Credits Remaining\n${store.credits.used}|${store.credits.limit}|${store.credits.limit - store.credits.used}\n`);
        case 'void':
        case 'edit':
          return send(voidOrEdit(store, action, q));
        default:
          return send(`Error: Invalid Request - Error Code 4000 - ${ip}`);
      }
    };
    if (fault?.kind === 'delay') setTimeout(go, fault.delayMs);
    else go();
  });
  const listening = await listenOnLoopback(server, init.port ?? 0);
  return {
    url: listening.origin,
    store,
    requests,
    warmIndexes() {
      sasIndex(store);
    },
    setFaults(list) {
      faults = list.map((f) => ({ ...f, left: f.times ?? 1 }));
    },
    close: listening.close,
  };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function checkAuth(store: FakeSasStore, q: Record<string, string>, req: http.IncomingMessage, action: string, ip: string): string | undefined {
  const bad = `Error: Invalid Authentication - Error Code 4001 - ${ip}`;
  if ((q.merchantid ?? '') !== store.merchantId || (q.token ?? '') !== store.token || !action) return bad;
  const date = header(req, 'x-shareasale-date');
  const sig = header(req, 'x-shareasale-authentication');
  if (!date || !sig) return bad;
  const t = Date.parse(date);
  if (Number.isNaN(t) || Math.abs(Date.now() - t) > store.maxSkewMs) return bad;
  const expected = createHash('sha256').update(`${store.token}:${date}:${action}:${store.secret}`).digest('hex');
  return sig.toLowerCase() === expected ? undefined : bad;
}

function parseUsDate(v: string | undefined, zone: string): DateTime | undefined {
  if (!v) return undefined;
  const d = DateTime.fromFormat(v, 'M/d/yyyy', { zone });
  return d.isValid ? d : undefined;
}

// Parsing every row's date on every request dominated the fake's CPU time in the benchmark: parse once per row (and date text, zone).
const rowTimes = new WeakMap<Record<string, string>, { key: string; at: DateTime | undefined }>();

function rowTime(row: Record<string, string>, zone: string): DateTime | undefined {
  const key = `${zone}|${row['Trans Date'] ?? ''}`;
  const hit = rowTimes.get(row);
  if (hit && hit.key === key) return hit.at;
  const at = parseRowTime(row, zone);
  rowTimes.set(row, { key, at });
  return at;
}

function parseRowTime(row: Record<string, string>, zone: string): DateTime | undefined {
  const t = row['Trans Date'] ?? '';
  for (const f of ['MM/dd/yyyy hh:mm:ss a', 'M/d/yyyy h:mm:ss a', 'M/d/yyyy H:mm:ss', 'M/d/yyyy']) {
    const d = DateTime.fromFormat(t, f, { zone, locale: 'en-US' });
    if (d.isValid) return d;
  }
  return undefined;
}

/**
 * Rows by time (sorted once) and by order number, rebuilt whenever the row list or a row's date or
 * order number differs from what was indexed (checked on every request: one pass of identity
 * comparisons, no parsing), or the store's zone changes. Windows already sorted by Trans ID are kept
 * for the following pages.
 */
interface SasIndex {
  zone: string;
  rows: Array<Record<string, string>>;
  dates: string[];
  orders: string[];
  /** Positions of the rows with a readable date, by time then position. */
  byTime: number[];
  times: number[];
  byOrder: Map<string, number[]>;
  windows: Map<string, Array<Record<string, string>>>;
}
const sasIndexes = new WeakMap<FakeSasStore, SasIndex>();

function sasIndex(store: FakeSasStore): SasIndex {
  const all = store.transactions;
  const zone = store.timezone;
  const hit = sasIndexes.get(store);
  if (hit && hit.zone === zone && hit.rows.length === all.length) {
    let same = true;
    for (let i = 0; i < all.length && same; i++) {
      const r = all[i]!;
      same = r === hit.rows[i] && r['Trans Date'] === hit.dates[i] && r['Order Number'] === hit.orders[i];
    }
    if (same) return hit;
  }
  const rows = [...all];
  const ms = rows.map((r) => rowTime(r, zone)?.toMillis());
  const byTime = rows.map((_, i) => i).filter((i) => ms[i] !== undefined);
  byTime.sort((a, b) => ms[a]! - ms[b]! || a - b);
  const byOrder = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const k = r['Order Number'] ?? '';
    const l = byOrder.get(k);
    if (l) l.push(i);
    else byOrder.set(k, [i]);
  });
  const idx: SasIndex = { zone, rows, dates: rows.map((r) => r['Trans Date']!), orders: rows.map((r) => r['Order Number']!), byTime, times: byTime.map((i) => ms[i]!), byOrder, windows: new Map() };
  sasIndexes.set(store, idx);
  return idx;
}

const byTransId = (a: Record<string, string>, b: Record<string, string>): number => Number(a['Trans ID']) - Number(b['Trans ID']) || String(a['Trans ID']).localeCompare(String(b['Trans ID']));

function transactionDetail(store: FakeSasStore, q: Record<string, string>, badRow: boolean): string {
  const zone = store.timezone;
  const end = parseUsDate(q.dateend, zone)?.endOf('day') ?? DateTime.now().setZone(zone).endOf('day');
  const start = parseUsDate(q.datestart, zone)?.startOf('day') ?? end.minus({ days: 30 }).startOf('day');
  const page = Math.max(1, Number(q.page ?? '1') || 1);
  const idx = sasIndex(store);
  const from = start.toMillis();
  const to = end.toMillis();
  const wkey = `${from}|${to}`;
  let rows = idx.windows.get(wkey);
  if (!rows) {
    // The window's rows in the list's order, then sorted by Trans ID (a stable sort, as before).
    const lo = lowerBound(idx.times, (t) => t >= from);
    const hi = lowerBound(idx.times, (t) => t > to, lo);
    rows = idx.byTime.slice(lo, hi).sort((a, b) => a - b).map((i) => idx.rows[i]!).sort(byTransId);
    if (idx.windows.size >= 16) idx.windows.clear();
    idx.windows.set(wkey, rows);
  }
  const slice = rows.slice((page - 1) * store.pageSize, page * store.pageSize);
  const cells = slice.map((r) => store.columns.map((c) => r[c] ?? ''));
  if (q.format === 'csv') {
    let out = stringify([store.columns, ...cells]);
    if (badRow) out += 'oops,"only",three\n';
    return out;
  }
  const clean = (v: string): string => (v.includes('|') || v.includes('\n') ? v.replace(/[|\n]/g, ' ') : v);
  let out = [store.columns.join('|'), ...cells.map((c) => c.map(clean).join('|'))].join('\n') + '\n';
  if (badRow) out += 'oops|only|three\n';
  return out;
}

function voidOrEdit(store: FakeSasStore, action: 'void' | 'edit', q: Record<string, string>): string {
  const zone = store.timezone;
  const date = parseUsDate(q.date, zone);
  const order = q.ordernumber ?? '';
  if (!date || !order) return 'Error: Invalid Request - Error Code 4000';
  const idx = sasIndex(store);
  const matches = (idx.byOrder.get(order) ?? []).map((i) => idx.rows[i]!).filter((r) => rowTime(r, zone)?.hasSame(date, 'day'));
  if (matches.length === 0) return 'Transaction Not Found';
  if (matches.length > 1) return 'Multiple Transactions Found (ambiguous order number)';
  const row = matches[0]!;
  store.applied.push({ action, orderNumber: order, date: q.date ?? '', params: { ...q } });
  if (action === 'void') {
    row.Voided = DateTime.now().setZone(zone).toFormat('MM/dd/yyyy');
    if (q.reason) row.Comment = q.reason;
    return 'Transaction Voided';
  }
  if (q.newamount !== undefined) row['Trans Amount'] = q.newamount;
  if (q.newspecific !== undefined) row.Commission = q.newspecific;
  else if (q.newpercentage !== undefined) {
    row.Commission = new Decimal(row['Trans Amount'] || '0').times(new Decimal(q.newpercentage)).dividedBy(100).toFixed(2, Decimal.ROUND_HALF_UP);
  }
  if (q.newcomment !== undefined) row.Comment = q.newcomment;
  return 'Transaction Edited';
}
