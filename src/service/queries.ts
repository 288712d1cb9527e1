// Read models for the ops API and dashboard. Plain SQL over the canonical tables; money stays in
// integer minor units (USD cents where the field says usd). Nothing here selects a credential.
import type { Knex } from 'knex';
import { explainCommission } from '../rules/explain.ts';
import type { ComputedCommission, Explanation } from '../rules/types.ts';
import { detailSql } from '../reconcile/discrepancies.ts';

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export interface OverviewRow {
  period: string;
  network: string;
  reportedUsdMinor: number;
  owedUsdMinor: number;
  collectedUsdMinor: number;
  deltaUsdMinor: number;
}

/**
 * Per month (in the configured time zone) and network:
 *  reported  = commissions the network reported (not declined or deleted), USD cents;
 *  owed      = what the program rules compute (direct + second tier + clawbacks, not void), by paid month;
 *  collected = what billing actually collected on the payments behind the direct commissions:
 *              payment base minus refunds, chargebacks and reversals linked to those payments.
 *  delta     = reported − owed.
 */
export async function overview(db: Knex, tz: string, f: { from?: string | undefined; to?: string | undefined; network?: string | undefined }): Promise<OverviewRow[]> {
  const reported = await db.raw(
    `SELECT to_char(occurred_at AT TIME ZONE ?, 'YYYY-MM') AS period, network,
            sum(COALESCE(amount_usd_minor, CASE WHEN currency = 'USD' THEN amount_minor END, 0)) AS v
       FROM network_commissions
      WHERE deleted_at IS NULL AND status NOT IN ('declined','deleted')
      GROUP BY 1, 2`,
    [tz],
  );
  const owed = await db.raw(
    `SELECT to_char(paid_at AT TIME ZONE ?, 'YYYY-MM') AS period, network, sum(COALESCE(amount_usd_minor, 0)) AS v
       FROM computed_commissions
      WHERE status <> 'void' AND network IS NOT NULL
      GROUP BY 1, 2`,
    [tz],
  );
  const collected = await db.raw(
    `WITH direct AS (
       SELECT DISTINCT ON (payment_event_id) payment_event_id, network, paid_at, COALESCE(base_usd_minor, 0) AS base
         FROM computed_commissions WHERE kind = 'direct' AND network IS NOT NULL
         ORDER BY payment_event_id, id
     ), taken AS (
       SELECT payment_event_id, sum(COALESCE(amount_usd_minor, 0)) AS back
         FROM billing_events
        WHERE kind IN ('refund','chargeback','reversal') AND deleted_at IS NULL AND payment_event_id IS NOT NULL
        GROUP BY 1
     )
     SELECT to_char(d.paid_at AT TIME ZONE ?, 'YYYY-MM') AS period, d.network, sum(d.base - COALESCE(t.back, 0)) AS v
       FROM direct d LEFT JOIN taken t ON t.payment_event_id = d.payment_event_id
      GROUP BY 1, 2`,
    [tz],
  );
  const map = new Map<string, OverviewRow>();
  const row = (period: string, network: string): OverviewRow => {
    const k = `${period}|${network}`;
    let r = map.get(k);
    if (!r) {
      r = { period, network, reportedUsdMinor: 0, owedUsdMinor: 0, collectedUsdMinor: 0, deltaUsdMinor: 0 };
      map.set(k, r);
    }
    return r;
  };
  for (const r of reported.rows as Array<{ period: string; network: string; v: unknown }>) row(r.period, r.network).reportedUsdMinor = num(r.v);
  for (const r of owed.rows as Array<{ period: string; network: string; v: unknown }>) row(r.period, r.network).owedUsdMinor = num(r.v);
  for (const r of collected.rows as Array<{ period: string; network: string; v: unknown }>) row(r.period, r.network).collectedUsdMinor = num(r.v);
  return [...map.values()]
    .filter((r) => (!f.from || r.period >= f.from) && (!f.to || r.period <= f.to) && (!f.network || r.network === f.network))
    .map((r) => ({ ...r, deltaUsdMinor: r.reportedUsdMinor - r.owedUsdMinor }))
    .sort((a, b) => a.period.localeCompare(b.period) || a.network.localeCompare(b.network));
}

