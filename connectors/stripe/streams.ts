// Stripe streams: customers, subscriptions (status=all), invoices (→ payments, with invoice
// payments and the settlement balance transaction joined per page from list calls — see
// fetchPageInvoiceLinks — falling back to per-invoice look-ups), refunds and
// disputes (linked to their invoice through InvoicePayment). Incremental by `created`; within a pass
// the window's upper bound is fixed so newest-first cursor paging (starting_after) is stable, and the
// cursor is checkpointed after every page.
//
// Look-back cadence (src/sync/lookback.ts): Stripe lists have no `updated` filter, so a pass is either
// a *sweep* — the whole look-back window (`lookbackDays`; subscriptions: the whole list) — when one
// is due (first run, `--sweep`, every `sync.lookback.everyHours`, an event cursor missing or past the
// Events API's 30-day retention), or a *tail*: objects created since the end of the last pass minus
// `sync.lookback.tailHours`. Changes to older objects come from the change feed: each pass first reads
// the stream's change events (`/v1/events`, `types[]`, `created[gt]` = the stream's event cursor) and
// re-fetches the objects they name that the window will not read anyway, through the stream's normal
// mapping. The next cursor is the newest event (any type) seen at the start of the pass minus a
// margin, stored with `lastSweepAt` in the stream's checkpoint only when the pass completes; event
// pages checkpoint their `starting_after`, so a killed run resumes without losing events.
import type { Knex } from 'knex';
import { chunk } from '../../src/util/chunk.ts';
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import type { Page, StreamDef, SyncContext } from '../../src/sync/types.ts';
import { ensureCustomers, upsertBillingEvents, upsertCustomers, upsertSubscriptions } from '../../src/model/index.ts';
import type { BillingEventInput } from '../../src/model/types.ts';
import { baseOfPayment, keepFirstOccurredAt, paymentFacts, subscriptionFacts, type PaymentFacts } from '../billing/common.ts';
import { sweepDue, tailMs } from '../../src/sync/lookback.ts';
import { mapLimit, stripeStatusOf, type StripeApi } from './client.ts';
import {
  customerSchema,
  disputeSchema,
  eventSchema,
  invoicePaymentSchema,
  invoiceSchema,
  refId,
  refundSchema,
  subscriptionSchema,
  balanceTransactionSchema,
  type StripeBalanceTransaction,
  type StripeCharge,
  type StripeCustomer,
  type StripeDispute,
  type StripeInvoice,
  type StripeRefund,
  type StripeSubscription,
} from './schemas.ts';
import { invoiceIsPaid, invoiceSubscriptionId, invoiceTax, mapCustomer, mapDispute, mapInvoice, mapRefund, mapSubscription, SYSTEM, type InvoiceLinks, type MoneyBackContext } from './mapping.ts';

export type WindowState = {
  /** `created` upper bound (unix seconds) of the last completed pass. */
  hwm: number | null;
  /** The pass in progress: fixed window and the cursor after the last committed page. */
  pass: WindowPass | null;
  /**
   * When the last completed sweep started (ms, the run's `now`). Absent in states written before the
   * cadence existed: read as null, i.e. a sweep is due.
   */
  lastSweepAt: number | null;
  /** Change events created after this (unix seconds) are read by the next pass; absent/null → sweep. */
  eventCursor: number | null;
};

export type WindowPass = {
  from: number;
  to: number;
  /** Window paging: the last object id committed. */
  after: string | null;
  /** This pass re-reads the whole look-back window (absent in passes started before the cadence). */
  sweep: boolean;
  /** `ctx.now` (ms) when the pass started; becomes lastSweepAt when a sweep completes. */
  startedAt: number;
  /** Change events still to read (created after `since`, paging after event `after`); null when done. */
  events: { since: number; after: string | null } | null;
  /** The event cursor stored when this pass completes (fixed at its start). */
  nextCursor: number | null;
};

type ListFn = (params: Record<string, unknown>) => Promise<{ data: Array<{ id: string }>; has_more: boolean }>;

function startUnix(api: StripeApi): number {
  return api.options.startDate ? Math.floor(new Date(api.options.startDate).getTime() / 1000) : 0;
}

/** Stripe keeps events for 30 days; a cursor older than this (with an hour to spare) means a sweep. */
export const EVENT_RETENTION_S = 30 * 86_400 - 3_600;
/**
 * The next cursor sits this far before the newest event seen at the start of a pass: an event written
 * in the same second, or listed a moment late, is still read next time (reading one twice is harmless).
 */
export const EVENT_MARGIN_S = 300;

/** A changed object named by the change feed (the newest event about it). */
export interface ChangedRef {
  id: string;
  /** The event's `data.object`: the object as it was at the event (in the event's API version). */
  object: Record<string, unknown>;
  type: string;
  created: number;
}

