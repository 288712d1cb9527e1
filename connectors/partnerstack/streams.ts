// PartnerStack streams: groups, partnerships, customers (incremental on updated_at), transactions and
// rewards (look-back rescans with deletion). Lists are newest-first (created_at desc) with a
// `starting_after=<key>` cursor; we always ask for the largest page (250).
//
// Transactions and rewards have no updated-at filter, so reward status changes, voids and deletions
// are only visible by re-reading a `min_created` window and diffing it. The cadence
// (src/sync/lookback.ts): a *sweep* re-reads the whole look-back window (first run, `--sweep`, or
// the last sweep ≥ sync.lookback.everyHours ago); runs in between read only a *tail* from the end of
// the last completed pass − tailHours. Either pass, once complete, is a complete window: keys inside
// it not seen are marked deleted. `lastSweepAt` lives in the stream's checkpoint.
import type { Knex } from 'knex';
import type { Page, StreamDef, SyncContext } from '../../src/sync/types.ts';
import {
  customerIdsFor,
  ensurePartnerAccounts,
  linkRecruiters,
  markNetworkCommissionsDeleted,
  markNetworkTransactionsDeleted,
  upsertAttributions,
  upsertCustomers,
  upsertNetworkCommissions,
  upsertNetworkTransactions,
  upsertPartnerAccounts,
} from '../../src/model/index.ts';
import { sweepDue, tailMs } from '../../src/sync/lookback.ts';
import { stalePsRewards, stalePsTransactions } from '../stale.ts';
import { chunk } from '../../src/util/chunk.ts';
import { dedupeBy } from '../../src/util/dedupe.ts';
import type { PartnerStackClient } from './client.ts';
import {
  customerSchema,
  groupSchema,
  partnershipSchema,
  rewardSchema,
  transactionSchema,
  type PartnerStackOptions,
  type PsCustomer,
  type PsGroup,
  type PsPartnership,
  type PsReward,
  type PsTransaction,
} from './schemas.ts';
import { mapAttribution, mapCustomer, mapPartnership, mapReward, mapTransaction, msToDate, NETWORK, PARTNERSHIP_LINK_KIND, partnerExternalId, recruiterOf } from './mapping.ts';

const DAY_MS = 86_400_000;
/**
 * An incremental pass only moves the cursor up to the run start minus this margin: records changed
 * while a newest-first pass is under way can sit on pages already read, and the vendor's clock is
 * not ours. Re-reading a few minutes is a harmless upsert.
 */
const CURSOR_SAFETY_MS = 5 * 60_000;

type Params = Record<string, string | number | boolean | undefined>;

// ---- checkpoint states -------------------------------------------------------------------------

/** Full refresh (groups): the page cursor only, so a killed run resumes mid-way. */
export interface FullState {
  [k: string]: string | null;
  startingAfter: string | null;
}

/**
 * Incremental on updated_at. Newest-first order means a `min_updated` filter must be read to its
 * last page before the cursor may advance: `cursor` is the filter value of the next pass; `pass`
 * holds the running pass (its filter value, the page cursor and the newest updated_at seen).
 */
export interface IncrementalState {
  [k: string]: IncrementalPass | number | null;
  cursor: number | null;
  pass: IncrementalPass | null;
}
export interface IncrementalPass {
  [k: string]: string | number | null;
  minUpdated: number | null;
  startingAfter: string | null;
  maxSeen: number | null;
  startedAt: number;
}

/** Look-back rescan: the pass window, when it started (`since`), which phase and the page cursor. */
export interface WindowState {
  [k: string]: WindowPass | number | null;
  lastCompletedTo: number | null;
  /**
   * `to` of the last completed sweep (run clock, epoch ms). Absent in states written before the
   * cadence existed: read as null, i.e. a sweep is due.
   */
  lastSweepAt: number | null;
  pass: WindowPass | null;
}
export interface WindowPass {
  [k: string]: string | number | null;
  since: string;
  /** Pass start (epoch ms); null = the full history (first pass without startDate). */
  from: number | null;
  to: number;
  phase: number;
  startingAfter: string | null;
  /** Set (= `to`) when the pass is a sweep; null for a tail. Absent in older passes: not counted as a sweep. */
  sweepAt: number | null;
}

