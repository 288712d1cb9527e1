// Incremental reconciliation: which rows to re-evaluate after a set of changes.
//
// Unit of re-evaluation. matchCommissions pairs a network row only with computed commissions that
// share its blocking value (reference ids for the `reference` rule, the customer for the two
// customer rules), duplicates are looked for the same way, and our own correction rewards attach to
// the commission they corrected. So matching, and everything classify derives from it, decomposes
// over the connected components of the graph "row — key" with keys: customer id, each reference id
// (transaction key / order ref ↔ payment id, invoice id, charge id), the corrected commission's key
// (adjustment markers), all per network. A component also groups all payments of a customer, so the
// one fingerprint that is not tied to a single row (attribution_window_exceeded = account +
// customer) never comes out of two units. Such a component (over all time, per network) is a
// unit: evaluating the union of some units with the full run's slice procedure (every period, its
// ± match-window margin, findings kept for their own period) yields exactly the full run's findings
// for those units. Units are found fresh each run by a breadth-first walk over the keys (SQL per
// round, indexed look-ups), starting from the changed rows.
//
// Old values. Updates leave no tombstone, so a network row whose customer or reference changed
// would leave its old partner unmatched unseen. reconcile_items (migration 005) stores the unit
// each item had at its last evaluation; every member of a changed item's old unit is a seed too.
// It also stores an input signature per item, so a re-sync that rewrote identical values (the
// model's upserts stamp every re-seen row) costs one look-up, not a re-evaluation.
//
// Inputs outside the rows: `now` (only the grace period of missing_in_network depends on it:
// payments whose age crossed graceHours between the previous run's now and this one are seeds),
// partner accounts (partner and connection of an account; compared to a snapshot in the cursor
// state), adjustment markers (corrections; same), and the config (hashed; a change → full run).
import type { Knex } from 'knex';
import { chunk } from '../util/chunk.ts';
import { hashRecord, sha256 } from '../util/hash.ts';
import { ADJUSTMENT_TAG, type MatchRule } from './match.ts';
import { IN_CHUNK, loadExpectedRows, loadNetworkRows, num, type Account } from './load.ts';
import { idsMatching } from './probe.ts';
import type { ExpectedRow, NetworkRow } from './types.ts';

export interface ReconcileState {
  v: number;
  configHash: string;
  now: string;
  accounts: Record<string, [number, string]>;
  markers: Record<string, string>;
  /** Ignored discrepancies their unit's latest evaluation no longer found (kept ignored, not counted). */
  staleIgnored: number[];
}
/**
 * 2: row signatures take the stored content_hash instead of md5(explanation); the stored signatures
 * of version 1 mean nothing now, so a version-1 cursor makes the next run a full one.
 */
export const STATE_VERSION = 2;

export const ncItem = (id: number): string => `nc:${id}`;
export const ccItem = (key: string): string => `cc:${key}`;

const present = (xs: Array<string | number | null | undefined>): string[] => xs.filter((x): x is string | number => x !== null && x !== undefined && x !== '').map(String);

/** The keys an item connects (see the header); always includes the item itself. */
export function networkRowKeys(n: NetworkRow, markers: Map<string, string>): string[] {
  const p = `${n.network}|`;
  const keys = [`${p}i:${ncItem(n.id)}`];
  for (const c of present([n.customerId])) keys.push(`${p}c:${c}`);
  for (const r of present([n.transactionKey, n.orderRef])) keys.push(`${p}r:${r}`);
  const tag = n.description ? ADJUSTMENT_TAG.exec(n.description) : null;
  const adjusted = tag?.[1] ? markers.get(tag[1]) : undefined;
  if (adjusted !== undefined) keys.push(`${p}k:${adjusted}`);
  return keys;
}

export function expectedRowKeys(e: ExpectedRow): string[] {
  const p = `${e.network}|`;
  const keys = [`${p}i:${ccItem(e.key)}`, `${p}k:${e.key}`];
  for (const c of present([e.billing.customerId])) keys.push(`${p}c:${c}`);
  for (const r of present([e.billing.externalId, e.billing.documentId, e.billing.paymentExternalId])) keys.push(`${p}r:${r}`);
  return keys;
}

// Signatures: native JSON.stringify, whose key order is fixed by the one loader that builds every
// row (load.ts) — a sorted-key stringify of every row was a tenth of a full run's CPU. A loader that
// changed its key order would only make the next run re-evaluate the rows it seeds.
export const networkRowSig = (n: NetworkRow): string => sha256(JSON.stringify(n)).slice(0, 32);
export const expectedRowSig = (e: ExpectedRow): string => sha256(JSON.stringify(e)).slice(0, 32);