export interface ChangeFeed {
  /** Event types that change an existing object of the stream (creations are read by the window). */
  types: readonly string[];
  /** Current raw records for changed objects (any order; those not found are left out). */
  fetch(refs: ChangedRef[]): Promise<unknown[]>;
}

/** A window page; `changes` (change-feed pages only) says which event brought each object. */
export type WindowPage = Page<WindowState> & { changes?: Map<string, ChangedRef> };

function startPass(api: StripeApi, ctx: SyncContext, state: WindowState, lookbackDays: number | null): Omit<WindowPass, 'nextCursor' | 'events'> & { cursorValid: boolean } {
  const start = startUnix(api);
  const to = Math.floor(ctx.now.getTime() / 1000);
  const cursor = state.eventCursor ?? null;
  const cursorValid = cursor !== null && cursor > to - EVENT_RETENTION_S;
  // No completed pass, a due sweep, or no usable change feed (cursor missing or expired) → sweep.
  const sweep = state.hwm === null || sweepDue(ctx, state.lastSweepAt ?? null) || !cursorValid;
  const from = sweep ? (lookbackDays === null || state.hwm === null ? start : Math.max(start, state.hwm - lookbackDays * 86_400)) : Math.max(start, (state.hwm ?? 0) - Math.floor(tailMs(ctx) / 1000));
  return { from, to, after: null, sweep, startedAt: ctx.now.getTime(), cursorValid };
}

/**
 * One pass of a window stream: the change feed (events since the cursor; objects the window covers
 * are skipped), then the window newest-first. Each page carries the resumable state.
 */
export async function* readCreatedWindow(api: StripeApi, ctx: SyncContext, state: WindowState, lookbackDays: number | null, list: ListFn, feed?: ChangeFeed): AsyncIterable<WindowPage> {
  const base = { hwm: state.hwm, lastSweepAt: state.lastSweepAt ?? null, eventCursor: state.eventCursor ?? null };
  let pass = state.pass;
  if (!pass) {
    const { cursorValid, ...p } = startPass(api, ctx, state, lookbackDays);
    let nextCursor: number | null = null;
    let useFeed = !!feed;
    if (feed) {
      // The newest event of any type, read before the change events: every change event that exists
      // now is no newer, so the pass below reads all of them up to the new cursor. Any type, so a
      // stream whose changes are rare (refund updates) still advances its cursor on a live account.
      try {
        const peek = await api.call((s) => s.events.list({ limit: 1 }));
        const newest = (peek.data[0] as { created?: unknown } | undefined)?.created;
        nextCursor = typeof newest === 'number' ? Math.max(newest - EVENT_MARGIN_S, state.eventCursor ?? 0) : cursorValid ? state.eventCursor : null;
      } catch (err) {
        // A restricted key without Events read access: no feed, so every pass is a sweep (as before the feed).
        if (stripeStatusOf(err) !== 403) throw err;
        ctx.log.warn({ connection: ctx.connection.name }, 'stripe: the API key cannot read events; every sync re-reads the whole look-back window');
        useFeed = false;
      }
    }
    // A window starting at startDate covers every object in scope: no change events to read.
    const feedNeeded = useFeed && cursorValid && p.from > startUnix(api);
    pass = { ...p, events: feedNeeded ? { since: state.eventCursor!, after: null } : null, nextCursor };
  }
  if (pass.sweep === undefined) pass = { ...pass, sweep: false, startedAt: ctx.now.getTime(), events: null, nextCursor: null }; // a pass from before the cadence
  const start = startUnix(api);
  if (pass.events && feed) {
    const seen = new Set<string>();
    for (;;) {
      const ev: { since: number; after: string | null } = pass.events!;
      // `types[]` takes up to 20 names (Stripe docs); each stream lists fewer.
      const params: Record<string, unknown> = { limit: api.options.pageSize, types: [...feed.types], created: { gt: ev.since } };
      if (ev.after) params.starting_after = ev.after;
      const res = await api.call((s) => s.events.list(params));
      const changes = new Map<string, ChangedRef>();
      for (const raw of res.data as unknown[]) {
        const e = eventSchema.safeParse(raw);
        if (!e.success) continue;
        const obj = e.data.data.object as Record<string, unknown>;
        const id = typeof obj.id === 'string' ? obj.id : null;
        if (!id || seen.has(id)) continue;
        seen.add(id); // newest first: the first event about an object is its latest
        // Objects created inside the window are read by it; before startDate they are out of scope.
        const created = typeof obj.created === 'number' ? obj.created : null;
        if (created !== null && (created >= pass.from || created < start)) continue;
        changes.set(id, { id, object: obj, type: e.data.type, created: e.data.created });
      }
      const records = changes.size > 0 ? await feed.fetch([...changes.values()]) : [];
      const last = res.data[res.data.length - 1];
      pass = { ...pass, events: res.has_more && last ? { since: ev.since, after: last.id } : null };
      yield { records, state: { ...base, pass }, changes };
      if (!pass.events) break;
    }
  }
  for (;;) {
    const params: Record<string, unknown> = { limit: api.options.pageSize, created: { gte: pass.from, lte: pass.to } };
    if (pass.after) params.starting_after = pass.after;
    const res = await list(params);
    const last = res.data[res.data.length - 1];
    if (res.has_more && last) {
      pass = { ...pass, after: last.id };
      yield { records: res.data, state: { ...base, pass } };
    } else {
      const done: WindowState = {
        hwm: pass.to,
        pass: null,
        lastSweepAt: pass.sweep ? pass.startedAt : base.lastSweepAt,
        // A pass without a feed keeps no cursor, so the next one sweeps (the strict, old behaviour).
        eventCursor: pass.nextCursor,
      };
      yield { records: res.data, state: done };
      return;
    }
  }
}

