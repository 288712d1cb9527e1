// Reconciliation run. Matches and classifies (network, period) slices with the pure modules and
// upserts discrepancies by fingerprint so identity persists across runs:
//   new → open; seen again → stays open/approved/ignored (details refreshed); resolved but seen
//   again → reopened (counted as new); open/approved in the evaluated scope but not seen → resolved.
//
// Three modes, one procedure:
// - full: every network and period (`full: true`, no cursor yet, or the matching config changed),
//   by batches of whole units (full.ts), each evaluated and written before the next is loaded, so
//   memory is one batch's; with a matching rule that blocks on neither reference nor customer (no
//   units), by (network, period) slices held until the end;
// - scoped: `period` and/or `network` given — those slices only, fresh from the data; cursor and
//   reconcile_items untouched (they describe the last whole evaluation);
// - incremental (default once a full run stored a cursor): only the units whose inputs changed since
//   the cursor (see incremental.ts for the unit and dependency analysis), evaluated with the same
//   slice procedure restricted to their rows, so the discrepancies equal a full run's.
// All discrepancy writes of a run, the reconcile_items rewrite and the cursor commit together (a
// batched full run reads inside that transaction too).
//
// "Found" means: the latest evaluation of a row's unit saw it — every open or approved row (one not
// seen is resolved then) and the ignored rows not listed as stale (cursor state). Counts come from
// the table and totals from reconcile_items, so they cover everything whatever was re-evaluated.
// last_run_id / last_seen_at tell when a row was last re-evaluated and seen (a full run: all).
import { DISCREPANCY_WRITE_LOCK } from '../db/locks.ts';
import { refreshPlannerStats } from '../db/planner-stats.ts';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { DateTime } from 'luxon';
import type { Config } from '../config/schema.ts';
import { chunk } from '../util/chunk.ts';
import { pauseEvery, type Pause } from '../util/pause.ts';
import { writeBehind } from '../util/write-behind.ts';
import { sha256 } from '../util/hash.ts';
import { errorMessage, UserError } from '../util/errors.ts';
import { loadChangeCursor, readChangeWatermark, saveChangeCursor } from '../db/changes.ts';
import { bulkInsert, upsertClause } from '../db/bulk.ts';
import { isPglite } from '../db/connection.ts';
import { defaultMatchRules, matchCommissions, type MatchRule } from './match.ts';
import { classify, networkUsd } from './classify.ts';
import { loadAccounts, loadExpectedRows, loadNetworkRows, num, type Account } from './load.ts';
import { DEFAULT_FULL_BATCH_ROWS, fullUnitBatches, type UnitBatch } from './full.ts';
import { readDiscrepancyCounts } from './discrepancies.ts';
import { addContribution, applyTotalsDelta, deleteItems, readTotals, rebuildTotals, type Contribution } from './totals.ts';
import {
  assignUnits, ccItem, changedSeeds, configHash, expandSeeds, expectedRowKeys, expectedRowSig, ncItem, networkRowKeys, networkRowSig, rulesSupportUnits,
  STATE_VERSION, type ReconcileState,
} from './incremental.ts';
import type { BillingFacts, ExpectedRow, Finding, NetworkRow } from './types.ts';

export { toNetworkRow } from './load.ts';

export interface ReconcileOptions {
  /** yyyy-mm; default every period with data. */
  period?: string | undefined;
  network?: string | undefined;
  now?: Date | undefined;
  /** Matching rules (data); default from config (`defaultMatchRules`). */
  rules?: MatchRule[] | undefined;
  /** Re-evaluate everything even when an incremental run is possible. */
  full?: boolean | undefined;
  /** Full run: seed rows per batch of units (bounds memory; the result does not depend on it). */
  batchRows?: number | undefined;
  /**
   * Full run: `units` (default) evaluates and writes batch by batch (full.ts); `slices` holds every
   * (network, period) slice's output until the end — the reference procedure, and the only one
   * when a matching rule blocks on neither reference nor customer.
   */
  fullStrategy?: 'units' | 'slices' | undefined;
}

export interface TotalsRow {
  key: string;
  network: string | null;
  partnerId: number | null;
  partnerName: string | null;
  reportedUsdMinor: number;
  owedUsdMinor: number;
  collectedUsdMinor: number;
  deltaUsdMinor: number;
}

export interface ReconcileSummary {
  runId: number;
  status: 'succeeded' | 'failed';
  mode: 'full' | 'incremental' | 'scoped';
  /** Why a run that could have been incremental was full. */
  fullReason?: string | undefined;
  period: string | null;
  network: string | null;
  /** Units (connected groups of rows, see incremental.ts) and items (network rows + computed commissions) evaluated. */
  units: number;
  items: number;
  slices: Array<{ network: string; period: string; networkRows: number; computedRows: number; findings: number }>;
  found: number;
  new: number;
  stillOpen: number;
  resolved: number;
  byKind: Record<string, number>;
  newIds: number[];
  totals: { byNetwork: TotalsRow[]; byPartner: TotalsRow[] };
  /** Milliseconds per phase: plan (find + load + match), write (one transaction), totals. */
  timings: { planMs: number; writeMs: number; totalsMs: number };
  error?: string;
}