export interface DiscrepancyFilter {
  status?: string[] | undefined;
  kind?: string[] | undefined;
  severity?: string[] | undefined;
  network?: string | undefined;
  period?: string | undefined;
  partnerId?: number | undefined;
  minUsdMinor?: number | undefined;
  limit: number;
  offset: number;
}

const DISCREPANCY_COLUMNS = [
  'd.id', 'd.kind', 'd.severity', 'd.status', 'd.network', 'd.connection', 'd.period', 'd.partner_id', 'p.name as partner_name',
  'p.partner_key', 'd.expected_minor', 'd.reported_minor', 'd.currency', 'd.usd_at_stake_minor', 'd.reason', 'd.first_seen_at',
  'd.last_seen_at', 'd.decided_by', 'd.decided_at', 'd.billing_event_id', 'd.network_commission_id', 'd.computed_commission_key',
];

function mapDiscrepancy(r: Record<string, unknown>) {
  return {
    id: num(r.id),
    kind: r.kind as string,
    severity: r.severity as string,
    status: r.status as string,
    network: (r.network as string | null) ?? null,
    connection: (r.connection as string | null) ?? null,
    period: (r.period as string | null) ?? null,
    partnerId: numOrNull(r.partner_id),
    partnerName: (r.partner_name as string | null) ?? null,
    partnerKey: (r.partner_key as string | null) ?? null,
    expectedMinor: numOrNull(r.expected_minor),
    reportedMinor: numOrNull(r.reported_minor),
    currency: (r.currency as string | null) ?? null,
    usdAtStakeMinor: num(r.usd_at_stake_minor),
    reason: (r.reason as string | null) ?? null,
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    decidedBy: (r.decided_by as string | null) ?? null,
    decidedAt: r.decided_at ?? null,
    billingEventId: numOrNull(r.billing_event_id),
    networkCommissionId: numOrNull(r.network_commission_id),
    computedCommissionKey: (r.computed_commission_key as string | null) ?? null,
  };
}
export type DiscrepancyRow = ReturnType<typeof mapDiscrepancy>;

export async function listDiscrepancies(db: Knex, f: DiscrepancyFilter): Promise<{ items: DiscrepancyRow[]; total: number; facets: { kinds: string[]; networks: string[]; periods: string[] } }> {
  const base = db('discrepancies as d').leftJoin('partners as p', 'p.id', 'd.partner_id');
  if (f.status?.length) base.whereIn('d.status', f.status);
  if (f.kind?.length) base.whereIn('d.kind', f.kind);
  if (f.severity?.length) base.whereIn('d.severity', f.severity);
  if (f.network) base.where('d.network', f.network);
  if (f.period) base.where('d.period', f.period);
  if (f.partnerId !== undefined) base.where('d.partner_id', f.partnerId);
  if (f.minUsdMinor !== undefined) base.where('d.usd_at_stake_minor', '>=', f.minUsdMinor);
  const [{ n } = { n: 0 }] = await base.clone().count<Array<{ n: string | number }>>('* as n');
  const rows = await base.clone().select(DISCREPANCY_COLUMNS).orderBy([{ column: 'd.usd_at_stake_minor', order: 'desc' }, { column: 'd.id', order: 'asc' }]).limit(f.limit).offset(f.offset);
  const kinds = (await db('discrepancies').distinct('kind').orderBy('kind')).map((r: { kind: string }) => r.kind);
  const networks = (await db('discrepancies').whereNotNull('network').distinct('network').orderBy('network')).map((r: { network: string }) => r.network);
  const periods = (await db('discrepancies').whereNotNull('period').distinct('period').orderBy('period', 'desc')).map((r: { period: string }) => r.period);
  return { items: rows.map(mapDiscrepancy), total: Number(n), facets: { kinds, networks, periods } };
}