/**
 * Re-fetches changed objects one by one (the API has no multi-id look-up), `concurrency` at a time.
 * The current object, not the event's `data.object`: that is the object at event time, rendered in
 * the API version of the event (possibly older than the pinned one, e.g. pre-basil invoices), and
 * without the expansions the mapping needs (charges, invoice payments). An object gone since (404)
 * falls back to the event's snapshot, which the stream's schema then validates like any record.
 */
export async function refetchEach(api: StripeApi, refs: ChangedRef[], retrieve: (s: Stripe, id: string) => Promise<unknown>): Promise<unknown[]> {
  return mapLimit(refs, api.options.concurrency, async (r) => {
    try {
      return await api.call((s) => retrieve(s, r.id));
    } catch (err) {
      if (stripeStatusOf(err) === 404) return structuredClone(r.object);
      throw err;
    }
  });
}

const initial = (): WindowState => ({ hwm: null, pass: null, lastSweepAt: null, eventCursor: null });

// ------------------------------------------------------------------------------------- enrichment

const IP_EXPAND = ['data.payment.charge', 'data.payment.payment_intent.latest_charge'];

/** Links from an invoice's payments (in list order), and the charge whose balance transaction settles it. */
function linksFromPayments(payments: unknown[]): { links: InvoiceLinks; settlementCharge: StripeCharge | null } {
  const links: InvoiceLinks = { invoicePayments: [], paymentIntents: [], charges: [], settlement: null };
  let settlementCharge: StripeCharge | null = null;
  for (const raw of payments) {
    const p = invoicePaymentSchema.safeParse(raw);
    if (!p.success) continue;
    const ip = p.data;
    links.invoicePayments.push(ip.id);
    const pi = ip.payment?.payment_intent;
    const piId = refId(pi ?? null);
    if (piId) links.paymentIntents.push(piId);
    const charge = (typeof ip.payment?.charge === 'object' ? ip.payment.charge : null) ?? (pi && typeof pi === 'object' && typeof pi.latest_charge === 'object' ? pi.latest_charge : null);
    const chargeId = refId(ip.payment?.charge ?? null) ?? (pi && typeof pi === 'object' ? refId(pi.latest_charge ?? null) : null);
    if (chargeId) links.charges.push(chargeId);
    if (charge && ip.status !== 'canceled' && (!settlementCharge || ip.is_default)) settlementCharge = charge;
  }
  const bt = settlementCharge?.balance_transaction;
  if (bt && typeof bt === 'object') links.settlement = bt;
  return { links, settlementCharge };
}

/** The balance transaction id still to fetch: only non-USD invoices need the rate (USD ones are their own USD value). */
function settlementToFetch(inv: StripeInvoice, settlementCharge: StripeCharge | null): string | null {
  const bt = settlementCharge?.balance_transaction;
  return typeof bt === 'string' && inv.currency.toLowerCase() !== 'usd' ? bt : null;
}

/** Invoice payments of a paid invoice (expanded to the charge) and the charge's balance transaction. */
export async function fetchInvoiceLinks(api: StripeApi, inv: StripeInvoice): Promise<InvoiceLinks | null> {
  if (!invoiceIsPaid(inv) || inv.amount_paid <= 0) return null;
  const res = await api.call((s) => s.invoicePayments.list({ invoice: inv.id, limit: 100, expand: IP_EXPAND }));
  const { links, settlementCharge } = linksFromPayments(res.data as unknown[]);
  const bt = settlementToFetch(inv, settlementCharge);
  if (bt) {
    const full = await api.call((s) => s.balanceTransactions.retrieve(bt));
    const parsed = balanceTransactionSchema.safeParse(full);
    if (parsed.success) links.settlement = parsed.data;
  }
  return links;
}

/** An invoice's included `payments` (expand[]=data.payments on the invoice list): ids and creation times. */
export interface IncludedPayments {
  items: Array<{ id: string; created: number }>;
  /** false when the included list has more than it shows (the invoice is then looked up on its own). */
  complete: boolean;
}

/**
 * Takes the included `payments` off raw invoice records (so the raw store keeps the invoice as
 * listed without them) and returns them by invoice id. Invoices without a usable list are absent.
 */