export interface ReconcileDeps {
  db: Knex;
  config: Config;
  log?: Logger | undefined;
}

const PERIOD_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
const CONSUMER = 'reconcile';

export function parsePeriod(period: string, zone: string): { from: Date; to: Date } {
  if (!PERIOD_RE.test(period)) throw new UserError(`--period: expected yyyy-mm (got "${period}")`);
  const [y, m] = period.split('-').map(Number) as [number, number];
  const start = DateTime.fromObject({ year: y, month: m, day: 1 }, { zone });
  return { from: start.toJSDate(), to: start.plus({ months: 1 }).toJSDate() };
}

/**
 * The period (yyyy-mm in `zone`) of an instant. Built from the date's fields, not toFormat: a full
 * reconcile asks for ~700k of them at 100k payments, and luxon's formatter was most of their cost
 * (2.3 against 0.55 µs each in UTC). Outside the years 0–9999, where toFormat pads differently,
 * and for an invalid zone, it defers to toFormat.
 */
export function periodOf(at: Date, zone: string): string {
  const d = DateTime.fromJSDate(at, { zone });
  const { year, month } = d;
  if (!(year >= 0 && year <= 9999)) return d.toFormat('yyyy-MM');
  return `${year < 1000 ? String(year).padStart(4, '0') : year}-${month < 10 ? '0' : ''}${month}`;
}

/** The slices to scan: every network and period that has data or still-open discrepancies. */
async function scopes(db: Knex, config: Config, opts: ReconcileOptions): Promise<{ networks: string[]; periods: string[] }> {
  const tz = config.timezone;
  let networks: string[];
  if (opts.network) networks = [opts.network];
  else {
    const r = await db.raw(
      `SELECT network FROM network_commissions UNION SELECT network FROM computed_commissions WHERE network IS NOT NULL
       UNION SELECT network FROM discrepancies WHERE network IS NOT NULL AND status IN ('open','approved')`,
    );
    networks = (r.rows as Array<{ network: string }>).map((x) => x.network).sort();
  }
  let periods: string[];
  if (opts.period) {
    parsePeriod(opts.period, tz);
    periods = [opts.period];
  } else {
    const r = await db.raw(
      `SELECT to_char(occurred_at AT TIME ZONE ?, 'YYYY-MM') AS p FROM network_commissions
       UNION SELECT to_char(be.occurred_at AT TIME ZONE ?, 'YYYY-MM') FROM billing_events be WHERE be.kind = 'payment'
         AND EXISTS (SELECT 1 FROM computed_commissions cc WHERE cc.payment_event_id = be.id)
       UNION SELECT period FROM discrepancies WHERE period IS NOT NULL AND status IN ('open','approved')`,
      [tz, tz],
    );
    periods = (r.rows as Array<{ p: string }>).map((x) => x.p).filter(Boolean).sort();
  }
  return { networks, periods };
}

/**
 * Reward markers of our own sent corrections → the commission they corrected. The PartnerStack
 * connector tags a created reward's description with [cs:<first 16 hex of sha256(idempotency key)>].
 */
export async function adjustmentMarkers(db: Knex): Promise<Map<string, string>> {
  const rows = await db('corrections as c')
    .join('discrepancies as d', 'd.id', 'c.discrepancy_id')
    .where('c.action_type', 'create_reward')
    .whereIn('c.status', ['sending', 'sent', 'confirmed'])
    .whereNotNull('d.computed_commission_key')
    .select('c.idempotency_key', 'd.computed_commission_key');
  return new Map(rows.map((r) => [`cs:${sha256(String(r.idempotency_key)).slice(0, 16)}`, String(r.computed_commission_key)]));
}

interface EvalContext {
  config: Config;
  rules: MatchRule[];
  now: Date;
  markers: Map<string, string>;
  accounts: Map<number, Account>;
}

/** What the last evaluation knows of one item (a reconcile_items row). */
interface ItemOut {
  item: string;
  network: string;
  paymentId: number | null;
  sig: string;
  keys: string[];
  counted: boolean;
  partnerId: number | null;
  reported: number;
  owed: number;
  collected: number;
}

/**
 * Findings of one run by fingerprint, in slice order. A fingerprint seen in several slices (an
 * attribution finding recurs with each payment of the customer) is written once, as the former
 * per-slice upserts left it: period and commission key of the first sighting (insert-only
 * columns), everything else of the last.
 */
class FindingSet {
  readonly byFp = new Map<string, Finding>();
  add(fs: Finding[]): void {
    for (const f of fs) {
      const first = this.byFp.get(f.fingerprint);
      this.byFp.set(f.fingerprint, first ? { ...f, period: first.period, computedCommissionKey: first.computedCommissionKey } : f);
    }
  }
}

