// A fake Awin advertiser API for tests and the demo, on 127.0.0.1 (port 0 by default), following
// reference §5: Bearer token; 20 calls/minute per token answered with 429 {"error":"request.limit.exceeded"};
// GET /advertisers/{id}/transactions/ with startDate/endDate (yyyy-MM-ddTHH:mm:ss, ≤31 days apart),
// timezone (one of Awin's list; UTC when missing, as current docs say), dateType transaction|validation|
// amendment, status, ids; POST …/transactions/batch (≤40,000 items) → {jobId}; GET …/transactions/jobs
// and …/jobs/{jobId}?output=errors|all with failedTransactions[{transactionId, code}].
// Not in the reference, so invented here: the batch reply shape {jobId}, job statuses before DONE
// (QUEUED, IN_PROGRESS), failure codes other than [404 NOT_FOUND], and how amendments are dated (the
// store keeps `amendedAt` beside the records).
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { DateTime } from 'luxon';
import { Decimal } from 'decimal.js';
import { listenOnLoopback, lowerBound } from '../fake-http.ts';

export const FAKE_AWIN_TIMEZONES = ['Europe/Berlin', 'Europe/Paris', 'Europe/London', 'Europe/Dublin', 'Canada/Eastern', 'Canada/Central', 'Canada/Mountain', 'Canada/Pacific', 'US/Eastern', 'US/Central', 'US/Mountain', 'US/Pacific', 'UTC'];

/** An API-shaped transaction. Dates are stored as UTC wall-clock (what `timezone=UTC` returns). */
export interface FakeAwinTransaction {
  id: number;
  advertiserId: number;
  publisherId: number;
  commissionStatus: 'pending' | 'approved' | 'declined' | 'deleted';
  commissionAmount: { amount: number; currency: string };
  saleAmount: { amount: number; currency: string };
  transactionDate: string;
  validationDate: string | null;
  clickDate?: string | null;
  orderRef?: string | null;
  clickRefs?: Record<string, string | null>;
  transactionParts: Array<{ commissionGroupId?: number; commissionGroupCode: string; commissionGroupName?: string; amount: number; commissionAmount: number; advertiserCost?: number | null }>;
  siteName?: string;
  declineReason?: string | null;
  amended?: boolean;
  amendReason?: string | null;
  oldSaleAmount?: { amount: number; currency: string } | null;
  oldCommissionAmount?: { amount: number; currency: string } | null;
  paidToPublisher?: boolean;
  type?: string;
  [k: string]: unknown;
}

export interface FakeAwinJob {
  jobId: string;
  status: string;
  creationDate: string;
  completionDate: string | null;
  transactions: number;
  errors: number;
  failedTransactions: Array<{ transactionId?: number | string; orderRef?: string; code: string; message: string }>;
  /** Polls left before DONE. */
  pollsLeft: number;
  items: unknown[];
}

export interface FakeAwinStore {
  advertiserId: number;
  token: string;
  transactions: FakeAwinTransaction[];
  /** id → UTC ISO instant of the last amendment (drives dateType=amendment). */
  amendedAt: Record<string, string>;
  rateLimit: { requests: number; windowMs: number };
  maxBatch: number;
  /** GETs of a job that answer IN_PROGRESS before it is DONE. */
  jobPollsUntilDone: number;
  jobs: FakeAwinJob[];
}

export type AwinFault =
  | { kind: 'status'; status: number; body?: unknown; path?: string; method?: string; times?: number }
  | { kind: 'reset'; path?: string; method?: string; times?: number }
  | { kind: 'delay'; delayMs: number; path?: string; method?: string; times?: number }
  | { kind: 'rateLimit'; path?: string; method?: string; times?: number };

export interface FakeAwinRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
  status: number;
  at: number;
}

export interface FakeAwin {
  url: string;
  store: FakeAwinStore;
  setFaults(faults: AwinFault[]): void;
  requests: FakeAwinRequest[];
  /**
   * Builds now the list indexes by transaction and by validation date, which a list call would otherwise build on first use after a
   * change (a benchmark loads data, then warms, so the timed run does not pay for sorting the
   * collection, as a real API would not).
   */
  warmIndexes(): void;
  close(): Promise<void>;
}

const FMT = "yyyy-MM-dd'T'HH:mm:ss";