export function takeIncludedPayments(records: unknown[]): Map<string, IncludedPayments> {
  const out = new Map<string, IncludedPayments>();
  for (const r of records) {
    if (!r || typeof r !== 'object' || !('payments' in r)) continue;
    const o = r as { id?: unknown; payments?: unknown };
    const list = o.payments as { data?: unknown; has_more?: unknown } | null | undefined;
    delete o.payments;
    if (typeof o.id !== 'string' || !list || !Array.isArray(list.data)) continue;
    const items: IncludedPayments['items'] = [];
    let ok = list.has_more === false;
    for (const d of list.data as Array<{ id?: unknown; created?: unknown }>) {
      if (typeof d?.id === 'string' && typeof d.created === 'number') items.push({ id: d.id, created: d.created });
      else ok = false;
    }
    out.set(o.id, { items, complete: ok });
  }
  return out;
}

/** Gap (seconds) between creation times that starts a new range listing. */
const RANGE_GAP = 7 * 86_400;
/** Look-ups one more list page is worth (a page of 100 expanded objects costs more than one look-up). */
const RANGE_PAGE_WORTH = 10;

/**
 * Fetches objects by id through a list endpoint filtered on `created` ranges around the wanted
 * objects' creation times (clustered; each range paged newest-first until every wanted id of it is
 * found, the list ends, or a page cap is reached). Returns what was found; the caller looks up the rest.
 */
export async function listByCreated(api: StripeApi, wanted: Map<string, number>, list: (params: Record<string, unknown>) => Promise<unknown>): Promise<Map<string, unknown>> {
  const found = new Map<string, unknown>();
  const sorted = [...wanted].sort((a, b) => a[1] - b[1]);
  const clusters: Array<Array<[string, number]>> = [];
  for (const e of sorted) {
    const cur = clusters[clusters.length - 1];
    if (cur && e[1] - cur[cur.length - 1]![1] <= RANGE_GAP) cur.push(e);
    else clusters.push([e]);
  }
  await mapLimit(clusters, api.options.concurrency, async (c) => {
    const remaining = new Set(c.map((e) => e[0]));
    const cap = Math.ceil(c.length / 100) * 3 + 2;
    let after: string | null = null;
    // At the cap, objects still wanted buy more pages (one per RANGE_PAGE_WORTH of them), so a burst
    // created in one second (renewals, imports) is listed through instead of looked up one by one,
    // and a range that holds mostly other objects costs at most 1/RANGE_PAGE_WORTH more look-ups.
    let limit = cap;
    for (let pages = 0; remaining.size > 0; pages++) {
      if (pages === cap) limit = cap + Math.floor(remaining.size / RANGE_PAGE_WORTH);
      if (pages >= limit) break;
      const params: Record<string, unknown> = { limit: 100, created: { gte: c[0]![1], lte: c[c.length - 1]![1] } };
      if (after) params.starting_after = after;
      const res = (await list(params)) as { data: Array<{ id: string }>; has_more: boolean };
      for (const d of res.data) {
        if (remaining.delete(d.id)) found.set(d.id, d);
      }
      const last = res.data[res.data.length - 1];
      if (!res.has_more || !last) break;
      after = last.id;
    }
  });
  return found;
}

/** List order of invoice payments (newest first), used to order an invoice's payments found by range. */
function newestFirst(a: { id: string; created: number }, b: { id: string; created: number }): number {
  return b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * Links of a page of invoices with a few list calls instead of one look-up per invoice: each
 * invoice's payments come from its included `payments`; their expanded form (charge, payment
 * intent → latest charge) from the invoice-payment list over their creation range; settlement
 * balance transactions of non-USD invoices from the balance-transaction list over the charges'
 * creation range. Anything not found that way (no included list, more payments than included,
 * outside the ranges) is looked up per invoice / per balance transaction exactly as before.
 */