/** One (network, period) slice: the full run's unit of work, also applied to an incremental run's rows. */
function evaluateSlice(ctx: EvalContext, network: string, period: string, networkRows: NetworkRow[], expected: ExpectedRow[]): { findings: Finding[]; items: ItemOut[] } {
  const { config, now, markers, accounts } = ctx;
  const tz = config.timezone;
  const rc = config.reconcile;
  const { from, to } = parsePeriod(period, tz);
  const match = matchCommissions(networkRows, expected, ctx.rules, { adjustmentOf: (m) => markers.get(m) });
  const all = classify(match, {
    network,
    tolerance: rc.tolerance[network] ?? rc.defaultTolerance,
    severity: rc.severity,
    now,
    graceHours: rc.graceHours,
    attributionWindowDays: rc.attributionWindowDays,
    periodOf: (d) => periodOf(d, tz),
    partnerOfAccount: (id) => (id === null ? null : (accounts.get(id)?.partnerId ?? null)),
  });
  const findings = all
    .filter((f) => f.period === period)
    .map((f) => (f.connection === null && f.partnerAccountId !== null ? { ...f, connection: accounts.get(f.partnerAccountId)?.connection ?? null } : f));

  // Each item's share of the totals, from the slice of its own period: reported (network), owed
  // (rules), collected (billing).
  const inPeriod = (d: Date): boolean => d.getTime() >= from.getTime() && d.getTime() < to.getTime();
  const billingOf = new Map<number, BillingFacts>();
  for (const p of match.pairs) billingOf.set(p.network.id, p.expected.billing);
  const items: ItemOut[] = [];
  for (const n of networkRows) {
    if (!inPeriod(n.occurredAt)) continue;
    const counted = n.status !== 'declined' && n.status !== 'deleted';
    items.push({
      item: ncItem(n.id),
      network,
      paymentId: null,
      sig: networkRowSig(n),
      keys: networkRowKeys(n, markers),
      counted,
      partnerId: n.partnerAccountId === null ? null : (accounts.get(n.partnerAccountId)?.partnerId ?? null),
      reported: counted ? (networkUsd(n, billingOf.get(n.id)) ?? 0) : 0,
      owed: 0,
      collected: 0,
    });
  }
  for (const e of expected) {
    if (!inPeriod(e.billing.occurredAt)) continue;
    items.push({
      item: ccItem(e.key),
      network,
      paymentId: e.billing.id,
      sig: expectedRowSig(e),
      keys: expectedRowKeys(e),
      counted: true,
      partnerId: e.partnerId,
      reported: 0,
      owed: e.exclusionReason !== null || e.status === 'void' ? 0 : (e.amountUsdMinor ?? 0) - Math.abs(e.clawbackUsdMinor),
      collected: e.kind === 'direct' ? (e.billing.amountUsdMinor ?? 0) - e.billing.takenBackUsdMinor : 0,
    });
  }
  return { findings, items };
}

/**
 * Discrepancy columns a later sighting refreshes (kind, network, period, commission key and the
 * first_* stay). `explained_by` names the commission whose explanation readers show at
 * detail.computed.explanation (migration 015); a refresh names it again and drops the old copy the
 * trigger may have kept in `explanation` (the commission changed since).
 */
const REFRESHED = [
  'severity', 'connection', 'partner_id', 'partner_account_id', 'billing_event_id', 'network_commission_id', 'expected_minor', 'reported_minor', 'currency', 'usd_at_stake_minor',
  'detail', 'explained_by', 'explanation', 'last_run_id', 'last_seen_at',
];

/** The commission whose explanation a finding's detail shows: detail.computed (classify's computedDetail). */
function explainedBy(f: Finding): string | null {
  const c = f.detail.computed;
  return c !== null && typeof c === 'object' && !Array.isArray(c) && typeof c.key === 'string' ? c.key : null;
}
const UPSERT_DISCREPANCY = upsertClause(['fingerprint'], [...REFRESHED, 'status', 'resolved_at'], {
  // A resolved problem that shows up again is reopened; ignored and approved keep their decision.
  set: {
    status: `CASE WHEN discrepancies.status = 'resolved' THEN 'open' ELSE discrepancies.status END`,
    resolved_at: `CASE WHEN discrepancies.status = 'resolved' THEN NULL ELSE discrepancies.resolved_at END`,
  },
});

/**
 * Upserts the run's findings; returns ids of new (or reopened) and still-open discrepancies. With
 * `written` (the fingerprints this run already wrote, updated here) a fingerprint seen again is
 * refreshed but not counted again: the upsert keeps the insert-only columns of its first sighting
 * and takes the rest from the last, as FindingSet does.
 */
