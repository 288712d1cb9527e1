// Full reconciliation in bounded batches of whole units (see incremental.ts for what a unit is).
//
// Evaluating any union of whole units with the slice procedure gives exactly the full run's
// findings for them, so a full run need not hold everything: it takes the units a few at a time.
// Each unit is owned by exactly one batch, chosen by an anchor, so none is evaluated twice and none
// is missed, with no memory of the batches before:
//   A. units with a customer: batches are ranges of customer ids; a batch loads every row of its
//      customers (both sides, all networks), walks the key graph to whole units, and keeps the
//      units whose smallest customer id is in its range (the others belong to an earlier batch);
//   B. units of network rows without any customer: ranges of those rows' ids, kept by the smallest
//      network row id (rows one reference away from a customer's commission are skipped up front:
//      their unit is A's);
//   C. units of commissions whose payment has no customer and no network row: ranges of payment ids.
// A batch's memory is its rows, bounded by `batchRows` seed rows (a single customer's unit can be
// bigger, as in an incremental run).
import type { Knex } from 'knex';
import { chunk } from '../util/chunk.ts';
import { assignUnits, ccItem, closeWalk, expectedRowKeys, ncItem, networkRowKeys, newWalk, taggedRows, walkExpectedRow, walkNetworkRow, type CustomerRange, type Walk } from './incremental.ts';
import { loadExpectedRows, loadNetworkRows, num } from './load.ts';
import type { ExpectedRow, NetworkRow } from './types.ts';

/** Seed rows per batch of a full run: bounds its memory, not its result (100k payments: 5,000 is as fast as 10,000 and peaks ~180 MB lower; 2,500 is slower). */
export const DEFAULT_FULL_BATCH_ROWS = 5_000;

export interface UnitBatch {
  nc: NetworkRow[];
  e: ExpectedRow[];
  /** Units in the batch. */
  units: number;
  /**
   * Each row's item → its unit's name (assignUnits over the walk). The batch holds whole units, so
   * this is what assignUnits over the batch's own items gives; its writer need not work it out again.
   */
  unitOf: Map<string, string>;
}

interface Unit {
  name: string;
  nc: NetworkRow[];
  e: ExpectedRow[];
}

type Range = CustomerRange;

/**
 * Ranges [lo, hi) that split the ids `sql` returns (one per row, repeats allowed) into runs of
 * about `size` rows; the first starts at -∞, the last is open.
 */
async function ranges(db: Knex, sql: string, size: number): Promise<Range[]> {
  const r = await db.raw(`SELECT DISTINCT v FROM (SELECT v, row_number() OVER (ORDER BY v) AS rn FROM (${sql}) s(v)) t WHERE rn > 1 AND (rn - 1) % ? = 0 ORDER BY v`, [size]);
  const starts = (r.rows as Array<{ v: unknown }>).map((x) => num(x.v));
  return [Number.MIN_SAFE_INTEGER, ...starts].map((lo, i) => ({ lo, hi: starts[i] ?? null }));
}

const within = (r: Range, col: string) => (q: Knex.QueryBuilder): void => {
  q.where(col, '>=', r.lo);
  if (r.hi !== null) q.where(col, '<', r.hi);
};
const has = (r: Range, v: number): boolean => v >= r.lo && (r.hi === null || v < r.hi);

/** The walk's rows grouped into units (connected components of the key graph). */
function unitsOf(w: Walk, markers: Map<string, string>): Unit[] {
  const items: Array<{ item: string; keys: string[] }> = [];
  for (const n of w.nc.values()) items.push({ item: ncItem(n.id), keys: networkRowKeys(n, markers) });
  for (const e of w.e.values()) items.push({ item: ccItem(e.key), keys: expectedRowKeys(e) });
  const unitOf = assignUnits(items);
  const out = new Map<string, Unit>();
  const get = (item: string): Unit => {
    const u = unitOf.get(item)!;
    let x = out.get(u);
    if (!x) out.set(u, (x = { name: u, nc: [], e: [] }));
    return x;
  };
  for (const n of w.nc.values()) get(ncItem(n.id)).nc.push(n);
  for (const e of w.e.values()) get(ccItem(e.key)).e.push(e);
  return [...out.values()];
}

const minOf = (xs: Array<number | null>): number | null => xs.reduce<number | null>((m, x) => (x === null ? m : m === null || x < m ? x : m), null);
const minCustomer = (u: Unit): number | null => minOf([...u.nc.map((n) => n.customerId), ...u.e.map((e) => e.billing.customerId)]);

function batchOf(units: Unit[], own: (u: Unit) => boolean): UnitBatch {
  const b: UnitBatch = { nc: [], e: [], units: 0, unitOf: new Map() };
  for (const u of units) {
    if (!own(u)) continue;
    b.units++;
    b.nc.push(...u.nc);
    b.e.push(...u.e);
    for (const n of u.nc) b.unitOf.set(ncItem(n.id), u.name);
    for (const e of u.e) b.unitOf.set(ccItem(e.key), u.name);
  }
  return b;
}