/** One API-shaped transaction; money as decimal numbers like Awin's JSON. */
export function fakeAwinTransaction(t: {
  id: number;
  publisherId: number;
  advertiserId?: number;
  transactionDate: Date;
  sale: string;
  commission: string;
  currency?: string;
  status?: FakeAwinTransaction['commissionStatus'];
  validationDate?: Date | null;
  orderRef?: string;
  clickRef?: string;
  clickDate?: Date;
  group?: string;
  siteName?: string;
}): FakeAwinTransaction {
  const currency = t.currency ?? 'USD';
  const utc = (d: Date): string => DateTime.fromJSDate(d, { zone: 'UTC' }).toFormat(FMT);
  return {
    id: t.id,
    url: '',
    advertiserId: t.advertiserId ?? 1001,
    publisherId: t.publisherId,
    commissionSharingPublisherId: null,
    siteName: t.siteName ?? `Publisher ${t.publisherId}`,
    commissionStatus: t.status ?? 'pending',
    commissionAmount: { amount: Number(t.commission), currency },
    saleAmount: { amount: Number(t.sale), currency },
    ipHash: null,
    customerCountry: 'US',
    clickRefs: { clickRef: t.clickRef ?? null, clickRef2: null, clickRef3: null, clickRef4: null, clickRef5: null, clickRef6: null },
    clickDate: t.clickDate ? utc(t.clickDate) : null,
    transactionDate: utc(t.transactionDate),
    validationDate: t.validationDate ? utc(t.validationDate) : null,
    type: 'Commission group transaction',
    declineReason: null,
    voucherCodeUsed: false,
    voucherCode: null,
    lapseTime: 0,
    amended: false,
    amendReason: null,
    oldSaleAmount: null,
    oldCommissionAmount: null,
    clickDevice: 'Desktop',
    publisherUrl: null,
    advertiserCountry: 'US',
    orderRef: t.orderRef ?? null,
    customParameters: [],
    transactionParts: [{ commissionGroupId: 1, commissionGroupCode: t.group ?? 'DEFAULT', commissionGroupName: 'Default', amount: Number(t.sale), commissionAmount: Number(t.commission), advertiserCost: null }],
    paidToPublisher: false,
    paymentId: 0,
    transactionQueryId: 0,
    originalSaleAmount: null,
  };
}

export async function startFakeAwin(init: Partial<FakeAwinStore> & { port?: number } = {}): Promise<FakeAwin> {
  const store: FakeAwinStore = {
    advertiserId: init.advertiserId ?? 1001,
    token: init.token ?? 'fake-awin-token',
    transactions: init.transactions ?? [],
    amendedAt: init.amendedAt ?? {},
    rateLimit: init.rateLimit ?? { requests: 20, windowMs: 60_000 },
    maxBatch: init.maxBatch ?? 40_000,
    jobPollsUntilDone: init.jobPollsUntilDone ?? 1,
    jobs: init.jobs ?? [],
  };
  let faults: Array<AwinFault & { left: number }> = [];
  const requests: FakeAwinRequest[] = [];
  const hits = new Map<string, number[]>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      const entry: FakeAwinRequest = { method: req.method ?? 'GET', path: u.pathname, query: Object.fromEntries(u.searchParams), authorization: req.headers.authorization, body, status: 0, at: Date.now() };
      requests.push(entry);
      const send = (status: number, payload: unknown): void => {
        entry.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const fault = faults.find((f) => f.left > 0 && (!f.path || u.pathname.includes(f.path)) && (!f.method || f.method === req.method));
      if (fault) fault.left--;
      const go = (): void => {
        if (fault?.kind === 'status') return send(fault.status, fault.body ?? { error: 'server.error', description: `Internal Server Error (${fault.status})` });
        if (fault?.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        if (fault?.kind === 'rateLimit') return send(429, { error: 'request.limit.exceeded', description: 'Too Many Requests (429 TOO_MANY_REQUESTS)' });
        const auth = req.headers.authorization ?? '';
        const token = /^Bearer (.+)$/.exec(auth)?.[1] ?? u.searchParams.get('accessToken') ?? '';
        if (token !== store.token) return send(401, { error: 'unauthorized', description: 'Unauthorized (401 UNAUTHORIZED)' });
        const now = Date.now();
        const recent = (hits.get(token) ?? []).filter((t) => now - t < store.rateLimit.windowMs);
        if (recent.length >= store.rateLimit.requests) {
          hits.set(token, recent);
          return send(429, { error: 'request.limit.exceeded', description: 'Too Many Requests (429 TOO_MANY_REQUESTS)' });
        }
        recent.push(now);
        hits.set(token, recent);
        const m = /^\/advertisers\/(\d+)\/transactions(\/batch|\/jobs(?:\/([^/]+))?)?\/?$/.exec(u.pathname);
        if (!m) return send(404, { error: 'not.found', description: 'Not Found (404 NOT_FOUND)' });
        if (Number(m[1]) !== store.advertiserId) return send(403, { error: 'forbidden', description: 'Forbidden (403 FORBIDDEN)' });
        if (!m[2] && req.method === 'GET') return listTransactions(store, u.searchParams, send);
        if (m[2] === '/batch' && req.method === 'POST') return submitBatch(store, body, send);
        if (m[2]?.startsWith('/jobs') && req.method === 'GET') {
          if (!m[3]) return send(200, store.jobs.map(publicJob));
          const job = store.jobs.find((j) => j.jobId === m[3]);
          if (!job) return send(404, { error: 'not.found', description: 'Not Found (404 NOT_FOUND)' });
          if (job.pollsLeft > 0) job.pollsLeft--;
          else if (job.status !== 'DONE') {
            job.status = 'DONE';
            job.completionDate = new Date().toISOString();
          }
          const out = publicJob(job);
          const output = u.searchParams.get('output');
          if (output !== 'errors' && output !== 'all') delete (out as Partial<typeof out>).failedTransactions;
          return send(200, out);
        }
        return send(405, { error: 'method.not.allowed', description: 'Method Not Allowed (405)' });
      };
      if (fault?.kind === 'delay') setTimeout(go, fault.delayMs);
      else go();
    });
  });
  const listening = await listenOnLoopback(server, init.port ?? 0);
  return {
    url: listening.origin,
    store,
    requests,
    warmIndexes() {
      awinDateIndex(store, 'transactionDate');
      awinDateIndex(store, 'validationDate');
    },
    setFaults(list) {
      faults = list.map((f) => ({ ...f, left: f.times ?? 1 }));
    },
    close: listening.close,
  };
}