/** Units from item keys (union-find); a unit is named by its smallest item, unique across runs. */
export function assignUnits(items: Array<{ item: string; keys: string[] }>): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    for (let p = parent.get(r); p !== undefined && p !== r; p = parent.get(r)) r = p;
    for (let x = k, p = parent.get(x); p !== undefined && p !== r; p = parent.get(x)) {
      parent.set(x, r);
      x = p;
    }
    return r;
  };
  for (const { keys } of items) {
    for (const k of keys) if (!parent.has(k)) parent.set(k, k);
    const a = find(keys[0]!);
    for (const k of keys.slice(1)) {
      const b = find(k);
      if (a !== b) parent.set(b, a);
    }
  }
  const minItem = new Map<string, string>();
  for (const { item, keys } of items) {
    const root = find(keys[0]!);
    const cur = minItem.get(root);
    if (cur === undefined || item < cur) minItem.set(root, item);
  }
  const out = new Map<string, string>();
  for (const { item, keys } of items) out.set(item, minItem.get(find(keys[0]!))!);
  return out;
}

/** Everything that changes what matching and classification do, bar the data and `now`. */
export function configHash(c: { rules: MatchRule[]; reconcile: unknown; timezone: string }): string {
  return hashRecord({ v: STATE_VERSION, rules: c.rules, reconcile: c.reconcile, timezone: c.timezone });
}

/** Units are only closed under matching when every rule blocks on the reference or the customer. */
export function rulesSupportUnits(rules: MatchRule[]): boolean {
  return rules.every((r) => {
    const f = r.criteria.find((c) => c.operator === 'equals' && !c.optional)?.field;
    return f === 'reference' || f === 'customer';
  });
}

export interface Seeds {
  nc: Set<number>;
  cc: Set<string>;
  payments: Set<number>;
  /** Items re-evaluated whatever their signature says (time, accounts, markers). */
  forced: Set<string>;
}

const range = (q: Knex.QueryBuilder, from: number, to: number, col = 'change_seq'): Knex.QueryBuilder => q.where(col, '>', from).where(col, '<=', to);