function keyOf(item: unknown): string | undefined {
  const k = item && typeof item === 'object' ? (item as { key?: unknown }).key : undefined;
  return typeof k === 'string' && k ? k : undefined;
}

function lastKey(items: unknown[], path: string): string {
  const k = keyOf(items[items.length - 1]);
  // Without the last item's key we cannot ask for the next page without skipping or repeating.
  if (!k) throw new Error(`PartnerStack ${path}: the last item of a page has no key; cannot continue pagination`);
  return k;
}

function updatedAtOf(item: unknown): number | undefined {
  const v = item && typeof item === 'object' ? (item as { updated_at?: unknown }).updated_at : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export async function* readFull(client: PartnerStackClient, path: string, params: Params, limit: number, state: FullState, signal?: AbortSignal): AsyncIterable<Page<FullState>> {
  let after = state.startingAfter;
  for (;;) {
    const { items, hasMore } = await client.list(path, { ...params, starting_after: after ?? undefined, limit }, signal);
    if (!hasMore || items.length === 0) {
      yield { records: items, state: { startingAfter: null } };
      return;
    }
    after = lastKey(items, path);
    yield { records: items, state: { startingAfter: after } };
  }
}

export async function* readIncremental(
  ctx: SyncContext,
  client: PartnerStackClient,
  path: string,
  params: Params,
  limit: number,
  state: IncrementalState,
  startMs: number | null,
): AsyncIterable<Page<IncrementalState>> {
  // Whether min_updated is inclusive is undocumented: asking for cursor − 1 ms includes the
  // boundary either way (a re-read record is an idempotent upsert).
  let pass: IncrementalPass = state.pass ?? {
    minUpdated: state.cursor !== null ? state.cursor - 1 : startMs,
    startingAfter: null,
    maxSeen: null,
    startedAt: ctx.now.getTime(),
  };
  for (;;) {
    const { items, hasMore } = await client.list(path, { ...params, min_updated: pass.minUpdated ?? undefined, starting_after: pass.startingAfter ?? undefined, limit }, ctx.signal);
    let maxSeen = pass.maxSeen;
    for (const it of items) {
      const u = updatedAtOf(it);
      if (u !== undefined && (maxSeen === null || u > maxSeen)) maxSeen = u;
    }
    if (!hasMore || items.length === 0) {
      let cursor = state.cursor;
      if (maxSeen !== null) {
        const next = Math.min(maxSeen, pass.startedAt - CURSOR_SAFETY_MS);
        cursor = cursor === null ? next : Math.max(cursor, next);
      }
      yield { records: items, state: { cursor, pass: null } };
      return;
    }
    pass = { ...pass, startingAfter: lastKey(items, path), maxSeen };
    yield { records: items, state: { cursor: state.cursor, pass } };
  }
}

export async function* readWindow(
  ctx: SyncContext,
  client: PartnerStackClient,
  path: string,
  phases: Params[],
  limit: number,
  lookbackDays: number,
  state: WindowState,
  startMs: number | null = null,
): AsyncIterable<Page<WindowState>> {
  const to = ctx.now.getTime();
  const lastSweepAt = state.lastSweepAt ?? null; // absent in pre-cadence states
  // `since` is wall-clock (stream_keys.last_seen_at is stamped with the wall clock at commit).
  let pass: WindowPass = state.pass ?? newWindowPass(ctx, lookbackDays, state, startMs, to);
  // Keys already yielded by an earlier phase of this pass (in memory: a resumed pass may yield a
  // record twice, which is a harmless upsert; this only keeps the counts honest).
  const seen = new Set<string>();
  // A tail re-reads records mostly unchanged since the last run: those need not be re-mapped (see
  // Page.skipUnchanged and the streams' stale()); a sweep re-maps everything.
  const tail = pass.sweepAt === null;
  for (;;) {
    const phase = phases[pass.phase] ?? {};
    // Inclusiveness of min_created is undocumented: from − 1 ms covers the boundary either way.
    const res = await client.list(path, { ...phase, min_created: pass.from !== null ? pass.from - 1 : undefined, starting_after: pass.startingAfter ?? undefined, limit }, ctx.signal);
    const hasMore = res.hasMore;
    const current = pass.phase;
    const items = current === 0 ? res.items : res.items.filter((it) => !seen.has(keyOf(it) ?? '\u0000'));
    if (phases.length > 1 && current === 0) {
      for (const it of items) {
        const k = keyOf(it);
        if (k) seen.add(k);
      }
    }
    if (hasMore && res.items.length > 0) {
      pass = { ...pass, startingAfter: lastKey(res.items, path) };
      yield { records: items, state: { lastCompletedTo: state.lastCompletedTo, lastSweepAt, pass }, skipUnchanged: tail };
      continue;
    }
    if (pass.phase + 1 < phases.length) {
      pass = { ...pass, phase: pass.phase + 1, startingAfter: null };
      yield { records: items, state: { lastCompletedTo: state.lastCompletedTo, lastSweepAt, pass }, skipUnchanged: tail };
      continue;
    }
    yield {
      records: items,
      state: { lastCompletedTo: pass.to, lastSweepAt: pass.sweepAt ?? lastSweepAt, pass: null },
      // A tail is as complete as a sweep within its own bounds, so it also detects deletions there.
      completedWindow: { from: new Date(pass.from ?? 0), to: new Date(pass.to), since: new Date(pass.since) },
      skipUnchanged: tail,
    };
    return;
  }
}

/**
 * Plans a pass. The first pass (no completed pass yet) reads from startMs, or the full history when
 * unset (from = null: no min_created at all). A sweep starts lookbackDays back, a tail tailHours
 * before the end of the last completed pass (never further back than a sweep would) — and neither
 * after the end of the last completed pass: after a pause longer than the window, records created
 * in between would otherwise never be read.
 */
function newWindowPass(ctx: SyncContext, lookbackDays: number, state: WindowState, startMs: number | null, to: number): WindowPass {
  const since = new Date().toISOString();
  const last = state.lastCompletedTo;
  if (last === null) return { since, from: startMs, to, phase: 0, startingAfter: null, sweepAt: to };
  const sweepFrom = Math.min(to - lookbackDays * DAY_MS, last);
  if (sweepDue(ctx, state.lastSweepAt)) return { since, from: sweepFrom, to, phase: 0, startingAfter: null, sweepAt: to };
  // min(…, to): a clock behind the last pass (a back-dated run) reads from its own present.
  const from = Math.max(sweepFrom, Math.min(last - tailMs(ctx), to));
  return { since, from, to, phase: 0, startingAfter: null, sweepAt: null };
}

// ---- lookups ----------------------------------------------------------------------------------

/** partnership key → partner key (the account's external id), from links written by the partnerships stream. */
export async function partnerKeysForPartnerships(trx: Knex, connection: string, partnershipKeys: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const refs = [...new Set(partnershipKeys.filter((k) => k))].map((k) => `${connection}:${k}`);
  for (const part of chunk(refs, 1000)) {
    const rows = await trx('identity_links').where({ kind: PARTNERSHIP_LINK_KIND }).whereIn('from_ref', part).select<{ from_ref: string; to_ref: string }[]>('from_ref', 'to_ref');
    for (const r of rows) out.set(r.from_ref.slice(connection.length + 1), r.to_ref);
  }
  return out;
}

/** Canonical customer ids for PartnerStack customer references: PartnerStack key first, then the shared customer_key. */
async function customerIdsForRefs(trx: Knex, refs: Array<{ key?: string | null | undefined; external_key?: string | null | undefined } | null | undefined>): Promise<(r: { key?: string | null | undefined; external_key?: string | null | undefined } | null | undefined) => number | null> {
  const byKey = await customerIdsFor(trx, NETWORK, refs.map((r) => r?.key ?? ''));
  const ext = [...new Set(refs.filter((r) => r && !(r.key && byKey.has(r.key)) && r.external_key).map((r) => r!.external_key!))];
  const byExt = new Map<string, number>();
  for (const part of chunk(ext, 1000)) {
    const rows = await trx('customers').whereIn('customer_key', part).select<{ id: number; customer_key: string }[]>('id', 'customer_key');
    for (const r of rows) byExt.set(r.customer_key, r.id);
  }
  return (r) => (r?.key ? byKey.get(r.key) : undefined) ?? (r?.external_key ? byExt.get(r.external_key) : undefined) ?? null;
}

// ---- streams ----------------------------------------------------------------------------------

export interface StreamDeps {
  options: PartnerStackOptions;
  recruiterCsv: ReadonlyMap<string, string> | undefined;
  client(ctx: SyncContext): PartnerStackClient;
}

export function buildStreams(deps: StreamDeps): StreamDef<any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const o = deps.options;
  const startMs = o.startDate ? Date.parse(`${o.startDate}T00:00:00Z`) : null;
  const createdAt = (r: { created_at: number }): Date => msToDate(r.created_at);

  const groups: StreamDef<PsGroup, FullState> = {
    name: 'groups',
    schema: groupSchema,
    key: (g) => g.key,
    initialState: () => ({ startingAfter: null }),
    read: (ctx, state) => readFull(deps.client(ctx), 'groups', {}, o.pageSize, state, ctx.signal),
    // Groups have no canonical table: they live in the raw store; accounts carry group_key.
    write: async () => undefined,
  };

  const partnerships: StreamDef<PsPartnership, IncrementalState> = {
    name: 'partnerships',
    schema: partnershipSchema,
    key: (p) => p.key,
    recordTime: createdAt,
    initialState: () => ({ cursor: null, pass: null }),
    // include_archived so archived partnerships show up as status 'archived'. min_updated on
    // partnerships is sent by Airbyte but not documented: if ignored, each pass reads everything.
    read: (ctx, state) => readIncremental(ctx, deps.client(ctx), 'partnerships', { include_archived: true }, o.pageSize, state, startMs),
    write: async (trx, recs, ctx) => {
      const conn = ctx.connection.name;
      const list = dedupeBy(recs, (p) => p.key);
      await upsertPartnerAccounts(trx, list.map((p) => mapPartnership(p, conn, recruiterOf(p, o.recruiterField, deps.recruiterCsv))));
      const links = dedupeBy(
        list.map((p) => ({ kind: PARTNERSHIP_LINK_KIND, from_ref: `${conn}:${p.key}`, to_ref: partnerExternalId(p), source: conn })),
        (l) => l.from_ref,
      );
      for (const part of chunk(links, 500)) await trx('identity_links').insert(part).onConflict(['kind', 'from_ref']).merge(['to_ref', 'source']);
      await linkRecruiters(trx, conn);
      return { inserted: list.length };
    },
  };

  const customers: StreamDef<PsCustomer, IncrementalState> = {
    name: 'customers',
    schema: customerSchema,
    key: (c) => c.key,
    recordTime: createdAt,
    initialState: () => ({ cursor: null, pass: null }),
    read: (ctx, state) => readIncremental(ctx, deps.client(ctx), 'customers', {}, o.pageSize, state, startMs),
    write: async (trx, recs, ctx) => {
      const conn = ctx.connection.name;
      const list = dedupeBy(recs, (c) => c.key);
      const ids = await upsertCustomers(trx, list.map((c) => mapCustomer(c, conn)), ctx.log);
      const viaPartnership = await partnerKeysForPartnerships(trx, conn, list.filter((c) => !c.partner_key && c.partnership_key).map((c) => c.partnership_key!));
      const partnerKey = (c: PsCustomer): string | undefined => c.partner_key || (c.partnership_key ? viaPartnership.get(c.partnership_key) : undefined) || undefined;
      const accounts = await ensurePartnerAccounts(trx, conn, NETWORK, list.map((c) => partnerKey(c) ?? ''));
      const attributions = list.flatMap((c) => {
        const pk = partnerKey(c);
        const acc = pk ? accounts.get(pk) : undefined;
        const cid = ids.get(c.key);
        return acc && cid !== undefined ? [mapAttribution(c, conn, cid, acc.accountId)] : [];
      });
      await upsertAttributions(trx, attributions);
      return { inserted: list.length };
    },
  };

  const transactions: StreamDef<PsTransaction, WindowState> = {
    name: 'transactions',
    schema: transactionSchema,
    key: (t) => t.key,
    recordTime: createdAt,
    initialState: () => ({ lastCompletedTo: null, lastSweepAt: null, pass: null }),
    // readWindow completes windows: records gone from the API are marked deleted.
    detectsVanished: true,
    read: (ctx, state) => readWindow(ctx, deps.client(ctx), 'transactions', [{}], o.pageSize, o.lookbackDays, state, startMs),
    write: async (trx, recs, ctx) => {
      await writeTransactions(trx, recs, ctx.connection.name);
      return { inserted: recs.length };
    },
    stale: (trx, keys, ctx) => stalePsTransactions(trx, ctx.connection.name, keys),
    onDeleted: (trx, keys, ctx) => markNetworkTransactionsDeleted(trx, ctx.connection.name, keys),
  };

  const rewardPhases: Params[] = o.fetchScheduledRewardsSeparately ? [{}, { status: 'scheduled' }] : [{}];
  const rewards: StreamDef<PsReward, WindowState> = {
    name: 'rewards',
    schema: rewardSchema,
    key: (r) => r.key,
    recordTime: createdAt,
    initialState: () => ({ lastCompletedTo: null, lastSweepAt: null, pass: null }),
    // readWindow completes windows: records gone from the API are marked deleted.
    detectsVanished: true,
    read: (ctx, state) => readWindow(ctx, deps.client(ctx), 'rewards', rewardPhases, o.pageSize, o.lookbackDays, state, startMs),
    write: async (trx, recs, ctx) => {
      await writeRewards(trx, recs, ctx.connection.name, o);
      return { inserted: recs.length };
    },
    stale: (trx, keys, ctx) => stalePsRewards(trx, ctx.connection.name, keys, PARTNERSHIP_LINK_KIND),
    onDeleted: (trx, keys, ctx) => markNetworkCommissionsDeleted(trx, ctx.connection.name, keys),
  };

  return [groups, partnerships, customers, transactions, rewards];
}

