// Incremental compute: which partners' commission rows could differ from the stored ones, given the
// rows changed since the compute cursor (change_seq in (from, to], migrations/004_change_tracking.ts)
// and the move of asOf. computeAndStore() recomputes exactly those partners ("producers", below) and
// leaves every other stored row as it is; the result is the same as a full recompute.
//
// PRODUCER. Rows come out of computePartnerCommissions(P): P's direct rows and their clawbacks
// (partner_id = P), and the second-tier rows (and their clawbacks) that P's payments earn P's
// recruiter (partner_id = recruiter, explanation.recruitPartnerId = P). The unit of recomputation is
// the producer P. A producer always writes a direct row for every payment it prices, so "the
// producers of the rows on payment X" = partner_id of the direct rows on X (indexed by
// payment_event_id), and a second-tier row belongs to producer P iff a direct row of P exists on
// the same payment and explanation.recruitPartnerId = P.
//
// WHAT P's ROWS DEPEND ON (src/rules/store.ts computeBatch + src/rules/engine.ts):
//  - P's partners row (emails → R2 self-referral, recruiter_partner_id → second tier) and P's
//    partner_accounts (emails, network, ids): a changed partner / account row → P.
//  - the recruiter R's partners row and accounts (R's emails exclude second-tier rows as personal
//    use; R's accounts pick the row's account/network): a changed R → every recruit of R.
//  - the customers P wins under R1 (every live claim on a customer decides the winner and the
//    multiple_attributions flag): a changed customer C → the current winner of C (resolved here
//    exactly as the engine does) and the producers of the rows stored on C's payments (the winner
//    before the change: attribution moved, placeholder merged, event re-pointed).
//    A customer "changes" when its customers row, customer_emails, customer_identities,
//    attributions, subscriptions or billing events (its own, and take-backs linked to its
//    payments) are inserted, updated or hard-deleted (tombstones carry the old customer_id).
//    Subscriptions are also read by id from payments, so a changed subscription changes the
//    customers of the payments that reference it.
//  - billing_events changed → also the producers of rows on that event (as a payment) and on the
//    payment it is linked to, and the customers of payments named by payment_external_id (a
//    take-back whose payment_event_id was set back to NULL by a re-sync still names its payment
//    there). Model contract relied on: billing_events.payment_event_id is only ever set from NULL
//    to the payment that payment_external_id names (linkOrphanEvents), never re-pointed between
//    payments, and partner_accounts.partner_id / network never change (the upsert does not merge
//    them). Were that to change, the old payment / partner would not be found here.
//  - agency_owner_ref resolution (billing metadata → partner by partner_key, account external id,
//    partner id or email) reads EVERY partner: when any partner or account changed, all distinct
//    refs are resolved again and compared with the resolution stored in the cursor state; the
//    customers of the refs that resolve differently change.
//  - fx_rates: a currency with an inserted/updated row (or fewer rows than at the last run: a
//    delete) changes the customers of its payments that have no settlement USD amount (the only
//    ones the table prices), from the earliest changed date on when no pre-existing row of that
//    currency was touched, else all of them.
//  - the program definition: content hash in the cursor state; a change → full recompute.
//  - paid rows: never written (R8), and a key being paid changes nothing else in the engine's
//    output, so markPayoutsPaid's updates of computed_commissions are not an input.
//  - network_transactions, network_commissions, identity_links, subscription_states: not read by
//    the engine.
//
// TIME (asOf). The engine reads asOf in two places only: events with occurred_at > asOf are
// ignored (so events with occurred_at in (previous asOf, asOf] change their customers), and a
// priced row is `due` instead of `reserve` once cleared_at <= asOf — every other field (tier
// windows, clearing and payout dates, clawback dates) is a function of event times. The status
// flip is done set-based (advanceClearedRows) instead of recomputing partners. asOf moving
// backwards → full recompute.
//
// APPEND-ONLY. A partner whose only change is new payments (of unchanged customers, or of fresh
// customers no stored row depends on) that all come after its whole known history gets only those
// payments' rows computed (see step 4 below for why no earlier row can change). When they do not
// all come after it, only the rows of the payments from the first new one on can differ (a
// payment's rows read sales paid before it, its subscription's earlier payments and its own
// take-backs): an adapter that loads the partner through a window recomputes exactly those
// payments' rows (and deletes their stored rows no longer produced); one that loads the whole
// history checks the "after" and recomputes the partner whole otherwise.
import type { Knex } from 'knex';
import { chunk } from '../util/chunk.ts';
import { resolveAttributions } from './engine.ts';
import type { Attribution, Network } from './types.ts';