async function persist(db: Knex, runId: number, findings: Finding[], now: Date, written?: Set<string>): Promise<{ newIds: number[]; stillOpen: number }> {
  const newIds: number[] = [];
  let stillOpen = 0;
  for (const part of chunk(findings, 500)) {
    const before = new Map<string, string>();
    for (const r of await db('discrepancies').whereRaw('fingerprint = ANY(?::text[])', [part.map((f) => f.fingerprint)]).select('fingerprint', 'status')) before.set(r.fingerprint, r.status);
    const rows = part.map((f) => ({
      fingerprint: f.fingerprint,
      kind: f.kind,
      severity: f.severity,
      network: f.network,
      connection: f.connection,
      partner_id: f.partnerId,
      partner_account_id: f.partnerAccountId,
      billing_event_id: f.billingEventId,
      network_commission_id: f.networkCommissionId,
      computed_commission_key: f.computedCommissionKey,
      period: f.period,
      expected_minor: f.expectedMinor,
      reported_minor: f.reportedMinor,
      currency: f.currency,
      usd_at_stake_minor: f.usdAtStakeMinor,
      status: 'open',
      detail: f.detail,
      explained_by: explainedBy(f),
      explanation: null,
      first_run_id: runId,
      last_run_id: runId,
      first_seen_at: now,
      last_seen_at: now,
    }));
    const out = await bulkInsert<{ id: unknown; fingerprint: string }>(db, 'discrepancies', rows, { onConflict: UPSERT_DISCREPANCY, returning: ['id', 'fingerprint'], chunkSize: 500 });
    for (const r of out) {
      if (written) {
        if (written.has(r.fingerprint)) continue;
        written.add(r.fingerprint);
      }
      const prev = before.get(r.fingerprint);
      if (prev === undefined || prev === 'resolved') newIds.push(num(r.id));
      else if (prev === 'open' || prev === 'approved') stillOpen++;
    }
  }
  return { newIds, stillOpen };
}

async function writeItems(trx: Knex, items: ItemOut[], units: Map<string, string>): Promise<void> {
  const rows = items.map((i) => ({
    item: i.item,
    network: i.network,
    unit: units.get(i.item) ?? i.item,
    payment_event_id: i.paymentId,
    sig: i.sig,
    counted: i.counted,
    partner_id: i.partnerId,
    reported_usd_minor: i.reported,
    owed_usd_minor: i.owed,
    collected_usd_minor: i.collected,
  }));
  await bulkInsert(trx, 'reconcile_items', rows, { chunkSize: 2000 });
}

async function buildTotals(db: Knex, rows: Contribution[]): Promise<ReconcileSummary['totals']> {
  const blank = (key: string, network: string | null, partnerId: number | null): TotalsRow => ({ key, network, partnerId, partnerName: null, reportedUsdMinor: 0, owedUsdMinor: 0, collectedUsdMinor: 0, deltaUsdMinor: 0 });
  const byNetwork = new Map<string, TotalsRow>();
  const byPartner = new Map<string, TotalsRow>();
  for (const c of rows) {
    const pk = `${c.partnerId}|${c.network}`;
    const n = byNetwork.get(c.network) ?? blank(c.network, c.network, null);
    const p = byPartner.get(pk) ?? blank(pk, c.network, c.partnerId);
    for (const t of [n, p]) {
      t.reportedUsdMinor += c.reported;
      t.owedUsdMinor += c.owed;
      t.collectedUsdMinor += c.collected;
    }
    byNetwork.set(c.network, n);
    byPartner.set(pk, p);
  }
  const partnerIds = [...new Set([...byPartner.values()].map((t) => t.partnerId).filter((x): x is number => x !== null))];
  const names = new Map<number, string | null>();
  // One statement for every partner's name (was one per 1,000 partners: the partners of the whole history).
  if (partnerIds.length) for (const p of (await db.raw(`SELECT id, name, partner_key FROM partners WHERE id = ANY(?::bigint[])`, [partnerIds])).rows as Array<Record<string, unknown>>) names.set(num(p.id), (p.name ?? p.partner_key) as string | null);
  const finish = (t: TotalsRow): TotalsRow => ({ ...t, partnerName: t.partnerId === null ? null : (names.get(t.partnerId) ?? null), deltaUsdMinor: t.reportedUsdMinor - t.owedUsdMinor });
  return {
    byNetwork: [...byNetwork.values()].map(finish).sort((a, b) => a.key.localeCompare(b.key)),
    byPartner: [...byPartner.values()].map(finish).sort((a, b) => (a.partnerName ?? '').localeCompare(b.partnerName ?? '') || a.key.localeCompare(b.key)),
  };
}

const accountsState = (accounts: Map<number, Account>): ReconcileState['accounts'] => Object.fromEntries([...accounts].map(([id, a]) => [String(id), [a.partnerId, a.connection]]));

interface Plan {
  findings: FindingSet;
  slices: ReconcileSummary['slices'];
  units: number;
  items: ItemOut[];
  /** Each item's unit (assignUnits over items), when the plan has items. */
  unitOf?: Map<string, string>;
  /** full/scoped: the (network, period) scope that was evaluated. */
  scope?: { networks: string[]; periods: string[] };
  /** incremental: items whose discrepancies are re-judged (evaluated or gone), and the items to rewrite. */
  touchedNc?: number[];
  touchedCc?: string[];
}

interface SliceOut {
  slice: ReconcileSummary['slices'][number];
  findings: Finding[];
  items: ItemOut[];
}