/** Rows changed in (from, to], plus the rows whose outcome moved with time, accounts or markers. */
export async function changedSeeds(
  db: Knex,
  from: number,
  to: number,
  ctx: { prev: ReconcileState; now: Date; graceHours: number; accounts: Map<number, Account>; markers: Map<string, string> },
): Promise<Seeds> {
  const s: Seeds = { nc: new Set(), cc: new Set(), payments: new Set(), forced: new Set() };
  for (const r of await range(db('network_commissions'), from, to).select('id')) s.nc.add(num(r.id));
  for (const r of await range(db('computed_commissions'), from, to).select('commission_key', 'kind', 'payment_event_id')) {
    if (r.kind === 'clawback') s.payments.add(num(r.payment_event_id));
    else s.cc.add(String(r.commission_key));
  }
  const tomb = await range(db('change_tombstones'), from, to).where('table_name', 'computed_commissions').select(db.raw(`old->>'commission_key' AS k, old->>'kind' AS kind, old->>'payment_event_id' AS p`));
  for (const r of tomb) {
    if (r.kind === 'clawback') s.payments.add(num(r.p));
    else s.cc.add(String(r.k));
  }
  for (const r of await range(db('billing_events'), from, to).select('id', 'kind', 'payment_event_id')) {
    if (r.kind === 'payment') s.payments.add(num(r.id));
    else if (r.payment_event_id !== null) s.payments.add(num(r.payment_event_id));
  }
  const subs = ((await range(db('subscriptions'), from, to).select('id')) as Array<{ id: unknown }>).map((r) => num(r.id));
  for (const ids of chunk(subs, IN_CHUNK)) for (const r of await db('billing_events').whereIn('subscription_id', ids).where('kind', 'payment').select('id')) s.payments.add(num(r.id));

  // Time: a payment whose age crossed graceHours between the two runs' now.
  const graceMs = ctx.graceHours * 3_600_000;
  const prevNow = new Date(ctx.prev.now).getTime();
  const lo = new Date(Math.min(prevNow, ctx.now.getTime()) - graceMs);
  const hi = new Date(Math.max(prevNow, ctx.now.getTime()) - graceMs);
  const crossed = await db('billing_events as be')
    .join('computed_commissions as cc', 'cc.payment_event_id', 'be.id')
    .where('be.kind', 'payment')
    .where('be.occurred_at', '>=', lo)
    .where('be.occurred_at', '<=', hi)
    .whereIn('cc.kind', ['direct', 'second_tier'])
    .select('cc.commission_key');
  for (const r of crossed) {
    s.cc.add(String(r.commission_key));
    s.forced.add(ccItem(String(r.commission_key)));
  }

  // Accounts whose partner or connection changed (the sync rewrites them all; compare values).
  // A new account (not in the previous snapshot) has no computed commission the previous run saw:
  // a commission names an existing account (foreign key), so every commission of an account
  // created after that snapshot was written after the watermark read before it, and is a seed
  // already (with no stored signature, or one naming another account: re-evaluated). So only
  // changed or removed accounts look their commissions up — computed_commissions has no index on
  // partner_account_id, and each run's new accounts made this a scan of the whole history.
  const changedAccounts: number[] = [];
  const newAccounts = new Set<number>();
  const prevAcc = ctx.prev.accounts;
  for (const [id, a] of ctx.accounts) {
    const p = prevAcc[String(id)];
    if (!p) newAccounts.add(id);
    if (!p || p[0] !== a.partnerId || p[1] !== a.connection) changedAccounts.push(id);
  }
  for (const id of Object.keys(prevAcc)) if (!ctx.accounts.has(Number(id))) changedAccounts.push(Number(id));
  for (const ids of chunk(changedAccounts, IN_CHUNK)) {
    for (const r of await db('network_commissions').whereIn('partner_account_id', ids).select('id')) {
      s.nc.add(num(r.id));
      s.forced.add(ncItem(num(r.id)));
    }
    const known = ids.filter((id) => !newAccounts.has(id));
    if (known.length === 0) continue;
    for (const r of await db('computed_commissions').whereIn('partner_account_id', known).whereIn('kind', ['direct', 'second_tier']).select('commission_key')) {
      s.cc.add(String(r.commission_key));
      s.forced.add(ccItem(String(r.commission_key)));
    }
  }

  // Adjustment markers that appeared, vanished or point elsewhere.
  const changedMarkers = new Set<string>();
  for (const [m, k] of ctx.markers) if (ctx.prev.markers[m] !== k) changedMarkers.add(m);
  for (const m of Object.keys(ctx.prev.markers)) if (!ctx.markers.has(m)) changedMarkers.add(m);
  for (const m of changedMarkers) {
    for (const k of [ctx.prev.markers[m], ctx.markers.get(m)]) {
      if (k === undefined) continue;
      s.cc.add(k);
      s.forced.add(ccItem(k));
    }
    for (const r of await db('network_commissions').where('description', 'like', `%[${m}]%`).select('id')) {
      s.nc.add(num(r.id));
      s.forced.add(ncItem(num(r.id)));
    }
  }
  return s;
}

interface StoredItem {
  unit: string;
  sig: string;
}

async function storedItems(db: Knex, items: string[]): Promise<Map<string, StoredItem>> {
  const out = new Map<string, StoredItem>();
  for (const part of chunk(items, 5000)) {
    for (const r of await db('reconcile_items').whereRaw('item = ANY(?::text[])', [part]).select('item', 'unit', 'sig')) out.set(String(r.item), { unit: String(r.unit), sig: String(r.sig) });
  }
  return out;
}

export interface Expansion {
  nc: Map<number, NetworkRow>;
  e: Map<string, ExpectedRow>;
  /** Items that existed at the last evaluation and no longer do (their discrepancies get re-judged). */
  removed: string[];
  /** Items seeded for a real change (after the signature filter), for the run summary. */
  changed: number;
}

/**
 * From the seeds: drop items whose inputs did not really change, add the members of the changed
 * items' old units, then walk the key graph on current data until the set is closed.
 */
