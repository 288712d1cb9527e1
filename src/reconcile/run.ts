// Reconciliation run: loads one (network, period) slice at a time from the canonical tables — never
// whole tables — matches and classifies it with the pure modules, and upserts discrepancies by
// fingerprint so identity persists across runs:
//   new → open; seen again → stays open/approved/ignored (details refreshed); resolved but seen
//   again → reopened (counted as new); open/approved in a scanned slice but not seen → resolved.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { DateTime } from 'luxon';
import type { Config } from '../config/schema.ts';
import { chunk } from '../util/chunk.ts';
import { sha256 } from '../util/hash.ts';
import { errorMessage, UserError } from '../util/errors.ts';
import { defaultMatchRules, matchCommissions, type MatchRule } from './match.ts';
import { classify, networkUsd } from './classify.ts';
import type { BillingFacts, ExpectedRow, Finding, NetworkRow } from './types.ts';

export interface ReconcileOptions {
  /** yyyy-mm; default every period with data. */
  period?: string | undefined;
  network?: string | undefined;
  now?: Date | undefined;
  /** Matching rules (data); default from config (`defaultMatchRules`). */
  rules?: MatchRule[] | undefined;
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
  period: string | null;
  network: string | null;
  slices: Array<{ network: string; period: string; networkRows: number; computedRows: number; findings: number }>;
  found: number;
  new: number;
  stillOpen: number;
  resolved: number;
  byKind: Record<string, number>;
  newIds: number[];
  totals: { byNetwork: TotalsRow[]; byPartner: TotalsRow[] };
  error?: string;
}

export interface ReconcileDeps {
  db: Knex;
  config: Config;
  log?: Logger | undefined;
}

const PERIOD_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
const TAKE_BACK_KINDS = ['refund', 'chargeback', 'reversal', 'dispute_lost'];
const IN_CHUNK = 1000;

export function parsePeriod(period: string, zone: string): { from: Date; to: Date } {
  if (!PERIOD_RE.test(period)) throw new UserError(`--period: expected yyyy-mm (got "${period}")`);
  const [y, m] = period.split('-').map(Number) as [number, number];
  const start = DateTime.fromObject({ year: y, month: m, day: 1 }, { zone });
  return { from: start.toJSDate(), to: start.plus({ months: 1 }).toJSDate() };
}