/** The (network, period) slices of the scope, one at a time (the reference procedure). */
async function* evaluateSlices(db: Knex, ctx: EvalContext, scope: { networks: string[]; periods: string[] }): AsyncGenerator<SliceOut> {
  const marginMs = ctx.config.reconcile.matchWindowHours * 3_600_000;
  for (const network of scope.networks) {
    for (const period of scope.periods) {
      const { from, to } = parsePeriod(period, ctx.config.timezone);
      // Load a margin either side so a sale near the month boundary still meets its commission.
      const lo = new Date(from.getTime() - marginMs);
      const hi = new Date(to.getTime() + marginMs);
      const networkRows = await loadNetworkRows(db, (q) => q.where({ network }).where('occurred_at', '>=', lo).where('occurred_at', '<', hi));
      const expected = await loadExpectedRows(db, (q) => q.where('cc.network', network).where('be.occurred_at', '>=', lo).where('be.occurred_at', '<', hi));
      const out = evaluateSlice(ctx, network, period, networkRows, expected);
      yield { slice: { network, period, networkRows: networkRows.length, computedRows: expected.length, findings: out.findings.length }, findings: out.findings, items: out.items };
    }
  }
}

/** A full run by slices, held until the end (rules without units: reconcile_items need every item's unit). */
async function planFull(db: Knex, ctx: EvalContext, opts: ReconcileOptions): Promise<Plan> {
  const scope = await scopes(db, ctx.config, opts);
  const plan: Plan = { findings: new FindingSet(), slices: [], units: 0, items: [], scope };
  for await (const out of evaluateSlices(db, ctx, scope)) {
    plan.findings.add(out.findings);
    plan.items.push(...out.items);
    plan.slices.push(out.slice);
  }
  plan.unitOf = assignUnits(plan.items);
  plan.units = new Set(plan.unitOf.values()).size;
  return plan;
}

interface ScopedOut extends Streamed {
  found: number;
  byKind: Record<string, number>;
  contributions: Contribution[];
}

/**
 * A scoped run: each slice is evaluated and its findings upserted before the next is loaded, so
 * memory is one slice's; only fingerprints and per-(network, partner) totals are kept.
 */
async function streamScoped(trx: Knex, ctx: EvalContext, runId: number, scope: { networks: string[]; periods: string[] }): Promise<ScopedOut> {
  const s: ScopedOut = { newIds: [], stillOpen: 0, units: 0, items: 0, slices: [], writeMs: 0, found: 0, byKind: {}, contributions: [] };
  const written = new Set<string>();
  const totals = new Map<string, Contribution>();
  for await (const out of evaluateSlices(trx, ctx, scope)) {
    // A slice's findings are distinct; a fingerprint already written came from an earlier slice.
    for (const f of out.findings) if (!written.has(f.fingerprint)) s.byKind[f.kind] = (s.byKind[f.kind] ?? 0) + 1;
    const t = Date.now();
    const p = await persist(trx, runId, out.findings, ctx.now, written);
    s.writeMs += Date.now() - t;
    s.newIds.push(...p.newIds);
    s.stillOpen += p.stillOpen;
    s.slices.push(out.slice);
    s.items += out.items.length;
    for (const i of out.items) if (i.counted) addContribution(totals, i);
  }
  s.found = written.size;
  s.contributions = [...totals.values()];
  return s;
}

/**
 * Whole units' rows (any union of units) through the slice procedure: each network and period of
 * their rows, with the match-window margin either side; a period's findings and items are its own.
 */
async function evaluateUnits(ctx: EvalContext, nc: Iterable<NetworkRow>, e: Iterable<ExpectedRow>, pause?: Pause): Promise<{ findings: Finding[]; items: ItemOut[]; slices: ReconcileSummary['slices'] }> {
  const out = { findings: [] as Finding[], items: [] as ItemOut[], slices: [] as ReconcileSummary['slices'] };
  const tz = ctx.config.timezone;
  const marginMs = ctx.config.reconcile.matchWindowHours * 3_600_000;
  const ncAll = [...nc];
  const eAll = [...e];
  const networks = [...new Set([...ncAll.map((n) => n.network), ...eAll.map((x) => x.network as string)])].sort();
  for (const network of networks) {
    const ncs = ncAll.filter((n) => n.network === network).sort((a, b) => a.id - b.id);
    const es = eAll.filter((x) => x.network === network).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const periods = [...new Set([...ncs.map((n) => periodOf(n.occurredAt, tz)), ...es.map((x) => periodOf(x.billing.occurredAt, tz))])].sort();
    for (const period of periods) {
      const paused = pause?.();
      if (paused) await paused;
      const { from: f, to: t } = parsePeriod(period, tz);
      const lo = f.getTime() - marginMs;
      const hi = t.getTime() + marginMs;
      const networkRows = ncs.filter((n) => n.occurredAt.getTime() >= lo && n.occurredAt.getTime() < hi);
      const expected = es.filter((x) => x.billing.occurredAt.getTime() >= lo && x.billing.occurredAt.getTime() < hi);
      const r = evaluateSlice(ctx, network, period, networkRows, expected);
      out.findings.push(...r.findings);
      out.items.push(...r.items);
      out.slices.push({ network, period, networkRows: networkRows.length, computedRows: expected.length, findings: r.findings.length });
    }
  }
  return out;
}