function publicJob(j: FakeAwinJob): Omit<FakeAwinJob, 'pollsLeft' | 'items'> {
  const { pollsLeft: _p, items: _i, ...rest } = j;
  return { ...rest, failedTransactions: [...j.failedTransactions] };
}

function toZone(utcWall: string | null | undefined, zone: string): string | null {
  if (!utcWall) return utcWall ?? null;
  // UTC → UTC is the text itself when it is a valid date (luxon would print it back unchanged).
  if (zone === 'UTC' && utcWallMs(utcWall) !== undefined) return utcWall;
  return DateTime.fromFormat(utcWall, FMT, { zone: 'UTC' }).setZone(zone).toFormat(FMT);
}

const WALL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;
/** Epoch ms of a `yyyy-MM-ddTHH:mm:ss` UTC wall-clock text, undefined when luxon would call it invalid. */
function utcWallMs(v: string): number | undefined {
  const m = WALL.exec(v);
  if (m && Number(m[1]) >= 1000) {
    const [y, mo, d, h, mi, sec] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const t = Date.UTC(y, mo - 1, d, h, mi, sec);
    const back = new Date(t);
    // Out-of-range parts (month 13, 30 February, hour 24 …) roll over in Date.UTC; luxon rejects them.
    return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && back.getUTCHours() === h && back.getUTCMinutes() === mi && back.getUTCSeconds() === sec ? t : undefined;
  }
  const dt = DateTime.fromFormat(v, FMT, { zone: 'UTC' });
  return dt.isValid ? dt.toMillis() : undefined;
}

/**
 * Transactions by transaction or validation date (sorted once), rebuilt whenever the list or that
 * date of a transaction differs from what was indexed (checked on every request: one pass of
 * identity comparisons, no parsing — tests and the batch endpoint edit transactions in place).
 */
interface AwinDateIndex {
  rows: FakeAwinTransaction[];
  dates: Array<string | null | undefined>;
  /** Positions of the transactions with a valid date, by time then position. */
  byTime: number[];
  times: number[];
}
const awinIndexes = new WeakMap<FakeAwinStore, Map<'transactionDate' | 'validationDate', AwinDateIndex>>();

function awinDateIndex(store: FakeAwinStore, field: 'transactionDate' | 'validationDate'): AwinDateIndex {
  const all = store.transactions;
  let perStore = awinIndexes.get(store);
  if (!perStore) awinIndexes.set(store, (perStore = new Map()));
  const hit = perStore.get(field);
  if (hit && hit.rows.length === all.length) {
    let same = true;
    for (let i = 0; i < all.length && same; i++) same = all[i] === hit.rows[i] && all[i]![field] === hit.dates[i];
    if (same) return hit;
  }
  const rows = [...all];
  const dates = rows.map((t) => t[field]);
  const ms = dates.map((v) => (v ? utcWallMs(v) : undefined));
  const byTime = rows.map((_, i) => i).filter((i) => ms[i] !== undefined);
  byTime.sort((a, b) => ms[a]! - ms[b]! || a - b);
  const idx: AwinDateIndex = { rows, dates, byTime, times: byTime.map((i) => ms[i]!) };
  perStore.set(field, idx);
  return idx;
}