function rowToComputed(r: Record<string, unknown>): ComputedCommission {
  return {
    key: r.commission_key as string,
    kind: r.kind as ComputedCommission['kind'],
    ...(r.clawback_of ? { clawbackOf: r.clawback_of as 'direct' | 'second_tier' } : {}),
    partnerId: String(r.partner_id),
    partnerAccountId: r.partner_account_id === null ? null : String(r.partner_account_id),
    network: (r.network as ComputedCommission['network']) ?? null,
    paymentEventId: String(r.payment_event_id),
    sourceEventId: String(r.source_event_id),
    tier: (r.tier as string | null) ?? null,
    rate: String(r.rate),
    baseMinor: num(r.base_minor),
    baseCurrency: String(r.base_currency),
    baseUsdMinor: numOrNull(r.base_usd_minor),
    amountMinor: num(r.amount_minor),
    amountUsdMinor: num(r.amount_usd_minor),
    status: r.status as ComputedCommission['status'],
    paidAt: new Date(r.paid_at as string),
    clearedAt: r.cleared_at ? new Date(r.cleared_at as string) : null,
    payoutDate: (r.payout_date as string | null) ?? null,
    ruleVersion: (r.rule_version as string | null) ?? null,
    exclusionReason: (r.exclusion_reason as string | null) ?? null,
    flags: Array.isArray(r.flags) ? (r.flags as string[]) : [],
    explanation: (r.explanation ?? {}) as Explanation,
  };
}

const BILLING_COLUMNS = ['id', 'connection', 'billing_system', 'kind', 'external_id', 'document_id', 'customer_id', 'subscription_id', 'payment_event_id', 'occurred_at', 'amount_minor', 'gross_minor', 'tax_minor', 'currency', 'amount_usd_minor', 'exchange_rate', 'fx_source', 'classification', 'billing_reason', 'plan_interval', 'status', 'deleted_at'];
const NETWORK_COLUMNS = ['id', 'connection', 'network', 'external_id', 'partner_account_id', 'partner_external_id', 'customer_id', 'customer_external_key', 'transaction_key', 'order_ref', 'kind_hint', 'amount_minor', 'currency', 'amount_usd_minor', 'sale_amount_minor', 'sale_currency', 'status', 'raw_status', 'occurred_at', 'click_at', 'description', 'deleted_at', 'first_seen_at', 'last_seen_at'];

/** One discrepancy with its billing facts, network record and rule explanation side by side. */
export async function discrepancyDetail(db: Knex, id: number) {
  const d = await db('discrepancies as d').leftJoin('partners as p', 'p.id', 'd.partner_id').where('d.id', id).first([...DISCREPANCY_COLUMNS, db.raw(`${detailSql('d')} AS detail`), 'd.fingerprint']);
  if (!d) return undefined;
  const billing: Record<string, unknown>[] = [];
  if (d.billing_event_id) {
    const payment = await db('billing_events').where({ id: d.billing_event_id }).first(BILLING_COLUMNS);
    if (payment) {
      billing.push(payment);
      const related = await db('billing_events').where({ payment_event_id: payment.id }).whereNot({ id: payment.id }).orderBy('occurred_at').select(BILLING_COLUMNS);
      billing.push(...related);
    }
  }
  const network = d.network_commission_id ? await db('network_commissions').where({ id: d.network_commission_id }).first(NETWORK_COLUMNS) : null;
  let computed: Record<string, unknown> | null = null;
  let explanationLines: string[] = [];
  if (d.computed_commission_key) {
    const c = await db('computed_commissions').where({ commission_key: d.computed_commission_key }).first();
    if (c) {
      computed = c;
      explanationLines = explainCommission(rowToComputed(c));
    }
  }
  const corrections = await db('corrections').where({ discrepancy_id: id }).orderBy('id').select('id', 'connection', 'network', 'action_type', 'usd_minor', 'status', 'attempts', 'error', 'created_at', 'sent_at', 'confirmed_at');
  return {
    discrepancy: { ...mapDiscrepancy(d), fingerprint: d.fingerprint as string, detail: d.detail as unknown },
    billing,
    network: network ?? null,
    computed: computed
      ? {
          commissionKey: computed.commission_key,
          kind: computed.kind,
          tier: computed.tier,
          rate: computed.rate,
          baseMinor: num(computed.base_minor),
          baseCurrency: computed.base_currency,
          amountMinor: num(computed.amount_minor),
          amountUsdMinor: numOrNull(computed.amount_usd_minor),
          status: computed.status,
          paidAt: computed.paid_at,
          payoutDate: computed.payout_date,
          ruleVersion: computed.rule_version,
          exclusionReason: computed.exclusion_reason,
          flags: computed.flags,
          explanation: computed.explanation,
        }
      : null,
    explanationLines,
    corrections,
  };
}