/** Maps and upserts rewards (also used by push to record a reward it created). */
export async function writeRewards(trx: Knex, recs: PsReward[], conn: string, o: Pick<PartnerStackOptions, 'secondTier'>): Promise<void> {
  const list = dedupeBy(recs, (r) => r.key);
  const viaLink = await partnerKeysForPartnerships(trx, conn, list.map((r) => r.partnership?.key ?? ''));
  const partnerKey = (r: PsReward): string | null => (r.partnership?.key ? viaLink.get(r.partnership.key) : undefined) ?? r.partnership?.partner_key ?? null;
  const accounts = await ensurePartnerAccounts(trx, conn, NETWORK, list.map((r) => partnerKey(r) ?? ''));
  const custId = await customerIdsForRefs(trx, list.map((r) => r.customer));
  await upsertNetworkCommissions(
    trx,
    list.map((r) => {
      const pk = partnerKey(r);
      return mapReward(r, conn, { partnerAccountId: pk ? (accounts.get(pk)?.accountId ?? null) : null, partnerExternalId: pk, customerId: custId(r.customer) }, o.secondTier);
    }),
  );
}

/** Maps and upserts transactions (also used by push to record a transaction it created). */
export async function writeTransactions(trx: Knex, recs: PsTransaction[], conn: string): Promise<void> {
  const list = dedupeBy(recs, (t) => t.key);
  const custId = await customerIdsForRefs(trx, list.map((t) => t.customer));
  const cids = [...new Set(list.map((t) => custId(t.customer)).filter((x): x is number => x !== null))];
  // Transactions name no partner: the customer's attribution on this connection supplies it.
  const accountOf = new Map<number, number>();
  for (const part of chunk(cids, 1000)) {
    const rows = await trx('attributions').where({ connection: conn }).whereNull('deleted_at').whereIn('customer_id', part).select<{ customer_id: number; partner_account_id: number }[]>('customer_id', 'partner_account_id');
    for (const r of rows) accountOf.set(Number(r.customer_id), Number(r.partner_account_id));
  }
  await upsertNetworkTransactions(
    trx,
    list.map((t) => {
      const cid = custId(t.customer);
      return mapTransaction(t, conn, { customerId: cid, partnerAccountId: cid !== null ? (accountOf.get(cid) ?? null) : null });
    }),
  );
  // An archived transaction is as good as deleted (the vendor may archive rather than remove).
  const archived = list.filter((t) => t.archived === true).map((t) => t.key);
  if (archived.length > 0) await markNetworkTransactionsDeleted(trx, conn, archived);
}