export async function fetchPageInvoiceLinks(api: StripeApi, invs: StripeInvoice[], included: Map<string, IncludedPayments>): Promise<Map<string, InvoiceLinks | null>> {
  const out = new Map<string, InvoiceLinks | null>();
  const paid: StripeInvoice[] = [];
  for (const inv of invs) {
    if (!invoiceIsPaid(inv) || inv.amount_paid <= 0) out.set(inv.id, null);
    else paid.push(inv);
  }
  const wanted = new Map<string, number>();
  for (const inv of paid) {
    const inc = included.get(inv.id);
    if (inc?.complete) for (const p of inc.items) wanted.set(p.id, p.created);
  }
  const ips = wanted.size > 0 ? await listByCreated(api, wanted, (p) => api.call((s) => s.invoicePayments.list({ ...p, expand: IP_EXPAND }))) : new Map<string, unknown>();
  const fallback: StripeInvoice[] = [];
  const btWanted = new Map<string, number>();
  const pending: Array<{ inv: StripeInvoice; links: InvoiceLinks; bt: string | null }> = [];
  for (const inv of paid) {
    const inc = included.get(inv.id);
    if (!inc?.complete || inc.items.some((p) => !ips.has(p.id))) {
      fallback.push(inv);
      continue;
    }
    const { links, settlementCharge } = linksFromPayments([...inc.items].sort(newestFirst).map((p) => ips.get(p.id)));
    const bt = settlementToFetch(inv, settlementCharge);
    const chargeCreated = (settlementCharge as { created?: unknown } | null)?.created;
    if (bt && typeof chargeCreated === 'number') btWanted.set(bt, chargeCreated);
    pending.push({ inv, links, bt });
  }
  const bts = btWanted.size > 0 ? await listByCreated(api, btWanted, (p) => api.call((s) => s.balanceTransactions.list(p))) : new Map<string, unknown>();
  const missingBt = [...new Set(pending.map((p) => p.bt).filter((b): b is string => !!b && !bts.has(b)))];
  await mapLimit(missingBt, api.options.concurrency, async (id) => bts.set(id, await api.call((s) => s.balanceTransactions.retrieve(id))));
  for (const { inv, links, bt } of pending) {
    if (bt) {
      const parsed = balanceTransactionSchema.safeParse(bts.get(bt));
      if (parsed.success) links.settlement = parsed.data;
    }
    out.set(inv.id, links);
  }
  await mapLimit(fallback, api.options.concurrency, async (inv) => out.set(inv.id, await fetchInvoiceLinks(api, inv)));
  return out;
}

interface PaymentRef {
  key: string;
  paymentIntent: string | null;
  charge: string | null;
}

export interface ResolvedPayment {
  payment: PaymentFacts | null;
  invoiceId: string | null;
}

/**
 * Finds the invoice (and its stored payment facts) behind refunds/disputes: first through the
 * payment intents / charges recorded on stored payment events, then through the InvoicePayment
 * API (listed by payment intent); an invoice not stored yet is fetched to compute its base.
 */
export async function resolvePayments(api: StripeApi, db: Knex, connection: string, refs: PaymentRef[]): Promise<Map<string, ResolvedPayment>> {
  const out = new Map<string, ResolvedPayment>();
  const values = [...new Set(refs.flatMap((r) => [r.paymentIntent, r.charge]).filter((x): x is string => !!x))];
  const byRef = new Map<string, string>();
  if (values.length > 0) {
    // `?|` on the GIN-indexed arrays (migration 007) finds the payments, then the arrays say which
    // id matched. (`\\?|` is knex's escape for a literal `?|` operator.)
    // Small chunks: with ~200 ids the planner estimates `?|` to match so many rows that it picks a
    // (parallel) sequential scan of billing_events — 1.2 s per query at 100k payments, against 0.3 ms
    // through the GIN index for 20 (EXPLAIN ANALYZE; index kept up to ~80 ids there).
    const wanted = new Set(values);
    for (const part of chunk(values, 25)) {
      const rows = await db('billing_events')
        .where({ connection, kind: 'payment' })
        .where((q) => q.whereRaw(`metadata->'payment_intents' \\?| ?::text[]`, [part]).orWhereRaw(`metadata->'charges' \\?| ?::text[]`, [part]))
        .select<{ external_id: string; metadata: { payment_intents?: unknown; charges?: unknown } | null }[]>('external_id', 'metadata');
      for (const r of rows) {
        for (const list of [r.metadata?.payment_intents, r.metadata?.charges]) {
          if (!Array.isArray(list)) continue;
          for (const v of list) if (typeof v === 'string' && wanted.has(v)) byRef.set(v, r.external_id);
        }
      }
    }
  }
  const invoiceOf = new Map<string, string | null>();
  for (const r of refs) {
    const inv = (r.paymentIntent && byRef.get(r.paymentIntent)) || (r.charge && byRef.get(r.charge)) || null;
    invoiceOf.set(r.key, inv);
  }
  const missing = refs.filter((r) => !invoiceOf.get(r.key) && r.paymentIntent);
  const piCache = new Map<string, string | null>();
  await mapLimit(missing, api.options.concurrency, async (r) => {
    const pi = r.paymentIntent!;
    if (!piCache.has(pi)) {
      const res = await api.call((s) => s.invoicePayments.list({ payment: { type: 'payment_intent', payment_intent: pi }, limit: 10 }));
      const first = (res.data as unknown[]).map((d) => invoicePaymentSchema.safeParse(d)).find((p) => p.success);
      piCache.set(pi, first?.success ? refId(first.data.invoice) : null);
    }
    invoiceOf.set(r.key, piCache.get(pi) ?? null);
  });
  const invoiceIds = [...new Set([...invoiceOf.values()].filter((x): x is string => !!x))];
  const facts = new Map((await paymentFacts(db, connection, invoiceIds)).map((f) => [f.externalId, f]));
  const notStored = invoiceIds.filter((id) => !facts.has(id));
  await mapLimit(notStored, api.options.concurrency, async (id) => {
    const parsed = invoiceSchema.safeParse(await api.call((s) => s.invoices.retrieve(id)));
    if (!parsed.success) return;
    const inv = parsed.data;
    const { base } = baseOfPayment({ amountPaid: inv.amount_paid, total: inv.total ?? inv.amount_paid, tax: invoiceTax(inv) });
    facts.set(id, { externalId: id, documentId: id, base, gross: inv.amount_paid, currency: inv.currency, subscriptionExternalId: invoiceSubscriptionId(inv), metadata: {} });
  });
  for (const r of refs) {
    const inv = invoiceOf.get(r.key) ?? null;
    out.set(r.key, { invoiceId: inv, payment: inv ? (facts.get(inv) ?? null) : null });
  }
  return out;
}