async function planIncremental(db: Knex, ctx: EvalContext, from: number, to: number, prev: ReconcileState): Promise<Plan> {
  const seeds = await changedSeeds(db, from, to, { prev, now: ctx.now, graceHours: ctx.config.reconcile.graceHours, accounts: ctx.accounts, markers: ctx.markers });
  const x = await expandSeeds(db, seeds, ctx.markers);
  const plan: Plan = { findings: new FindingSet(), slices: [], units: 0, items: [], touchedNc: [], touchedCc: [] };
  const out = await evaluateUnits(ctx, x.nc.values(), x.e.values());
  plan.findings.add(out.findings);
  plan.items = out.items;
  plan.slices = out.slices;
  plan.unitOf = assignUnits(plan.items);
  plan.units = new Set(plan.unitOf.values()).size;
  for (const item of [...plan.items.map((i) => i.item), ...x.removed]) {
    if (item.startsWith('nc:')) plan.touchedNc!.push(Number(item.slice(3)));
    else plan.touchedCc!.push(item.slice(3));
  }
  return plan;
}

interface Streamed {
  newIds: number[];
  stillOpen: number;
  units: number;
  items: number;
  slices: ReconcileSummary['slices'];
  /** Milliseconds spent writing (the rest of the stream is loading and evaluating). */
  writeMs: number;
}

/**
 * A full run by units (full.ts): each batch is evaluated, its findings upserted and its items
 * written, all in the run's transaction. Memory: one batch (on PostgreSQL, up to three: see below).
 */
async function streamFull(db: Knex, trx: Knex, ctx: EvalContext, runId: number, batchRows: number): Promise<Streamed> {
  const s: Streamed = { newIds: [], stillOpen: 0, units: 0, items: 0, slices: [], writeMs: 0 };
  const slices = new Map<string, ReconcileSummary['slices'][number]>();
  await trx('reconcile_items').delete();
  // With a pool (PostgreSQL), the next batch loads on its own connection while this one is evaluated
  // and written: it reads only canonical rows, which the transaction does not change. A batch is
  // also evaluated while the one before it is still being written (100k: ~12 s of writing against
  // ~4 s of evaluating, one after the other before); the evaluation pauses every few ms so the
  // write's statements go out as each ends, and writes stay in batch order. PGlite has one
  // connection, held by the transaction, and runs its statements on this thread: one step at a time.
  const overlap = !isPglite(db) && ((db.client as { pool?: { max?: number } }).pool?.max ?? 1) > 1;
  const batches = fullUnitBatches(overlap ? db : trx, ctx.markers, batchRows);
  const write = async (b: UnitBatch, out: Awaited<ReturnType<typeof evaluateUnits>>): Promise<void> => {
    // A fingerprint never spans units (incremental.ts), so batches never share one.
    const findings = new FindingSet();
    findings.add(out.findings);
    const t = Date.now();
    const p = await persist(trx, runId, [...findings.byFp.values()], ctx.now);
    await writeItems(trx, out.items, b.unitOf);
    s.writeMs += Date.now() - t;
    s.newIds.push(...p.newIds);
    s.stillOpen += p.stillOpen;
    s.units += b.units;
    s.items += out.items.length;
    for (const x of out.slices) {
      const k = `${x.network}|${x.period}`;
      const cur = slices.get(k);
      if (!cur) slices.set(k, { ...x });
      else {
        cur.networkRows += x.networkRows;
        cur.computedRows += x.computedRows;
        cur.findings += x.findings;
      }
    }
  };
  let next = batches.next();
  const writes = writeBehind(overlap);
  try {
    for (;;) {
      const r = await next;
      if (r.done) break;
      const b = r.value;
      if (overlap) {
        next = batches.next();
        next.catch(() => undefined); // awaited in its turn; an early failure must not be "unhandled"
      }
      const out = await evaluateUnits(ctx, b.nc, b.e, overlap ? pauseEvery() : undefined);
      await writes.add(() => write(b, out));
      if (!overlap) next = batches.next();
    }
    await writes.done();
  } finally {
    // A failure while a batch was still being written: that write ends before the error leaves
    // (the transaction then rolls back whole; nothing uses it after this returns).
    await writes.settled();
  }
  s.slices = [...slices.values()].sort((a, b) => a.network.localeCompare(b.network) || a.period.localeCompare(b.period));
  return s;
}

/** Partners kept in a run's stored stats (the largest differences first); reconcile_totals has them all. */
export const STORED_PARTNER_TOTALS = 100;

/**
 * What a run row keeps of its summary: bounded, since `GET /api/runs` lists the last 20 with their
 * stats. Per-partner totals at 1M payments (34k partners) made each row 7 MB of JSON (a 600 ms
 * UPDATE per incremental run, and a 140 MB API response); the full per-partner view stays in
 * reconcile_totals (`reconcile` command, /api totals).
 */
export function storedStats(summary: ReconcileSummary): Record<string, unknown> {
  const byPartner = [...summary.totals.byPartner].sort((a, b) => Math.abs(b.deltaUsdMinor) - Math.abs(a.deltaUsdMinor) || a.key.localeCompare(b.key));
  return {
    ...summary,
    newIds: summary.newIds.slice(0, 1000),
    slices: summary.slices.slice(0, 1000),
    totals: { byNetwork: summary.totals.byNetwork, byPartner: byPartner.slice(0, STORED_PARTNER_TOTALS), byPartnerCount: byPartner.length },
  };
}