export async function expandSeeds(db: Knex, seeds: Seeds, markers: Map<string, string>): Promise<Expansion> {
  // Current rows of the seeds.
  const ncSeed = new Map<number, NetworkRow>();
  if (seeds.nc.size) for (const n of await loadNetworkRows(db, (q) => q.whereRaw('id = ANY(?::bigint[])', [[...seeds.nc]]))) ncSeed.set(n.id, n);
  const eSeed = new Map<string, ExpectedRow>();
  const ccIds = idsMatching('computed_commissions', 'cc.id', [
    { col: 'commission_key', values: [...seeds.cc], type: 'text' },
    { col: 'payment_event_id', values: [...seeds.payments], type: 'bigint' },
  ]);
  if (ccIds) for (const e of await loadExpectedRows(db, (q) => q.whereRaw(ccIds.sql, ccIds.bindings))) eSeed.set(e.key, e);
  const seedItems = new Set<string>([...[...seeds.nc].map(ncItem), ...[...seeds.cc].map(ccItem), ...[...eSeed.keys()].map(ccItem)]);
  if (seeds.payments.size) for (const r of await db('reconcile_items').whereRaw('payment_event_id = ANY(?::bigint[])', [[...seeds.payments]]).select('item')) seedItems.add(String(r.item));
  const stored = await storedItems(db, [...seedItems]);

  // Keep the items that really changed.
  const changed = new Set<string>();
  for (const item of seedItems) {
    const st = stored.get(item);
    const cur = item.startsWith('nc:') ? ncSeed.get(Number(item.slice(3))) : eSeed.get(item.slice(3));
    if (cur === undefined) {
      if (st) changed.add(item); // gone since the last evaluation
      continue;
    }
    const sig = item.startsWith('nc:') ? networkRowSig(cur as NetworkRow) : expectedRowSig(cur as ExpectedRow);
    if (seeds.forced.has(item) || !st || st.sig !== sig) changed.add(item);
  }

  // Members of their old units.
  const oldUnits = [...new Set([...changed].map((i) => stored.get(i)?.unit).filter((u): u is string => u !== undefined))];
  const members = new Set<string>(changed);
  for (const part of chunk(oldUnits, 5000)) for (const r of await db('reconcile_items').whereRaw('unit = ANY(?::text[])', [part]).select('item')) members.add(String(r.item));

  const x: Expansion = { nc: new Map(), e: new Map(), removed: [], changed: changed.size };
  const walk = newWalk(x.nc, x.e);
  const needNc: number[] = [];
  const needCc: string[] = [];
  for (const item of members) {
    if (item.startsWith('nc:')) {
      const n = ncSeed.get(Number(item.slice(3)));
      if (n) walkNetworkRow(walk, n, markers);
      else needNc.push(Number(item.slice(3)));
    } else {
      const e = eSeed.get(item.slice(3));
      if (e) walkExpectedRow(walk, e);
      else needCc.push(item.slice(3));
    }
  }
  if (needNc.length) for (const n of await loadNetworkRows(db, (q) => q.whereRaw('id = ANY(?::bigint[])', [needNc]))) walkNetworkRow(walk, n, markers);
  const needIds = idsMatching('computed_commissions', 'cc.id', [{ col: 'commission_key', values: needCc, type: 'text' }]);
  if (needIds) for (const e of await loadExpectedRows(db, (q) => q.whereRaw(needIds.sql, needIds.bindings))) walkExpectedRow(walk, e);
  for (const item of members) {
    const here = item.startsWith('nc:') ? x.nc.has(Number(item.slice(3))) : x.e.has(item.slice(3));
    if (!here) x.removed.push(item);
  }
  await closeWalk(db, walk, markers, await taggedRows(db, markers));
  return x;
}

/** A breadth-first walk over the key graph: the rows reached, the keys seen, the keys still to follow. */
export interface Walk {
  nc: Map<number, NetworkRow>;
  e: Map<string, ExpectedRow>;
  seen: Set<string>;
  frontier: Set<string>;
  /**
   * Customers whose rows (both sides, every network) are all in the walk already: their customer
   * keys need no look-up, and look-ups by reference leave their rows out (a full run's batch).
   */
  loaded?: CustomerRange | undefined;
}

/** Customer ids lo ≤ id < hi (hi null: no upper bound). */
export interface CustomerRange {
  lo: number;
  hi: number | null;
}

export const newWalk = (nc: Map<number, NetworkRow> = new Map(), e: Map<string, ExpectedRow> = new Map(), loaded?: CustomerRange): Walk => ({ nc, e, seen: new Set(), frontier: new Set(), loaded });

const inRange = (r: CustomerRange | undefined, id: number | null): boolean => r !== undefined && id !== null && id >= r.lo && (r.hi === null || id < r.hi);

function follow(w: Walk, keys: string[]): void {
  for (const k of keys) {
    if (w.seen.has(k)) continue;
    w.seen.add(k);
    w.frontier.add(k);
  }
}