export async function listPartners(db: Knex, f: { q?: string | undefined; limit: number; offset: number }) {
  const q = db('partners as p');
  if (f.q) q.where((w) => w.whereILike('p.name', `%${f.q}%`).orWhereILike('p.email', `%${f.q}%`).orWhereILike('p.partner_key', `%${f.q}%`));
  const [{ n } = { n: 0 }] = await q.clone().count<Array<{ n: string | number }>>('* as n');
  const rows = await q
    .clone()
    .select(
      'p.id', 'p.partner_key', 'p.name', 'p.email',
      db.raw(`(SELECT COALESCE(sum(amount_usd_minor), 0) FROM computed_commissions c WHERE c.partner_id = p.id AND c.status <> 'void') AS owed_usd_minor`),
      db.raw(`(SELECT COALESCE(sum(COALESCE(n.amount_usd_minor, CASE WHEN n.currency = 'USD' THEN n.amount_minor END, 0)), 0) FROM network_commissions n JOIN partner_accounts a ON a.id = n.partner_account_id WHERE a.partner_id = p.id AND n.deleted_at IS NULL AND n.status NOT IN ('declined','deleted')) AS reported_usd_minor`),
      db.raw(`(SELECT count(*) FROM discrepancies d WHERE d.partner_id = p.id AND d.status = 'open') AS open_discrepancies`),
      db.raw(`(SELECT string_agg(DISTINCT a.network, ',') FROM partner_accounts a WHERE a.partner_id = p.id) AS networks`),
    )
    .orderBy('p.id')
    .limit(f.limit)
    .offset(f.offset);
  return {
    total: Number(n),
    items: rows.map((r: Record<string, unknown>) => ({
      id: num(r.id),
      partnerKey: r.partner_key,
      name: r.name,
      email: r.email,
      networks: r.networks ? String(r.networks).split(',') : [],
      owedUsdMinor: num(r.owed_usd_minor),
      reportedUsdMinor: num(r.reported_usd_minor),
      openDiscrepancies: num(r.open_discrepancies),
    })),
  };
}

export async function partnerDetail(db: Knex, id: number, tz: string) {
  const p = await db('partners').where({ id }).first('id', 'partner_key', 'name', 'email', 'recruiter_partner_id', 'tax_info_on_file', 'payout_method_on_file', 'created_at');
  if (!p) return undefined;
  const accounts = await db('partner_accounts').where({ partner_id: id }).orderBy('id').select('id', 'connection', 'network', 'external_id', 'status', 'group_key', 'joined_at', 'deleted_at');
  // Tier over time: the tier of the partner's last direct commission of each month.
  const tiers = await db.raw(
    `SELECT DISTINCT ON (month) month, tier, paid_at FROM (
       SELECT to_char(paid_at AT TIME ZONE ?, 'YYYY-MM') AS month, tier, paid_at FROM computed_commissions
        WHERE partner_id = ? AND kind = 'direct' AND tier IS NOT NULL) t
     ORDER BY month, paid_at DESC`,
    [tz, id],
  );
  const commissions = await db('computed_commissions')
    .where({ partner_id: id })
    .orderBy('paid_at', 'desc')
    .limit(500)
    .select('commission_key', 'kind', 'clawback_of', 'network', 'tier', 'rate', 'base_minor', 'base_currency', 'base_usd_minor', 'amount_minor', 'amount_usd_minor', 'status', 'paid_at', 'cleared_at', 'payout_date', 'exclusion_reason');
  const payouts = await db('payouts').where({ partner_id: id }).orderBy('payout_date', 'desc').select('id', 'network', 'payout_date', 'balance_usd_minor', 'carried_in_usd_minor', 'carried_out_usd_minor', 'payable_usd_minor', 'minimum_usd_minor', 'status', 'blocked_reason');
  return {
    partner: { id: num(p.id), partnerKey: p.partner_key, name: p.name, email: p.email, recruiterPartnerId: numOrNull(p.recruiter_partner_id), taxInfoOnFile: p.tax_info_on_file, payoutMethodOnFile: p.payout_method_on_file, createdAt: p.created_at },
    accounts,
    tierHistory: (tiers.rows as Array<{ month: string; tier: string }>).map((t) => ({ month: t.month, tier: t.tier })),
    commissions: commissions.map((c: Record<string, unknown>) => ({
      commissionKey: c.commission_key,
      kind: c.kind,
      clawbackOf: c.clawback_of,
      network: c.network,
      tier: c.tier,
      rate: c.rate,
      baseMinor: num(c.base_minor),
      baseCurrency: c.base_currency,
      baseUsdMinor: numOrNull(c.base_usd_minor),
      amountMinor: num(c.amount_minor),
      amountUsdMinor: numOrNull(c.amount_usd_minor),
      status: c.status,
      paidAt: c.paid_at,
      clearedAt: c.cleared_at,
      payoutDate: c.payout_date,
      exclusionReason: c.exclusion_reason,
    })),
    payouts: payouts.map((r: Record<string, unknown>) => ({
      id: num(r.id),
      network: r.network,
      payoutDate: r.payout_date,
      balanceUsdMinor: num(r.balance_usd_minor),
      carriedInUsdMinor: num(r.carried_in_usd_minor),
      carriedOutUsdMinor: num(r.carried_out_usd_minor),
      payableUsdMinor: num(r.payable_usd_minor),
      minimumUsdMinor: num(r.minimum_usd_minor),
      status: r.status,
      blockedReason: r.blocked_reason,
    })),
  };
}