/**
 * Network rows (without a customer) one reference away from a commission of a payment that has a
 * customer: their unit has a customer, so it is A's.
 */
async function nextToCustomer(db: Knex, rows: NetworkRow[]): Promise<Set<number>> {
  const out = new Set<number>();
  const byNetwork = new Map<string, NetworkRow[]>();
  for (const n of rows) {
    const list = byNetwork.get(n.network);
    if (list) list.push(n);
    else byNetwork.set(n.network, [n]);
  }
  for (const [network, ns] of byNetwork) {
    const refs = [...new Set(ns.flatMap((n) => [n.transactionKey, n.orderRef]).filter((r): r is string => r !== null && r !== ''))];
    const hit = new Set<string>();
    // One probe per reference (probe.ts): as a join this was a scan of billing_events and
    // computed_commissions per batch.
    for (const part of chunk(refs, 20_000)) {
      const r = await db.raw(
        `SELECT DISTINCT v.v AS ref FROM unnest(?::text[]) AS v(v) CROSS JOIN LATERAL (
           SELECT be.id FROM billing_events be
            WHERE (be.external_id = v.v OR be.document_id = v.v OR be.payment_external_id = v.v)
              AND be.kind = 'payment' AND be.deleted_at IS NULL AND be.customer_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM computed_commissions cc WHERE cc.payment_event_id = be.id AND cc.kind IN ('direct','second_tier') AND cc.network = ?)
           OFFSET 0) x`,
        [part, network],
      );
      for (const x of r.rows as Array<{ ref: string }>) hit.add(x.ref);
    }
    for (const n of ns) if ((n.transactionKey && hit.has(n.transactionKey)) || (n.orderRef && hit.has(n.orderRef))) out.add(n.id);
  }
  return out;
}

/** Every unit of the data, once, in batches of about `batchRows` seed rows. */
export async function* fullUnitBatches(db: Knex, markers: Map<string, string>, batchRows: number): AsyncGenerator<UnitBatch> {
  if (!Number.isSafeInteger(batchRows) || batchRows < 1) throw new Error(`batchRows must be a positive integer (got ${batchRows})`);
  const tagged = await taggedRows(db, markers);

  // A: by customer.
  const customerRanges = await ranges(
    db,
    `SELECT customer_id FROM network_commissions WHERE customer_id IS NOT NULL
     UNION ALL SELECT be.customer_id FROM computed_commissions cc JOIN billing_events be ON be.id = cc.payment_event_id
      WHERE cc.kind IN ('direct','second_tier') AND cc.network IS NOT NULL AND be.deleted_at IS NULL AND be.customer_id IS NOT NULL`,
    batchRows,
  );
  for (const r of customerRanges) {
    const w = newWalk(undefined, undefined, r);
    for (const n of await loadNetworkRows(db, within(r, 'customer_id'))) walkNetworkRow(w, n, markers);
    for (const e of await loadExpectedRows(db, within(r, 'be.customer_id'))) walkExpectedRow(w, e);
    await closeWalk(db, w, markers, tagged);
    yield batchOf(unitsOf(w, markers), (u) => r.lo <= minCustomer(u)!);
  }

  // B: network rows without a customer, by id.
  for (const r of await ranges(db, `SELECT id FROM network_commissions WHERE customer_id IS NULL`, batchRows)) {
    const seeds = await loadNetworkRows(db, (q) => {
      q.whereNull('customer_id');
      within(r, 'id')(q);
    });
    const skip = await nextToCustomer(db, seeds);
    const w = newWalk();
    for (const n of seeds) if (!skip.has(n.id)) walkNetworkRow(w, n, markers);
    await closeWalk(db, w, markers, tagged);
    yield batchOf(unitsOf(w, markers), (u) => minCustomer(u) === null && has(r, minOf(u.nc.map((n) => n.id))!));
  }

  // C: commissions of payments without a customer, by payment id.
  const paymentRanges = await ranges(
    db,
    `SELECT be.id FROM computed_commissions cc JOIN billing_events be ON be.id = cc.payment_event_id
      WHERE cc.kind IN ('direct','second_tier') AND cc.network IS NOT NULL AND be.deleted_at IS NULL AND be.customer_id IS NULL`,
    batchRows,
  );
  for (const r of paymentRanges) {
    const w = newWalk();
    for (const e of await loadExpectedRows(db, (q) => {
      q.whereNull('be.customer_id');
      within(r, 'be.id')(q);
    })) walkExpectedRow(w, e);
    await closeWalk(db, w, markers, tagged);
    yield batchOf(unitsOf(w, markers), (u) => u.nc.length === 0 && minCustomer(u) === null && has(r, minOf(u.e.map((e) => e.billing.id))!));
  }
}