export async function runReconciliation(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileSummary> {
  const { db, config, log } = deps;
  const now = opts.now ?? new Date();
  const rc = config.reconcile;
  const rules = opts.rules ?? defaultMatchRules({ windowHours: rc.matchWindowHours });
  const [run] = await db('reconciliation_runs').insert({ period: opts.period ?? null, network: opts.network ?? null, status: 'running', started_at: now }).returning('id');
  const runId = num((run as { id: number }).id);
  const summary: ReconcileSummary = { runId, status: 'succeeded', mode: 'full', period: opts.period ?? null, network: opts.network ?? null, units: 0, items: 0, slices: [], found: 0, new: 0, stillOpen: 0, resolved: 0, byKind: {}, newIds: [], totals: { byNetwork: [], byPartner: [] }, timings: { planMs: 0, writeMs: 0, totalsMs: 0 } };
  const t0 = Date.now();
  try {
    const scoped = !!(opts.period || opts.network);
    // The tables this run reads were just filled by the sync and the compute, often faster than
    // autovacuum analyzes them: plans made without statistics cost a scan per batch (planner-stats.ts).
    await refreshPlannerStats(db, { mode: 'always', log });
    // The watermark first: every change at or below it is committed, so reading the data after it
    // and storing it as the cursor never skips one (changes above it are simply seen again).
    const watermark = scoped ? 0 : await readChangeWatermark(db);
    const cursor = await loadChangeCursor(db, CONSUMER);
    const hash = configHash({ rules, reconcile: rc, timezone: config.timezone });
    const ctx: EvalContext = { config, rules, now, markers: await adjustmentMarkers(db), accounts: await loadAccounts(db) };
    const prevState = cursor?.state as Partial<ReconcileState> | undefined;
    let fullReason: string | undefined;
    if (!scoped) {
      if (opts.full) fullReason = 'requested';
      else if (!cursor) fullReason = 'no cursor yet';
      else if (prevState?.v !== STATE_VERSION) fullReason = 'cursor state from another version';
      else if (prevState.configHash !== hash) fullReason = 'matching configuration changed';
      else if (!rulesSupportUnits(rules)) fullReason = 'a matching rule blocks on neither reference nor customer';
    }
    summary.mode = scoped ? 'scoped' : fullReason ? 'full' : 'incremental';
    summary.fullReason = fullReason;
    // A full run goes by batches of units when the rules allow it: its memory stays one batch's.
    const streamed = summary.mode === 'full' && opts.fullStrategy !== 'slices' && rulesSupportUnits(rules);
    // A scoped run also goes slice by slice inside the write transaction (streamScoped).
    const plan: Plan = streamed || scoped
      ? { findings: new FindingSet(), slices: [], units: 0, items: [], scope: scoped ? await scopes(db, config, opts) : undefined }
      : summary.mode === 'incremental'
        ? await planIncremental(db, ctx, cursor!.changeSeq, watermark, prevState as ReconcileState)
        : await planFull(db, ctx, opts);
    const findings = [...plan.findings.byFp.values()];
    summary.slices = plan.slices;
    summary.units = plan.units;
    summary.items = plan.items.length;
    const t1 = Date.now();
    let streamEvalMs = 0; // a streamed full or scoped run loads and evaluates inside the write transaction
    let scopedTotals: Contribution[] | undefined;

    await db.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))', [DISCREPANCY_WRITE_LOCK]);
      const prevStale = Array.isArray(prevState?.staleIgnored) ? prevState.staleIgnored : [];

      // The discrepancies this run re-judges: those owned by an evaluated (or vanished) item — the
      // network row it names, else its computed commission — and the stale ones (a user may have
      // reopened one; a full run would resolve it). The rest were found by their unit's latest
      // evaluation and a full run would find them again unchanged.
      let candidates: number[] = [];
      if (summary.mode === 'incremental') {
        const ids = new Set<number>(prevStale);
        for (const part of chunk(plan.touchedNc!, 5000)) for (const r of await trx('discrepancies').whereRaw('network_commission_id = ANY(?::bigint[])', [part]).select('id')) ids.add(num(r.id));
        for (const part of chunk(plan.touchedCc!, 5000)) for (const r of await trx('discrepancies').whereNull('network_commission_id').whereRaw('computed_commission_key = ANY(?::text[])', [part]).select('id')) ids.add(num(r.id));
        candidates = [...ids];
      }

      let p: { newIds: number[]; stillOpen: number };
      let sc: ScopedOut | undefined;
      if (scoped) {
        p = sc = await streamScoped(trx, ctx, runId, plan.scope!);
        summary.items = sc.items;
        summary.slices = sc.slices;
        streamEvalMs = Date.now() - t1 - sc.writeMs;
      } else if (streamed) {
        const st = await streamFull(db, trx, ctx, runId, opts.batchRows ?? DEFAULT_FULL_BATCH_ROWS);
        p = st;
        summary.units = st.units;
        summary.items = st.items;
        summary.slices = st.slices;
        streamEvalMs = Date.now() - t1 - st.writeMs;
      } else p = await persist(trx, runId, findings, now);
      const inScope = (q: Knex.QueryBuilder): Knex.QueryBuilder =>
        summary.mode === 'incremental' ? q.whereRaw('id = ANY(?::bigint[])', [candidates]) : summary.mode === 'scoped' ? q.whereRaw('network = ANY(?::text[]) AND period = ANY(?::text[])', [plan.scope!.networks, plan.scope!.periods]) : q;
      const notFound = (q: Knex.QueryBuilder): Knex.QueryBuilder => q.where((w) => w.whereNull('last_run_id').orWhereNot('last_run_id', runId));
      const resolved = num(await notFound(inScope(trx('discrepancies').whereIn('status', ['open', 'approved']))).update({ status: 'resolved', resolved_at: now }));
      summary.newIds = p.newIds;
      summary.new = p.newIds.length;
      summary.resolved = resolved;

      // Open and approved rows are always current (not found → resolved); an ignored one keeps its
      // decision when its problem goes away, so the ignored rows not found are remembered as stale.
      const staleInScope = ((await notFound(inScope(trx('discrepancies').where('status', 'ignored'))).select('id')) as Array<{ id: unknown }>).map((r) => num(r.id));
      let stale = staleInScope;
      if (summary.mode === 'scoped' && prevStale.length) {
        const outside = await trx('discrepancies').whereRaw('id = ANY(?::bigint[])', [prevStale]).where('status', 'ignored').whereRaw('NOT (network = ANY(?::text[]) AND period = ANY(?::text[]))', [plan.scope!.networks, plan.scope!.periods]).select('id');
        stale = [...new Set([...staleInScope, ...outside.map((r) => num(r.id))])];
      }
      stale.sort((a, b) => a - b);

      if (sc) {
        summary.found = sc.found;
        summary.stillOpen = sc.stillOpen;
        summary.byKind = sc.byKind;
        scopedTotals = sc.contributions;
        // The scoped run re-judged its slices; the incremental state learns which ignored rows went stale.
        if (cursor) await saveChangeCursor(trx, CONSUMER, cursor.changeSeq, { ...cursor.state, staleIgnored: stale });
        return;
      }
      // Everything found, whether re-evaluated now or carried over: all but resolved and stale rows.
      const staleByKind = new Map<string, number>();
      for (const r of await trx('discrepancies').whereRaw('id = ANY(?::bigint[])', [stale]).groupBy('kind').select('kind', trx.raw('count(*) AS n'))) staleByKind.set(String(r.kind), num(r.n));
      // The counts kept by difference (migration 015), not a count of every discrepancy of the history.
      const perKind = new Map<string, { n: number; live: number }>();
      for (const c of await readDiscrepancyCounts(trx)) {
        if (c.status === 'resolved') continue;
        const k = perKind.get(c.kind) ?? { n: 0, live: 0 };
        k.n += c.n;
        if (c.status === 'open' || c.status === 'approved') k.live += c.n;
        perKind.set(c.kind, k);
      }
      for (const [kind, k] of perKind) {
        const n = k.n - (staleByKind.get(kind) ?? 0);
        if (n > 0) summary.byKind[kind] = n;
        summary.found += n;
        summary.stillOpen += k.live;
      }
      summary.stillOpen -= summary.new;

      const units = plan.unitOf ?? assignUnits(plan.items);
      if (streamed) {
        // items written batch by batch
      } else if (summary.mode === 'full') await trx('reconcile_items').delete();
      const removed: Contribution[] = [];
      if (summary.mode === 'incremental') {
        const drop = [...plan.touchedNc!.map(ncItem), ...plan.touchedCc!.map(ccItem)];
        for (const part of chunk(drop, 5000)) removed.push(...(await deleteItems(trx, part)));
      }
      if (!streamed) await writeItems(trx, plan.items, units);
      // The totals follow the items: rebuilt after a full run, by difference after an incremental one.
      if (summary.mode === 'full') await rebuildTotals(trx);
      else await applyTotalsDelta(trx, removed, plan.items.filter((i) => i.counted));
      const state: ReconcileState = { v: STATE_VERSION, configHash: hash, now: now.toISOString(), accounts: accountsState(ctx.accounts), markers: Object.fromEntries(ctx.markers), staleIgnored: stale };
      await saveChangeCursor(trx, CONSUMER, watermark, state as unknown as Record<string, unknown>);
    });

    const t2 = Date.now();
    summary.timings.planMs = t1 - t0 + streamEvalMs;
    summary.timings.writeMs = t2 - t1 - streamEvalMs;
    summary.totals = await buildTotals(db, scopedTotals ?? (await readTotals(db)));
    summary.timings.totalsMs = Date.now() - t2;

    await db('reconciliation_runs').where({ id: runId }).update({ status: 'succeeded', finished_at: new Date(), stats: JSON.stringify(storedStats(summary)) });
    log?.info({ runId, mode: summary.mode, units: summary.units, found: summary.found, new: summary.new, resolved: summary.resolved }, 'reconciliation finished');
    return summary;
  } catch (err) {
    await db('reconciliation_runs').where({ id: runId }).update({ status: 'failed', finished_at: new Date(), error: errorMessage(err) });
    throw err;
  }
}