const IN_CHUNK = 1000;
type Row = Record<string, unknown>;

export interface ChangeWindow {
  /** Exclusive lower bound (the cursor). */
  from: number;
  /** Inclusive upper bound (the watermark read at the start of the run). */
  to: number;
  /** asOf of the previous run (events with occurred_at in (prevAsOf, asOf] became known). */
  prevAsOf: Date;
  asOf: Date;
}

export interface AffectedPartners {
  partners: number[];
  /** How many customers / events / partners were found changed, per source (for the log and summary). */
  counts: Record<string, number>;
}

export interface FxCurrencyState {
  /** Rows of the currency with change_seq <= the cursor saved with this state. */
  n: number;
}

async function inChunks<T>(ids: readonly number[], load: (part: number[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (const part of chunk([...ids], IN_CHUNK)) out.push(...(await load(part)));
  return out;
}

const rows = async (db: Knex, sql: string, bindings: readonly Knex.RawBinding[]): Promise<Row[]> => (await db.raw(sql, bindings as Knex.RawBinding[])).rows as Row[];

const ids = (rs: readonly Row[], col = 'id'): number[] => rs.map((r) => r[col]).filter((v) => v !== null && v !== undefined).map(Number);

/** The producer of a stored row (see the header): partner_id for direct rows, the recruit for second-tier ones. */
export const PRODUCER_SQL = `CASE WHEN cc.kind = 'direct' OR cc.clawback_of = 'direct' THEN cc.partner_id ELSE (cc.explanation->>'recruitPartnerId')::bigint END`;

/** Per-currency row counts (change_seq <= upTo) for the cursor state. */
export async function fxCurrencyState(db: Knex, upTo: number): Promise<Record<string, FxCurrencyState>> {
  const out: Record<string, FxCurrencyState> = {};
  for (const r of await rows(db, `SELECT upper(trim(currency)) AS cur, count(*)::int AS n FROM fx_rates WHERE change_seq <= ? GROUP BY 1`, [upTo])) out[String(r.cur)] = { n: Number(r.n) };
  return out;
}

/**
 * Customers whose payments the changed FX rows can price: payments in a changed currency without a
 * settlement USD amount (usdValueOf falls back to the table only then), on or after the earliest
 * changed date when that is known.
 */
async function fxCustomers(db: Knex, w: ChangeWindow, prev: Record<string, FxCurrencyState>): Promise<number[]> {
  const stats = await rows(
    db,
    `SELECT upper(trim(currency)) AS cur,
            count(*) FILTER (WHERE change_seq <= ?)::int AS untouched,
            min(rate_date) FILTER (WHERE change_seq > ? AND change_seq <= ?) AS min_changed
       FROM fx_rates GROUP BY 1`,
    [w.from, w.from, w.to],
  );
  const seen = new Set<string>();
  const scopes: Array<{ cur: string; from: string | null }> = [];
  for (const s of stats) {
    const cur = String(s.cur);
    seen.add(cur);
    const before = prev[cur]?.n ?? 0;
    const untouched = Number(s.untouched);
    const changed = s.min_changed !== null && s.min_changed !== undefined;
    if (!changed && untouched === before) continue;
    // Only inserts since the last run (every row it knew is still there untouched): the earliest
    // inserted date bounds what can have moved. An old row updated or deleted: its date is unknown.
    const minDate = s.min_changed instanceof Date ? s.min_changed.toISOString().slice(0, 10) : changed ? String(s.min_changed).slice(0, 10) : null;
    scopes.push({ cur, from: untouched === before && minDate ? minDate : null });
  }
  for (const cur of Object.keys(prev)) if (!seen.has(cur) && (prev[cur]?.n ?? 0) > 0) scopes.push({ cur, from: null }); // every row deleted
  const out: number[] = [];
  for (const s of scopes) {
    const q = db('billing_events').where('kind', 'payment').whereRaw('upper(trim(currency)) = ?', [s.cur]).whereNull('amount_usd_minor').whereNotNull('customer_id');
    if (s.from) q.where('occurred_at', '>=', `${s.from}T00:00:00Z`);
    out.push(...ids(await q.distinct('customer_id'), 'customer_id'));
  }
  return out;
}

/** Resolves every distinct agency_owner_ref again (store.ts resolveAgencyOwners) for the cursor state. */
export type AgencyResolver = (refs: readonly string[]) => Promise<Map<string, string>>;

export async function agencyOwnerState(db: Knex, resolve: AgencyResolver): Promise<Record<string, string | null>> {
  const refs = (await db('customers').whereNotNull('agency_owner_ref').distinct('agency_owner_ref').orderBy('agency_owner_ref')).map((r: Row) => String(r.agency_owner_ref));
  const resolved = await resolve(refs);
  const out: Record<string, string | null> = {};
  for (const r of refs) out[r] = resolved.get(r) ?? null;
  return out;
}

export interface FindAffectedInput {
  window: ChangeWindow;
  fx: Record<string, FxCurrencyState>;
  agency: Record<string, string | null>;
  resolveAgency: AgencyResolver;
}

export interface AppendWindow {
  /** Earliest occurred_at (ms) of the partner's new payments known at asOf (Infinity: none known yet). */
  firstMs: number;
  /** Subscriptions of the new payments. */
  subscriptions: Set<number>;
  /** Customers of the new payments. */
  customers: Set<number>;
}

export interface FindAffectedResult extends AffectedPartners {
  /**
   * Partners (all also in `partners`) whose only change is new payments of unchanged customers:
   * partner → those payments' ids. The adapter computes only those payments' rows when they all
   * come after the partner's known history, else the whole partner.
   */
  append: Map<number, Set<string>>;
  /** Per append-only partner: its earliest known new payment and their subscriptions (for a windowed load). */
  appendFrom: Map<number, AppendWindow>;
  /** The agency resolution to save when it was recomputed (undefined: unchanged). */
  agency?: Record<string, string | null> | undefined;
}

export async function findAffectedPartners(db: Knex, input: FindAffectedInput): Promise<FindAffectedResult> {
  const { from, to, prevAsOf, asOf } = input.window;
  const rng = [from, to];
  const counts: Record<string, number> = {};
  const affected = new Set<number>();
  const customers = new Set<number>();
  const add = (set: Set<number>, xs: readonly number[], label: string): void => {
    counts[label] = (counts[label] ?? 0) + xs.length;
    for (const x of xs) set.add(x);
  };

  // 1. Partners and accounts: the partner itself, and its recruits (their second-tier rows read it).
  const changedPartners = ids(await rows(db, `SELECT id FROM partners WHERE change_seq > ? AND change_seq <= ?`, rng));
  const changedAccountPartners = ids(await rows(db, `SELECT DISTINCT partner_id FROM partner_accounts WHERE change_seq > ? AND change_seq <= ?`, rng), 'partner_id');
  const direct = [...new Set([...changedPartners, ...changedAccountPartners])];
  add(affected, direct, 'partnersChanged');
  if (direct.length > 0) {
    const recruits = await inChunks(direct, async (part) => ids(await db('partners').whereIn('recruiter_partner_id', part).select('id')));
    add(affected, recruits, 'recruitsOfChanged');
  }

  // 2. Agency owner refs resolve against every partner: re-resolve when any partner/account changed.
  let agency: Record<string, string | null> | undefined;
  if (direct.length > 0) {
    agency = await agencyOwnerState(db, input.resolveAgency);
    const moved = Object.keys({ ...agency, ...input.agency }).filter((ref) => (agency![ref] ?? null) !== (input.agency[ref] ?? null));
    if (moved.length > 0) {
      const cs = [] as number[];
      for (const part of chunk(moved, IN_CHUNK)) cs.push(...ids(await db('customers').whereIn('agency_owner_ref', part).select('id')));
      add(customers, cs, 'customersAgencyRef');
    }
  }

  // 3. Changed customers, from every table the engine reads per customer (and tombstones).
  const changedCustomers = await rows(
    db,
    `SELECT id FROM customers WHERE change_seq > ? AND change_seq <= ?
     UNION SELECT customer_id FROM customer_emails WHERE change_seq > ? AND change_seq <= ?
     UNION SELECT customer_id FROM customer_identities WHERE change_seq > ? AND change_seq <= ?
     UNION SELECT customer_id FROM attributions WHERE change_seq > ? AND change_seq <= ?
     UNION SELECT customer_id FROM subscriptions WHERE change_seq > ? AND change_seq <= ? AND customer_id IS NOT NULL
     UNION SELECT CASE WHEN table_name = 'customers' THEN (old->>'id')::bigint ELSE (old->>'customer_id')::bigint END
             FROM change_tombstones WHERE change_seq > ? AND change_seq <= ? AND table_name IN ('customers', 'customer_emails', 'customer_identities', 'attributions')`,
    [...rng, ...rng, ...rng, ...rng, ...rng, ...rng],
  );
  add(customers, ids(changedCustomers), 'customersChanged');
  // Subscriptions are looked up by id from payments too (a payment may name another customer's subscription).
  const subPayers = await rows(
    db,
    `SELECT DISTINCT e.customer_id FROM billing_events e JOIN subscriptions s ON s.id = e.subscription_id
      WHERE s.change_seq > ? AND s.change_seq <= ? AND e.customer_id IS NOT NULL`,
    rng,
  );
  add(customers, ids(subPayers, 'customer_id'), 'customersSubscriptionChanged');
  // A deleted attribution's partner loses (or keeps) nothing by itself, but it may have been the
  // winner: its rows are found below through the customer's payments.

  // 4. Billing events changed, or newly known because asOf moved past them.
  const allEvents = await rows(
    db,
    `SELECT id, kind, customer_id, payment_event_id, connection, payment_external_id, deleted_at, occurred_at, subscription_id FROM billing_events WHERE change_seq > ? AND change_seq <= ?
     UNION SELECT id, kind, customer_id, payment_event_id, connection, payment_external_id, deleted_at, occurred_at, subscription_id FROM billing_events WHERE occurred_at > ? AND occurred_at <= ?`,
    [...rng, prevAsOf, asOf],
  );
  counts.eventsChanged = allEvents.length;
  // APPEND-ONLY candidates: a live payment of a known customer, linked to nothing, on which no row
  // is stored (so it was not in any partner's input at the last run). When its customer's winner P
  // has no other change, P's input is the old input plus new payments; when they all come after
  // P's whole known history (checked by the adapter on the loaded history), no earlier row can
  // change: a payment's tier counts only sales paid before it, its subscription's first qualified
  // payment and that payment's tier are decided by earlier payments, refunds/disputes/clawbacks
  // belong to their own payment, second-tier rows follow their payment, and asOf only decides
  // which events are known (every newly known event is in this list) and reserve → due (set-based).
  // Anything else about P (another changed customer, a changed partner, recruiter, account, FX,
  // agency) makes P a whole-partner recompute.
  const candidates = allEvents.filter(
    (e) => e.kind === 'payment' && e.customer_id != null && e.payment_event_id == null && e.payment_external_id == null && e.deleted_at == null,
  );
  const withRows = new Set<number>();
  for (const part of chunk(ids(candidates), IN_CHUNK * 10)) {
    for (const r of await rows(db, `SELECT DISTINCT payment_event_id FROM computed_commissions WHERE payment_event_id = ANY(?::bigint[])`, [part])) withRows.add(Number(r.payment_event_id));
  }
  const appendEvents = new Map<number, AppendedPayment[]>(); // customer → new payments
  const appendIds = new Set<number>();
  for (const e of candidates) {
    if (withRows.has(Number(e.id))) continue;
    appendIds.add(Number(e.id));
    const c = Number(e.customer_id);
    let l = appendEvents.get(c);
    if (!l) appendEvents.set(c, (l = []));
    l.push(appended(e));
  }
  const events = allEvents.filter((e) => !appendIds.has(Number(e.id)));
  counts.eventsAppended = appendIds.size;
  add(customers, ids(events, 'customer_id'), 'customersOfEvents');
  const eventIds = ids(events);
  const linkedPayments = ids(events, 'payment_event_id');
  const payers = await inChunks(linkedPayments, async (part) => ids(await db('billing_events').whereIn('id', part).whereNotNull('customer_id').select('customer_id'), 'customer_id'));
  add(customers, payers, 'customersOfLinkedPayments');
  const byExternal = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.payment_external_id === null || e.payment_external_id === undefined) continue;
    const c = String(e.connection);
    let s = byExternal.get(c);
    if (!s) byExternal.set(c, (s = new Set()));
    s.add(String(e.payment_external_id));
  }
  for (const [connection, exts] of byExternal) {
    for (const part of chunk([...exts], IN_CHUNK)) {
      add(customers, ids(await db('billing_events').where({ connection, kind: 'payment' }).whereIn('external_id', part).whereNotNull('customer_id').select('customer_id'), 'customer_id'), 'customersOfNamedPayments');
    }
  }
  // Producers of rows stored on those events (as payments) and on the payments they are linked to.
  const eventPayments = [...new Set([...eventIds, ...linkedPayments])];
  add(affected, await producersOnPayments(db, eventPayments), 'producersOfEvents');

  // 5. FX rate changes.
  add(customers, await fxCustomers(db, input.window, input.fx), 'customersFx');

  // 6. Changed customers → their current R1 winner, and the producers of rows on their payments.
  //    A FRESH changed customer — no row stored on any of its payments — took part in no stored row
  //    (every known payment of a won customer gets a direct row; take-backs, flags, agency and FX
  //    only touch its own payments' rows), so for its winner it is new input like appended payments
  //    are: its payments go the append-only way (the adapter checks they all come after the
  //    winner's other history, else recomputes the winner whole).
  // Customer look-ups below are per-customer index probes (LATERAL … OFFSET 0): `customer_id =
  // ANY(large array)` was planned as a scan of every billing event.
  const changed = [...customers].sort((a, b) => a - b);
  const priced = new Set<number>();
  for (const part of chunk(changed, IN_CHUNK * 10)) {
    for (const r of await rows(
      db,
      `SELECT DISTINCT e.customer_id FROM unnest(?::bigint[]) AS c(id)
         CROSS JOIN LATERAL (SELECT * FROM billing_events e WHERE e.customer_id = c.id AND e.kind = 'payment' OFFSET 0) e
        WHERE EXISTS (SELECT 1 FROM computed_commissions cc WHERE cc.payment_event_id = e.id)`,
      [part],
    )) priced.add(Number(r.customer_id));
  }
  const fresh = changed.filter((c) => !priced.has(c));
  for (const part of chunk(fresh, IN_CHUNK * 10)) {
    for (const r of await rows(
      db,
      `SELECT e.id, e.customer_id, e.occurred_at, e.subscription_id FROM unnest(?::bigint[]) AS c(id)
        CROSS JOIN LATERAL (SELECT * FROM billing_events e WHERE e.customer_id = c.id AND e.kind = 'payment' AND e.deleted_at IS NULL OFFSET 0) e`,
      [part],
    )) {
      const c = Number(r.customer_id);
      let l = appendEvents.get(c);
      if (!l) appendEvents.set(c, (l = []));
      l.push(appended(r));
    }
  }
  for (const c of fresh) customers.delete(c);
  counts.customersFresh = fresh.length;
  const customerIds = [...customers].sort((a, b) => a - b);
  counts.customers = customerIds.length;
  add(affected, await winnersOf(db, customerIds), 'winnersOfCustomers');
  const customerPayments = await inChunks(customerIds, async (part) => ids(await db('billing_events').whereIn('customer_id', part).where('kind', 'payment').select('id')));
  add(affected, await producersOnPayments(db, customerPayments), 'producersOfCustomers');

  // 7. Customers whose only change is new payments: their winner (unchanged, since nothing else of
  //    the customer changed) gets the append-only shortcut unless something else affects it.
  const appendCustomers = [...new Set([...appendEvents.keys(), ...fresh])].filter((c) => !customers.has(c)).sort((a, b) => a - b);
  const append = new Map<number, Set<string>>();
  const appendFrom = new Map<number, AppendWindow>();
  const winners = await winnersByCustomer(db, appendCustomers);
  for (const c of appendCustomers) {
    const w = winners.get(c);
    if (w === undefined || affected.has(w)) continue;
    if (!appendEvents.has(c)) {
      // A fresh customer without payments: no rows for anyone; its winner has nothing to add.
      continue;
    }
    let set = append.get(w);
    if (!set) append.set(w, (set = new Set()));
    let from = appendFrom.get(w);
    if (!from) appendFrom.set(w, (from = { firstMs: Infinity, subscriptions: new Set(), customers: new Set() }));
    from.customers.add(c);
    for (const e of appendEvents.get(c)!) {
      set.add(String(e.id));
      if (e.atMs <= asOf.getTime()) from.firstMs = Math.min(from.firstMs, e.atMs);
      if (e.subscriptionId !== null) from.subscriptions.add(e.subscriptionId);
    }
  }
  counts.appendOnlyPartners = append.size;
  for (const w of append.keys()) affected.add(w);

  const partners = [...affected].filter((x) => Number.isSafeInteger(x)).sort((a, b) => a - b);
  counts.partners = partners.length;
  return { partners, counts, agency, append, appendFrom };
}