export function periodOf(at: Date, zone: string): string {
  return DateTime.fromJSDate(at, { zone }).toFormat('yyyy-MM');
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

function toNetworkRow(r: Record<string, unknown>): NetworkRow {
  return {
    id: num(r.id),
    connection: String(r.connection),
    network: String(r.network),
    externalId: String(r.external_id),
    partnerAccountId: numOrNull(r.partner_account_id),
    partnerExternalId: (r.partner_external_id as string | null) ?? null,
    customerId: numOrNull(r.customer_id),
    customerExternalKey: (r.customer_external_key as string | null) ?? null,
    transactionKey: (r.transaction_key as string | null) ?? null,
    orderRef: (r.order_ref as string | null) ?? null,
    kindHint: (r.kind_hint as NetworkRow['kindHint']) ?? null,
    amountMinor: num(r.amount_minor),
    currency: String(r.currency).trim(),
    amountUsdMinor: numOrNull(r.amount_usd_minor),
    saleAmountMinor: numOrNull(r.sale_amount_minor),
    saleCurrency: r.sale_currency ? String(r.sale_currency).trim() : null,
    status: r.status as NetworkRow['status'],
    occurredAt: new Date(r.occurred_at as string),
    clickAt: dateOrNull(r.click_at),
    description: (r.description as string | null) ?? null,
  };
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

interface Slice {
  networkRows: NetworkRow[];
  expected: ExpectedRow[];
  accounts: Map<number, { partnerId: number; connection: string }>;
}

async function loadSlice(db: Knex, network: string, from: Date, to: Date): Promise<Slice> {
  const ncRows = await db('network_commissions').where({ network }).where('occurred_at', '>=', from).where('occurred_at', '<', to).orderBy('id');
  const networkRows = ncRows.map(toNetworkRow);

  const ccRows = await db('computed_commissions as cc')
    .join('billing_events as be', 'be.id', 'cc.payment_event_id')
    .leftJoin('subscriptions as s', 's.id', 'be.subscription_id')
    .where('cc.network', network)
    .whereIn('cc.kind', ['direct', 'second_tier'])
    .whereNull('be.deleted_at')
    .where('be.occurred_at', '>=', from)
    .where('be.occurred_at', '<', to)
    .orderBy('cc.commission_key')
    .select(
      'cc.commission_key', 'cc.kind', 'cc.partner_id', 'cc.partner_account_id', 'cc.network', 'cc.amount_minor', 'cc.base_currency', 'cc.amount_usd_minor',
      'cc.status', 'cc.exclusion_reason', 'cc.explanation',
      'be.id as be_id', 'be.connection as be_connection', 'be.external_id as be_external_id', 'be.document_id', 'be.payment_external_id', 'be.customer_id',
      'be.subscription_id', 'be.occurred_at', 'be.amount_minor as be_amount_minor', 'be.currency as be_currency', 'be.amount_usd_minor as be_amount_usd_minor',
      'be.classification', 'be.billing_reason', 's.started_at as sub_started_at', 's.trial_end as sub_trial_end',
    );

  const paymentIds = [...new Set(ccRows.map((r) => num(r.be_id)))];
  const takenBack = new Map<number, { minor: number; usd: number; kinds: string[] }>();
  const clawbacks = new Map<string, number>();
  for (const ids of chunk(paymentIds, IN_CHUNK)) {
    const tb = await db('billing_events').whereIn('payment_event_id', ids).whereIn('kind', TAKE_BACK_KINDS).whereNull('deleted_at').orderBy('occurred_at').select('payment_event_id', 'kind', 'amount_minor', 'amount_usd_minor');
    for (const r of tb) {
      const t = takenBack.get(num(r.payment_event_id)) ?? { minor: 0, usd: 0, kinds: [] };
      t.minor += num(r.amount_minor);
      t.usd += num(r.amount_usd_minor);
      t.kinds.push(String(r.kind));
      takenBack.set(num(r.payment_event_id), t);
    }
    const cb = await db('computed_commissions').whereIn('payment_event_id', ids).where('kind', 'clawback').select('payment_event_id', 'partner_id', 'clawback_of', 'amount_usd_minor');
    for (const r of cb) {
      const k = `${r.payment_event_id}|${r.partner_id}|${r.clawback_of}`;
      clawbacks.set(k, (clawbacks.get(k) ?? 0) + num(r.amount_usd_minor));
    }
  }

  const expected: ExpectedRow[] = ccRows.map((r) => {
    const beId = num(r.be_id);
    const tb = takenBack.get(beId);
    const billing: BillingFacts = {
      id: beId,
      connection: String(r.be_connection),
      externalId: String(r.be_external_id),
      documentId: String(r.document_id),
      paymentExternalId: (r.payment_external_id as string | null) ?? null,
      customerId: numOrNull(r.customer_id),
      subscriptionId: numOrNull(r.subscription_id),
      occurredAt: new Date(r.occurred_at),
      amountMinor: num(r.be_amount_minor),
      currency: String(r.be_currency).trim(),
      amountUsdMinor: numOrNull(r.be_amount_usd_minor),
      takenBackMinor: tb?.minor ?? 0,
      takenBackUsdMinor: tb?.usd ?? 0,
      takenBackKinds: tb?.kinds ?? [],
      classification: (r.classification as string | null) ?? null,
      billingReason: (r.billing_reason as string | null) ?? null,
      signupAt: dateOrNull(r.sub_started_at),
    };
    return {
      key: String(r.commission_key),
      kind: r.kind as ExpectedRow['kind'],
      partnerId: num(r.partner_id),
      partnerAccountId: numOrNull(r.partner_account_id),
      network: (r.network as string | null) ?? null,
      amountMinor: num(r.amount_minor),
      currency: String(r.base_currency).trim(),
      amountUsdMinor: numOrNull(r.amount_usd_minor),
      status: r.status as ExpectedRow['status'],
      exclusionReason: (r.exclusion_reason as string | null) ?? null,
      clawbackUsdMinor: clawbacks.get(`${beId}|${r.partner_id}|${r.kind}`) ?? 0,
      explanation: typeof r.explanation === 'string' ? JSON.parse(r.explanation) : r.explanation,
      billing,
    };
  });

  const accountIds = [...new Set([...networkRows.map((n) => n.partnerAccountId), ...expected.map((e) => e.partnerAccountId)].filter((x): x is number => x !== null))];
  const accounts = new Map<number, { partnerId: number; connection: string }>();
  for (const ids of chunk(accountIds, IN_CHUNK)) {
    for (const a of await db('partner_accounts').whereIn('id', ids).select('id', 'partner_id', 'connection')) accounts.set(num(a.id), { partnerId: num(a.partner_id), connection: String(a.connection) });
  }
  return { networkRows, expected, accounts };
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

/** Upserts one slice's findings; returns ids of new (or reopened) and still-open discrepancies. */
async function persist(db: Knex, runId: number, findings: Finding[], now: Date): Promise<{ newIds: number[]; stillOpen: number }> {
  const newIds: number[] = [];
  let stillOpen = 0;
  for (const part of chunk(findings, 500)) {
    const before = new Map<string, string>();
    for (const r of await db('discrepancies').whereIn('fingerprint', part.map((f) => f.fingerprint)).select('fingerprint', 'status')) before.set(r.fingerprint, r.status);
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
      detail: JSON.stringify(f.detail),
      first_run_id: runId,
      last_run_id: runId,
      first_seen_at: now,
      last_seen_at: now,
    }));
    const out = await db('discrepancies')
      .insert(rows)
      .onConflict('fingerprint')
      .merge({
        severity: db.raw('excluded.severity'),
        connection: db.raw('excluded.connection'),
        partner_id: db.raw('excluded.partner_id'),
        partner_account_id: db.raw('excluded.partner_account_id'),
        billing_event_id: db.raw('excluded.billing_event_id'),
        network_commission_id: db.raw('excluded.network_commission_id'),
        expected_minor: db.raw('excluded.expected_minor'),
        reported_minor: db.raw('excluded.reported_minor'),
        currency: db.raw('excluded.currency'),
        usd_at_stake_minor: db.raw('excluded.usd_at_stake_minor'),
        detail: db.raw('excluded.detail'),
        last_run_id: db.raw('excluded.last_run_id'),
        last_seen_at: db.raw('excluded.last_seen_at'),
        // A resolved problem that shows up again is reopened; ignored and approved keep their decision.
        status: db.raw(`CASE WHEN discrepancies.status = 'resolved' THEN 'open' ELSE discrepancies.status END`),
        resolved_at: db.raw(`CASE WHEN discrepancies.status = 'resolved' THEN NULL ELSE discrepancies.resolved_at END`),
      })
      .returning(['id', 'fingerprint']);
    for (const r of out as Array<{ id: number; fingerprint: string }>) {
      const prev = before.get(r.fingerprint);
      if (prev === undefined || prev === 'resolved') newIds.push(num(r.id));
      else if (prev === 'open' || prev === 'approved') stillOpen++;
    }
  }
  return { newIds, stillOpen };
}