export async function listRuns(db: Knex, f: { connection?: string | undefined; status?: string | undefined; limit: number; offset: number }) {
  const q = db('sync_runs');
  if (f.connection) q.where({ connection: f.connection });
  if (f.status) q.where({ status: f.status });
  const rows = await q.orderBy('id', 'desc').limit(f.limit).offset(f.offset).select('id', 'connection', 'kind', 'status', 'started_at', 'finished_at', 'stats', 'error');
  return rows.map((r: Record<string, unknown>) => ({ id: num(r.id), connection: r.connection, kind: r.kind, status: r.status, startedAt: r.started_at, finishedAt: r.finished_at, stats: r.stats, error: r.error }));
}

export async function listReconciliationRuns(db: Knex, limit: number) {
  const rows = await db('reconciliation_runs').orderBy('id', 'desc').limit(limit).select('id', 'period', 'network', 'status', 'started_at', 'finished_at', 'stats', 'error');
  return rows.map((r: Record<string, unknown>) => ({ id: num(r.id), period: r.period, network: r.network, status: r.status, startedAt: r.started_at, finishedAt: r.finished_at, stats: r.stats, error: r.error }));
}

export async function listJobFires(db: Knex, f: { job?: string | undefined; limit: number }) {
  const q = db('job_fires');
  if (f.job) q.where({ job_name: f.job });
  const rows = await q.orderBy('fire_at', 'desc').limit(f.limit).select('job_name', 'fire_at', 'owner', 'status', 'started_at', 'heartbeat_at', 'finished_at', 'error');
  return rows.map((r: Record<string, unknown>) => ({ job: r.job_name, fireAt: r.fire_at, owner: r.owner, status: r.status, startedAt: r.started_at, heartbeatAt: r.heartbeat_at, finishedAt: r.finished_at, error: r.error }));
}

export async function listCorrections(db: Knex, f: { status?: string | undefined; network?: string | undefined; discrepancyId?: number | undefined; limit: number; offset: number }) {
  const q = db('corrections');
  if (f.status) q.where({ status: f.status });
  if (f.network) q.where({ network: f.network });
  if (f.discrepancyId !== undefined) q.where({ discrepancy_id: f.discrepancyId });
  const [{ n } = { n: 0 }] = await q.clone().count<Array<{ n: string | number }>>('* as n');
  const rows = await q.orderBy('id', 'desc').limit(f.limit).offset(f.offset).select('id', 'idempotency_key', 'discrepancy_id', 'connection', 'network', 'action_type', 'usd_minor', 'status', 'attempts', 'error', 'created_at', 'sent_at', 'confirmed_at');
  const items = rows.map((r: Record<string, unknown>) => ({ id: num(r.id), idempotencyKey: r.idempotency_key, discrepancyId: numOrNull(r.discrepancy_id), connection: r.connection, network: r.network, actionType: r.action_type, usdMinor: num(r.usd_minor), status: r.status, attempts: num(r.attempts), error: r.error, createdAt: r.created_at, sentAt: r.sent_at, confirmedAt: r.confirmed_at }));
  return { items, total: Number(n) };
}