export function walkNetworkRow(w: Walk, n: NetworkRow, markers: Map<string, string>): void {
  if (w.nc.has(n.id)) return;
  w.nc.set(n.id, n);
  follow(w, networkRowKeys(n, markers));
}

export function walkExpectedRow(w: Walk, e: ExpectedRow): void {
  if (w.e.has(e.key)) return;
  w.e.set(e.key, e);
  follow(w, expectedRowKeys(e));
}

/** Our own correction rewards, by the commission they adjust (few rows). */
export async function taggedRows(db: Knex, markers: Map<string, string>): Promise<Map<string, number[]>> {
  const tagged = new Map<string, number[]>();
  const rows = markers.size === 0 ? [] : await db('network_commissions').where('description', 'like', '%[cs:%').select('id', 'description');
  for (const r of rows) {
    const tag = ADJUSTMENT_TAG.exec(String(r.description));
    const key = tag?.[1] ? markers.get(tag[1]) : undefined;
    if (key !== undefined) tagged.set(key, [...(tagged.get(key) ?? []), num(r.id)]);
  }
  return tagged;
}

/** SQL: the row's customer is outside the walk's loaded range (its rows are not in the walk yet). */
function outsideLoaded(q: Knex.QueryBuilder, col: string, r: CustomerRange | undefined): void {
  if (!r) return;
  q.where((w) => {
    w.whereNull(col).orWhere(col, '<', r.lo);
    if (r.hi !== null) w.orWhere(col, '>=', r.hi);
  });
}

/** Walks the key graph on current data until the set of rows is closed (whole units). */
export async function closeWalk(db: Knex, w: Walk, markers: Map<string, string>, tagged: Map<string, number[]>): Promise<void> {
  // Breadth-first over keys, one set of indexed queries per network and round.
  while (w.frontier.size > 0) {
    const byNetwork = new Map<string, { cust: number[]; refs: string[]; keys: string[] }>();
    for (const k of w.frontier) {
      const bar = k.indexOf('|');
      const network = k.slice(0, bar);
      const kind = k.slice(bar + 1, bar + 3);
      const v = k.slice(bar + 3);
      const g = byNetwork.get(network) ?? { cust: [], refs: [], keys: [] };
      byNetwork.set(network, g);
      if (kind === 'c:') {
        if (!inRange(w.loaded, Number(v))) g.cust.push(Number(v));
      } else if (kind === 'r:') g.refs.push(v);
      else if (kind === 'k:') g.keys.push(v);
    }
    w.frontier = new Set();
    for (const [network, g] of byNetwork) {
      // One query per side and round, each value an index probe (probe.ts).
      const taggedIds = g.keys.flatMap((k) => tagged.get(k) ?? []).filter((id) => !w.nc.has(id));
      const ncIds = idsMatching('network_commissions', 'id', [
        { col: 'customer_id', values: g.cust, type: 'bigint' },
        { col: 'transaction_key', values: g.refs, type: 'text' },
        { col: 'order_ref', values: g.refs, type: 'text' },
      ], { extraIds: taggedIds });
      if (ncIds) {
        const ncs = await loadNetworkRows(db, (q) => {
          q.where('network', network).whereRaw(ncIds.sql, ncIds.bindings);
          outsideLoaded(q, 'customer_id', w.loaded);
        });
        for (const n of ncs) walkNetworkRow(w, n, markers);
      }
      const payments: number[] = [];
      const beIds = idsMatching('billing_events', 'id', [
        { col: 'customer_id', values: g.cust, type: 'bigint' },
        { col: 'external_id', values: g.refs, type: 'text' },
        { col: 'document_id', values: g.refs, type: 'text' },
        { col: 'payment_external_id', values: g.refs, type: 'text' },
      ], { also: `t.kind = 'payment'` });
      if (beIds) {
        const q = db('billing_events').whereRaw(beIds.sql, beIds.bindings); // the probe keeps kind = 'payment'
        outsideLoaded(q, 'customer_id', w.loaded);
        for (const r of await q.select('id')) payments.push(num(r.id));
      }
      const keys = g.keys.filter((k) => !w.e.has(k));
      const ccIds = idsMatching('computed_commissions', 'cc.id', [
        { col: 'payment_event_id', values: payments, type: 'bigint' },
        { col: 'commission_key', values: keys, type: 'text' },
      ]);
      if (ccIds) {
        const es = await loadExpectedRows(db, (q) => q.where('cc.network', network).whereRaw(ccIds.sql, ccIds.bindings));
        for (const e of es) walkExpectedRow(w, e);
      }
    }
  }
}