function addTotal(map: Map<string, TotalsRow>, key: string, init: () => TotalsRow, f: (t: TotalsRow) => void): void {
  let t = map.get(key);
  if (!t) {
    t = init();
    map.set(key, t);
  }
  f(t);
}

export async function runReconciliation(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileSummary> {
  const { db, config, log } = deps;
  const now = opts.now ?? new Date();
  const tz = config.timezone;
  const rc = config.reconcile;
  const rules = opts.rules ?? defaultMatchRules({ windowHours: rc.matchWindowHours });
  const [run] = await db('reconciliation_runs').insert({ period: opts.period ?? null, network: opts.network ?? null, status: 'running', started_at: now }).returning('id');
  const runId = num((run as { id: number }).id);
  const summary: ReconcileSummary = { runId, status: 'succeeded', period: opts.period ?? null, network: opts.network ?? null, slices: [], found: 0, new: 0, stillOpen: 0, resolved: 0, byKind: {}, newIds: [], totals: { byNetwork: [], byPartner: [] } };
  const byNetwork = new Map<string, TotalsRow>();
  const byPartner = new Map<string, TotalsRow>();
  const blank = (key: string, network: string | null, partnerId: number | null) => (): TotalsRow => ({ key, network, partnerId, partnerName: null, reportedUsdMinor: 0, owedUsdMinor: 0, collectedUsdMinor: 0, deltaUsdMinor: 0 });
  try {
    const { networks, periods } = await scopes(db, config, opts);
    const marginMs = rc.matchWindowHours * 3_600_000;
    const markers = await adjustmentMarkers(db);
    for (const network of networks) {
      const tolerance = rc.tolerance[network] ?? rc.defaultTolerance;
      for (const period of periods) {
        const { from, to } = parsePeriod(period, tz);
        // Load a margin either side so a sale near the month boundary still meets its commission.
        const slice = await loadSlice(db, network, new Date(from.getTime() - marginMs), new Date(to.getTime() + marginMs));
        const match = matchCommissions(slice.networkRows, slice.expected, rules, { adjustmentOf: (m) => markers.get(m) });
        const all = classify(match, {
          network,
          tolerance,
          severity: rc.severity,
          now,
          graceHours: rc.graceHours,
          attributionWindowDays: rc.attributionWindowDays,
          periodOf: (d) => periodOf(d, tz),
          partnerOfAccount: (id) => (id === null ? null : (slice.accounts.get(id)?.partnerId ?? null)),
        });
        const findings = all
          .filter((f) => f.period === period)
          .map((f) => (f.connection === null && f.partnerAccountId !== null ? { ...f, connection: slice.accounts.get(f.partnerAccountId)?.connection ?? null } : f));
        const res = await db.transaction(async (trx) => {
          const p = await persist(trx, runId, findings, now);
          const resolved = await trx('discrepancies')
            .where({ period, network })
            .whereIn('status', ['open', 'approved'])
            .where((q) => q.whereNull('last_run_id').orWhereNot('last_run_id', runId))
            .update({ status: 'resolved', resolved_at: now });
          return { ...p, resolved: num(resolved) };
        });
        summary.newIds.push(...res.newIds);
        summary.new += res.newIds.length;
        summary.stillOpen += res.stillOpen;
        summary.resolved += res.resolved;
        summary.found += findings.length;
        for (const f of findings) summary.byKind[f.kind] = (summary.byKind[f.kind] ?? 0) + 1;
        summary.slices.push({ network, period, networkRows: slice.networkRows.length, computedRows: slice.expected.length, findings: findings.length });

        // Totals for the slice's own period: reported (network), owed (rules), collected (billing).
        const inPeriod = (d: Date): boolean => d.getTime() >= from.getTime() && d.getTime() < to.getTime();
        const billingOf = new Map<number, BillingFacts>();
        for (const p of match.pairs) billingOf.set(p.network.id, p.expected.billing);
        for (const n of slice.networkRows) {
          if (!inPeriod(n.occurredAt) || n.status === 'declined' || n.status === 'deleted') continue;
          const usd = networkUsd(n, billingOf.get(n.id)) ?? 0;
          const partnerId = n.partnerAccountId === null ? null : (slice.accounts.get(n.partnerAccountId)?.partnerId ?? null);
          addTotal(byNetwork, network, blank(network, network, null), (t) => (t.reportedUsdMinor += usd));
          addTotal(byPartner, `${partnerId}|${network}`, blank(`${partnerId}|${network}`, network, partnerId), (t) => (t.reportedUsdMinor += usd));
        }
        for (const e of slice.expected) {
          if (!inPeriod(e.billing.occurredAt)) continue;
          const owedUsd = e.exclusionReason !== null || e.status === 'void' ? 0 : (e.amountUsdMinor ?? 0) - Math.abs(e.clawbackUsdMinor);
          const collected = e.kind === 'direct' ? (e.billing.amountUsdMinor ?? 0) - e.billing.takenBackUsdMinor : 0;
          addTotal(byNetwork, network, blank(network, network, null), (t) => {
            t.owedUsdMinor += owedUsd;
            t.collectedUsdMinor += collected;
          });
          addTotal(byPartner, `${e.partnerId}|${network}`, blank(`${e.partnerId}|${network}`, network, e.partnerId), (t) => {
            t.owedUsdMinor += owedUsd;
            t.collectedUsdMinor += collected;
          });
        }
      }
    }
    const partnerIds = [...new Set([...byPartner.values()].map((t) => t.partnerId).filter((x): x is number => x !== null))];
    const names = new Map<number, string | null>();
    for (const ids of chunk(partnerIds, IN_CHUNK)) for (const p of await db('partners').whereIn('id', ids).select('id', 'name', 'partner_key')) names.set(num(p.id), p.name ?? p.partner_key);
    const finish = (t: TotalsRow): TotalsRow => ({ ...t, partnerName: t.partnerId === null ? null : (names.get(t.partnerId) ?? null), deltaUsdMinor: t.reportedUsdMinor - t.owedUsdMinor });
    summary.totals = {
      byNetwork: [...byNetwork.values()].map(finish).sort((a, b) => a.key.localeCompare(b.key)),
      byPartner: [...byPartner.values()].map(finish).sort((a, b) => (a.partnerName ?? '').localeCompare(b.partnerName ?? '') || a.key.localeCompare(b.key)),
    };
    await db('reconciliation_runs').where({ id: runId }).update({ status: 'succeeded', finished_at: new Date(), stats: JSON.stringify({ ...summary, newIds: summary.newIds.slice(0, 1000) }) });
    log?.info({ runId, found: summary.found, new: summary.new, resolved: summary.resolved }, 'reconciliation finished');
    return summary;
  } catch (err) {
    await db('reconciliation_runs').where({ id: runId }).update({ status: 'failed', finished_at: new Date(), error: errorMessage(err) });
    throw err;
  }
}