interface AppendedPayment {
  id: number;
  atMs: number;
  subscriptionId: number | null;
}

const appended = (r: Row): AppendedPayment => ({
  id: Number(r.id),
  atMs: (r.occurred_at instanceof Date ? r.occurred_at : new Date(String(r.occurred_at))).getTime(),
  subscriptionId: r.subscription_id === null || r.subscription_id === undefined ? null : Number(r.subscription_id),
});

/** R1 winner (partner id) of each customer, resolved exactly as the engine does. */
async function winnersByCustomer(db: Knex, customerIds: readonly number[]): Promise<Map<number, number>> {
  const claims = await inChunks(customerIds, (part) =>
    db('attributions as a')
      .join('partner_accounts as pa', 'pa.id', 'a.partner_account_id')
      .whereIn('a.customer_id', part)
      .whereNull('a.deleted_at')
      .select('a.customer_id', 'a.partner_account_id', 'pa.partner_id', 'pa.network', 'a.attributed_at'),
  );
  const attributions: Attribution[] = (claims as Row[]).map((r) => ({
    customerId: String(r.customer_id),
    partnerId: String(r.partner_id),
    partnerAccountId: String(r.partner_account_id),
    network: r.network as Network,
    ...(r.attributed_at ? { attributedAt: r.attributed_at instanceof Date ? r.attributed_at : new Date(String(r.attributed_at)) } : {}),
    clickAt: null,
    signupAt: null,
  }));
  const out = new Map<number, number>();
  for (const [c, a] of resolveAttributions(attributions).byCustomer) out.set(Number(c), Number(a.partnerId));
  return out;
}

async function winnersOf(db: Knex, customerIds: readonly number[]): Promise<number[]> {
  return [...(await winnersByCustomer(db, customerIds)).values()];
}

async function producersOnPayments(db: Knex, paymentIds: readonly number[]): Promise<number[]> {
  return inChunks([...new Set(paymentIds)], async (part) =>
    ids(await db('computed_commissions').whereIn('payment_event_id', part).where('kind', 'direct').distinct('partner_id'), 'partner_id'),
  );
}

/**
 * R7 with time only: a stored `reserve` row whose cleared_at has passed is `due` (the engine's only
 * other use of asOf besides which events are known). Paid and void rows never change here.
 */
export async function advanceClearedRows(db: Knex, asOf: Date): Promise<number> {
  const r = await db.raw(`WITH u AS (UPDATE computed_commissions SET status = 'due', as_of = ? WHERE status = 'reserve' AND cleared_at IS NOT NULL AND cleared_at <= ? RETURNING 1) SELECT count(*)::int AS n FROM u`, [asOf, asOf]);
  return Number((r.rows as Array<{ n: number }>)[0]?.n ?? 0);
}