function listTransactions(store: FakeAwinStore, q: URLSearchParams, send: (s: number, b: unknown) => void): void {
  const zone = q.get('timezone') ?? 'UTC';
  if (!FAKE_AWIN_TIMEZONES.includes(zone)) return send(400, { error: 'invalid.parameter', description: `timezone ${zone} is not supported` });
  const render = (t: FakeAwinTransaction): FakeAwinTransaction => ({ ...t, transactionDate: toZone(t.transactionDate, zone)!, validationDate: toZone(t.validationDate, zone), clickDate: toZone(t.clickDate, zone) });
  const status = q.get('status');
  const ids = q.get('ids');
  if (ids) {
    const want = new Set(ids.split(',').map((s) => s.trim()));
    return send(200, store.transactions.filter((t) => want.has(String(t.id))).map(render));
  }
  const sd = q.get('startDate');
  const ed = q.get('endDate');
  if (!sd || !ed) return send(400, { error: 'invalid.parameter', description: 'startDate and endDate are required' });
  const start = DateTime.fromFormat(sd, FMT, { zone });
  const end = DateTime.fromFormat(ed, FMT, { zone });
  if (!start.isValid || !end.isValid) return send(400, { error: 'invalid.parameter', description: 'dates must be yyyy-MM-ddThh:mm:ss' });
  if (end < start) return send(400, { error: 'invalid.parameter', description: 'endDate is before startDate' });
  if (end.diff(start, 'days').days > 31) return send(400, { error: 'invalid.parameter', description: 'The date range between startDate and endDate must not exceed 31 days' });
  const dateType = q.get('dateType') ?? 'transaction';
  if (!['transaction', 'validation', 'amendment'].includes(dateType)) return send(400, { error: 'invalid.parameter', description: `dateType ${dateType} is not supported` });
  const dateOf = (t: FakeAwinTransaction): DateTime | null => {
    const v = dateType === 'transaction' ? t.transactionDate : dateType === 'validation' ? t.validationDate : store.amendedAt[String(t.id)] ? DateTime.fromISO(store.amendedAt[String(t.id)]!, { zone: 'UTC' }).toFormat(FMT) : null;
    return v ? DateTime.fromFormat(v, FMT, { zone: 'UTC' }) : null;
  };
  if (dateType === 'amendment') {
    const out = store.transactions.filter((t) => {
      const d = dateOf(t);
      return !!d && d >= start && d <= end && (!status || t.commissionStatus === status);
    });
    return send(200, out.map(render));
  }
  // Same transactions and order (the list's) as testing every transaction's date, by binary search.
  const idx = awinDateIndex(store, dateType === 'transaction' ? 'transactionDate' : 'validationDate');
  const lo = lowerBound(idx.times, (t) => t >= start.toMillis());
  const hi = lowerBound(idx.times, (t) => t > end.toMillis(), lo);
  const out = idx.byTime
    .slice(lo, hi)
    .sort((a, b) => a - b)
    .map((i) => idx.rows[i]!)
    .filter((t) => !status || t.commissionStatus === status);
  send(200, out.map(render));
}

type Item = { action?: string; approve?: boolean; transaction?: Record<string, unknown> };