function chargeCustomer(c: string | StripeCharge | null | undefined): string | null {
  return c && typeof c === 'object' ? refId(c.customer ?? null) : null;
}

// ------------------------------------------------------------------------------------------ writers

export async function writeCustomers(trx: Knex, connection: string, records: StripeCustomer[], log?: Logger): Promise<void> {
  await upsertCustomers(trx, records.filter((c) => !c.deleted).map((c) => mapCustomer(c, connection)), log);
}

export async function writeSubscriptions(trx: Knex, connection: string, records: StripeSubscription[]): Promise<void> {
  const custs = await ensureCustomers(trx, SYSTEM, connection, records.map((s) => refId(s.customer) ?? ''));
  await upsertSubscriptions(trx, records.map((s) => mapSubscription(s, connection, custs.get(refId(s.customer) ?? '') ?? null)));
}

export async function writeInvoices(trx: Knex, connection: string, records: StripeInvoice[], links: Map<string, InvoiceLinks | null>): Promise<number> {
  const paid = records.filter(invoiceIsPaid);
  if (paid.length === 0) return 0;
  const custs = await ensureCustomers(trx, SYSTEM, connection, paid.map((i) => refId(i.customer) ?? ''));
  const subs = await subscriptionFacts(trx, connection, paid.map((i) => invoiceSubscriptionId(i) ?? ''));
  const rows = paid
    .map((inv) =>
      mapInvoice(inv, {
        connection,
        customerId: custs.get(refId(inv.customer) ?? '') ?? null,
        subscription: subs.get(invoiceSubscriptionId(inv) ?? ''),
        links: links.get(inv.id) ?? null,
      }),
    )
    .filter((r): r is BillingEventInput => r !== null);
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

function moneyBackContext(connection: string, customerId: number | null, r: ResolvedPayment | undefined): MoneyBackContext {
  return { connection, customerId, payment: r?.payment ?? null, invoiceId: r?.invoiceId ?? null };
}

async function customerIdsFor(trx: Knex, connection: string, items: Array<{ charge?: string | StripeCharge | null | undefined }>, resolved: Map<string, ResolvedPayment>, keys: string[]): Promise<Array<number | null>> {
  // The customer comes from the expanded charge, else from the stored payment event.
  const ext = items.map((i) => chargeCustomer(i.charge));
  const custs = await ensureCustomers(trx, SYSTEM, connection, ext.filter((x): x is string => !!x));
  const paymentCustomers = new Map<string, number | null>();
  const payIds = keys.map((k) => resolved.get(k)?.payment?.externalId).filter((x): x is string => !!x);
  if (payIds.length > 0) {
    const rows = await trx('billing_events').where({ connection, kind: 'payment' }).whereIn('external_id', payIds).select<{ external_id: string; customer_id: number | null }[]>('external_id', 'customer_id');
    for (const r of rows) paymentCustomers.set(r.external_id, r.customer_id === null ? null : Number(r.customer_id));
  }
  return items.map((_, i) => {
    const e = ext[i];
    if (e) return custs.get(e) ?? null;
    const pay = resolved.get(keys[i]!)?.payment?.externalId;
    return pay ? (paymentCustomers.get(pay) ?? null) : null;
  });
}

export async function writeRefunds(trx: Knex, connection: string, records: StripeRefund[], resolved: Map<string, ResolvedPayment>): Promise<number> {
  const cids = await customerIdsFor(trx, connection, records, resolved, records.map((r) => r.id));
  const rows = records.map((r, i) => mapRefund(r, moneyBackContext(connection, cids[i] ?? null, resolved.get(r.id)))).filter((r): r is BillingEventInput => r !== null);
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

export async function writeDisputes(trx: Knex, connection: string, records: StripeDispute[], resolved: Map<string, ResolvedPayment>, closedAt?: Map<string, Date>): Promise<number> {
  const cids = await customerIdsFor(trx, connection, records, resolved, records.map((d) => d.id));
  const rows = records.flatMap((d, i) => mapDispute(d, moneyBackContext(connection, cids[i] ?? null, resolved.get(d.id)), closedAt?.get(d.id) ?? null));
  await keepFirstOccurredAt(trx, rows, ['dispute_won', 'dispute_lost', 'chargeback']);
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

export function paymentRefOf(o: { id: string; payment_intent?: string | { id: string } | null; charge?: string | StripeCharge | null }): PaymentRef {
  const chargePi = o.charge && typeof o.charge === 'object' ? refId(o.charge.payment_intent ?? null) : null;
  return { key: o.id, paymentIntent: refId(o.payment_intent ?? null) ?? chargePi, charge: refId(o.charge ?? null) };
}

// ------------------------------------------------------------------------------------------ streams

/**
 * The links read() looked up for a page travel with the page (Page.context) to write(). The engine
 * writes several pages in one transaction while the next pages are already being read, so no
 * per-stream "current page" state can be shared between read and write.
 */
function mergeLinks<V>(contexts: unknown[]): Map<string, V> {
  const out = new Map<string, V>();
  for (const c of contexts) if (c instanceof Map) for (const [k, v] of c as Map<string, V>) out.set(k, v);
  return out;
}

/**
 * Maps pages in order with `fn`, one page ahead: fn(page n) runs while page n+1 is being listed (a
 * cursor list cannot be fetched further ahead). Pages come out in order, each once its fn is done,
 * so a checkpoint still follows every page before it. If listing fails, the page being mapped is
 * dropped (never handed out: the next run re-reads it from the checkpoint); if fn fails, its error is raised.
 */
export async function* mapAhead<P, Q>(pages: AsyncIterable<P>, fn: (page: P) => Promise<Q>): AsyncIterable<Q> {
  let pending: Promise<Q> | undefined;
  for await (const page of pages) {
    const next = fn(page);
    // Awaited below; until then (and if the run stops first) a failure is not an unhandled rejection.
    next.catch(() => undefined);
    if (pending) yield await pending;
    pending = next;
  }
  if (pending) yield await pending;
}

function parsedList<T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }, items: unknown[]): T[] {
  return items.map((i) => schema.safeParse(i)).filter((p) => p.success).map((p) => p.data as T);
}

/** Change events per stream (Stripe event names; a name Stripe does not send simply never matches). */
export const CHANGE_EVENTS = {
  // customer.deleted is left out: a deleted customer is not written (and its retrieve has no `created`).
  customers: ['customer.updated'],
  subscriptions: ['customer.subscription.updated', 'customer.subscription.deleted', 'customer.subscription.paused', 'customer.subscription.resumed'],
  invoices: ['invoice.paid', 'invoice.payment_succeeded', 'invoice.voided', 'invoice.marked_uncollectible', 'invoice.updated'],
  // A new refund is a new object (the window reads it); these change existing ones. `charge.refund.updated`
  // is the older name of `refund.updated` (which one an account sends depends on its API version).
  refunds: ['refund.updated', 'refund.failed', 'charge.refund.updated'],
  disputes: ['charge.dispute.updated', 'charge.dispute.closed', 'charge.dispute.funds_withdrawn', 'charge.dispute.funds_reinstated'],
} as const;

/** Dispute close times from `charge.dispute.closed` events of a page (as the webhook uses the event time). */
function closedAtOf(page: WindowPage): Map<string, Date> | undefined {
  if (!page.changes) return undefined;
  const out = new Map<string, Date>();
  for (const c of page.changes.values()) if (c.type === 'charge.dispute.closed') out.set(c.id, new Date(c.created * 1000));
  return out.size > 0 ? out : undefined;
}

/** Page payload read() hands to write() (plain pages: the map alone, as before). */
interface DisputeContext {
  resolved: Map<string, ResolvedPayment>;
  closedAt?: Map<string, Date> | undefined;
}

export function stripeStreams(api: StripeApi): StreamDef<any, WindowState>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const lb = api.options.lookbackDays;
  const list = (fn: (s: Stripe, p: Record<string, unknown>) => Promise<unknown>): ListFn => (p) => api.call((s) => fn(s, p) as Promise<{ data: Array<{ id: string }>; has_more: boolean }>);
  const feed = (types: readonly string[], retrieve: (s: Stripe, id: string) => Promise<unknown>): ChangeFeed => ({ types, fetch: (refs) => refetchEach(api, refs, retrieve) });
  /** Pages without the change-feed bookkeeping (it stays in read()). */
  const plain = ({ changes: _c, ...page }: WindowPage): Page<WindowState> => page;

  const customers: StreamDef<StripeCustomer, WindowState> = {
    name: 'customers',
    skipUnchanged: true,
    schema: customerSchema,
    key: (c) => c.id,
    recordTime: (c) => new Date(c.created * 1000),
    initialState: initial,
    async *read(ctx, state) {
      const f = feed(CHANGE_EVENTS.customers, (s, id) => s.customers.retrieve(id));
      for await (const page of readCreatedWindow(api, ctx, state, lb.customers, list((s, p) => s.customers.list(p)), f)) yield plain(page);
    },
    write: (trx, recs, ctx) => writeCustomers(trx, ctx.connection.name, recs, ctx.log),
  };

  const subscriptions: StreamDef<StripeSubscription, WindowState> = {
    name: 'subscriptions',
    skipUnchanged: true,
    schema: subscriptionSchema,
    key: (s) => s.id,
    recordTime: (s) => new Date(s.created * 1000),
    initialState: initial,
    async *read(ctx, state) {
      // Between sweeps only subscriptions created in the tail are listed; status changes of older ones come from the feed.
      const f = feed(CHANGE_EVENTS.subscriptions, (s, id) => s.subscriptions.retrieve(id));
      for await (const page of readCreatedWindow(api, ctx, state, lb.subscriptions, list((s, p) => s.subscriptions.list({ ...p, status: 'all' })), f)) yield plain(page);
    },
    write: (trx, recs, ctx) => writeSubscriptions(trx, ctx.connection.name, recs),
  };

  const invoices: StreamDef<StripeInvoice, WindowState> = {
    name: 'invoices',
    skipUnchanged: true,
    schema: invoiceSchema,
    key: (i) => i.id,
    recordTime: (i) => new Date(i.created * 1000),
    initialState: initial,
    async *read(ctx, state) {
      // `payments` is includable on a retrieve as on the list (tolerant: without it the links are looked up per invoice).
      const f = feed(CHANGE_EVENTS.invoices, (s, id) => s.invoices.retrieve(id, { expand: ['payments'] }));
      // The list includes each invoice's payments, so the page's links take a few list calls (see
      // fetchPageInvoiceLinks); they are fetched while the next page is listed.
      const pages = readCreatedWindow(api, ctx, state, lb.invoices, list((s, p) => s.invoices.list({ ...p, expand: ['data.payments'] })), f);
      yield* mapAhead(pages, async (page) => {
        const included = takeIncludedPayments(page.records);
        const invs = parsedList<StripeInvoice>(invoiceSchema, page.records);
        return { ...plain(page), context: await fetchPageInvoiceLinks(api, invs, included) };
      });
    },
    write: async (trx, recs, ctx, contexts) => ({ written: await writeInvoices(trx, ctx.connection.name, recs, mergeLinks<InvoiceLinks | null>(contexts)) }),
  };

  const refunds: StreamDef<StripeRefund, WindowState> = {
    name: 'refunds',
    // read() resolves each refund's payment from the stored invoices (resolvePayments).
    readAhead: false,
    schema: refundSchema,
    key: (r) => r.id,
    recordTime: (r) => new Date(r.created * 1000),
    initialState: initial,
    async *read(ctx, state) {
      const f = feed(CHANGE_EVENTS.refunds, (s, id) => s.refunds.retrieve(id, { expand: ['charge', 'balance_transaction'] }));
      for await (const page of readCreatedWindow(api, ctx, state, lb.refunds, list((s, p) => s.refunds.list({ ...p, expand: ['data.charge', 'data.balance_transaction'] })), f)) {
        const recs = parsedList<StripeRefund>(refundSchema, page.records);
        yield { ...plain(page), context: await resolvePayments(api, ctx.db, ctx.connection.name, recs.map(paymentRefOf)) };
      }
    },
    write: async (trx, recs, ctx, contexts) => ({ written: await writeRefunds(trx, ctx.connection.name, recs, mergeLinks<ResolvedPayment>(contexts)) }),
  };

  const disputes: StreamDef<StripeDispute, WindowState> = {
    name: 'disputes',
    readAhead: false,
    schema: disputeSchema,
    key: (d) => d.id,
    recordTime: (d) => new Date(d.created * 1000),
    initialState: initial,
    async *read(ctx, state) {
      const f = feed(CHANGE_EVENTS.disputes, (s, id) => s.disputes.retrieve(id, { expand: ['charge'] }));
      for await (const page of readCreatedWindow(api, ctx, state, lb.disputes, list((s, p) => s.disputes.list({ ...p, expand: ['data.charge'] })), f)) {
        const recs = parsedList<StripeDispute>(disputeSchema, page.records);
        const context: DisputeContext = { resolved: await resolvePayments(api, ctx.db, ctx.connection.name, recs.map(paymentRefOf)), closedAt: closedAtOf(page) };
        yield { ...plain(page), context };
      }
    },
    write: async (trx, recs, ctx, contexts) => {
      const cs = contexts as DisputeContext[];
      const closedAt = new Map<string, Date>();
      for (const c of cs) for (const [k, v] of c.closedAt ?? []) closedAt.set(k, v);
      return { written: await writeDisputes(trx, ctx.connection.name, recs, mergeLinks<ResolvedPayment>(cs.map((c) => c.resolved)), closedAt) };
    },
  };

  return [customers, subscriptions, invoices, refunds, disputes];
}

export type { StripeBalanceTransaction };