function submitBatch(store: FakeAwinStore, body: unknown, send: (s: number, b: unknown) => void): void {
  if (!Array.isArray(body)) return send(400, { error: 'invalid.request', description: 'expected a JSON array of validation requests' });
  if (body.length === 0 || body.length > store.maxBatch) return send(400, { error: 'invalid.request', description: `a batch holds 1 to ${store.maxBatch} transactions` });
  const job: FakeAwinJob = { jobId: randomUUID(), status: store.jobPollsUntilDone > 0 ? 'QUEUED' : 'DONE', creationDate: new Date().toISOString(), completionDate: null, transactions: body.length, errors: 0, failedTransactions: [], pollsLeft: store.jobPollsUntilDone, items: body };
  const nowUtc = DateTime.utc().toFormat(FMT);
  for (const raw of body as Item[]) {
    const tx = raw.transaction ?? {};
    const failedRef = { ...(tx.transactionId !== undefined ? { transactionId: tx.transactionId as number } : {}), ...(tx.orderRef !== undefined ? { orderRef: String(tx.orderRef) } : {}) };
    const failWith = (code: string, message: string): void => {
      job.failedTransactions.push({ ...failedRef, code, message });
    };
    let t: FakeAwinTransaction | undefined;
    if (tx.transactionId !== undefined) t = store.transactions.find((x) => String(x.id) === String(tx.transactionId));
    else if (tx.orderRef !== undefined && tx.transactionDate !== undefined) {
      const zone = String(tx.timezone ?? 'UTC');
      const want = DateTime.fromFormat(String(tx.transactionDate), FMT, { zone }).toUTC().toFormat(FMT);
      t = store.transactions.find((x) => x.orderRef === String(tx.orderRef) && x.transactionDate === want);
    }
    if (!t) {
      failWith('[404 NOT_FOUND]', 'Transaction not found');
      continue;
    }
    if (raw.action === 'approve') {
      if (t.commissionStatus === 'approved') continue;
      if (t.commissionStatus !== 'pending') {
        failWith('[400 BAD_REQUEST]', `Transaction is ${t.commissionStatus}`);
        continue;
      }
      t.commissionStatus = 'approved';
      t.validationDate = nowUtc;
    } else if (raw.action === 'decline') {
      if (!tx.declineReason) {
        failWith('[400 BAD_REQUEST]', 'declineReason is required');
        continue;
      }
      if (t.commissionStatus === 'declined') continue;
      if (t.commissionStatus !== 'pending') {
        failWith('[400 BAD_REQUEST]', `Transaction is ${t.commissionStatus}`);
        continue;
      }
      t.commissionStatus = 'declined';
      t.declineReason = String(tx.declineReason);
      t.validationDate = nowUtc;
    } else if (raw.action === 'amend') {
      if (t.commissionStatus !== 'pending') {
        failWith('[400 BAD_REQUEST]', 'Only pending transactions can be amended');
        continue;
      }
      const currency = String(tx.currency ?? t.saleAmount.currency);
      const sale = new Decimal(String(tx.saleAmount ?? t.saleAmount.amount));
      const parts = Array.isArray(tx.transactionParts) ? (tx.transactionParts as Array<{ amount: number; commissionGroupCode?: string; commissionAmount?: number }>) : [];
      const newParts: FakeAwinTransaction['transactionParts'] = [];
      let sum = new Decimal(0);
      for (const p of parts) {
        const code = p.commissionGroupCode ?? 'DEFAULT';
        const old = t.transactionParts.find((x) => x.commissionGroupCode === code);
        const amount = new Decimal(String(p.amount));
        sum = sum.plus(amount);
        const rate = old && old.amount !== 0 ? new Decimal(String(old.commissionAmount)).dividedBy(String(old.amount)) : new Decimal(0);
        const commission = p.commissionAmount !== undefined ? new Decimal(String(p.commissionAmount)) : amount.times(rate).toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
        newParts.push({ commissionGroupId: old?.commissionGroupId ?? 1, commissionGroupCode: code, commissionGroupName: old?.commissionGroupName ?? code, amount: amount.toNumber(), commissionAmount: commission.toNumber(), advertiserCost: null });
      }
      if (!sum.equals(sale)) {
        // Awin: the DEFAULT group absorbs the difference.
        const diff = sale.minus(sum);
        const def = newParts.find((p) => p.commissionGroupCode === 'DEFAULT');
        if (def) def.amount = new Decimal(def.amount).plus(diff).toNumber();
        else newParts.push({ commissionGroupCode: 'DEFAULT', amount: diff.toNumber(), commissionAmount: 0 });
      }
      t.oldSaleAmount = { ...t.saleAmount };
      t.oldCommissionAmount = { ...t.commissionAmount };
      t.transactionParts = newParts;
      t.saleAmount = { amount: sale.toNumber(), currency };
      t.commissionAmount = { amount: newParts.reduce((a, p) => a.plus(String(p.commissionAmount)), new Decimal(0)).toNumber(), currency };
      t.amended = true;
      t.amendReason = String(tx.amendReason ?? '');
      store.amendedAt[String(t.id)] = new Date().toISOString();
      if (raw.approve) {
        t.commissionStatus = 'approved';
        t.validationDate = nowUtc;
      }
    } else {
      failWith('[400 BAD_REQUEST]', `unknown action ${String(raw.action)}`);
    }
  }
  job.errors = job.failedTransactions.length;
  if (job.status === 'DONE') job.completionDate = new Date().toISOString();
  store.jobs.push(job);
  send(200, { jobId: job.jobId });
}
