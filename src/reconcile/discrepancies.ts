// Reading and deciding on discrepancies (CLI `discrepancies …`, the service, the push planner).
import type { Knex } from 'knex';
import { UserError } from '../util/errors.ts';
import { foldKeptSums } from '../db/kept-sums.ts';
import { SEVERITIES, type Severity } from './types.ts';

export interface DiscrepancyRecord {
  id: number;
  fingerprint: string;
  kind: string;
  severity: Severity;
  status: 'open' | 'approved' | 'resolved' | 'ignored';
  network: string | null;
  connection: string | null;
  partnerId: number | null;
  partnerName: string | null;
  partnerAccountId: number | null;
  billingEventId: number | null;
  networkCommissionId: number | null;
  computedCommissionKey: string | null;
  period: string | null;
  expectedMinor: number | null;
  reportedMinor: number | null;
  currency: string | null;
  usdAtStakeMinor: number;
  reason: string | null;
  detail: Record<string, unknown>;
  firstSeenAt: Date;
  lastSeenAt: Date;
  resolvedAt: Date | null;
}

/**
 * Discrepancies by (kind, status), from discrepancy_counts (migration 015: statement triggers on
 * discrepancies append each statement's signed difference there). Folds the differences written
 * since the last fold into one row per (kind, status) first, so the read stays a handful of rows
 * whatever the history; a concurrent writer's uncommitted differences are not touched.
 */
export async function readDiscrepancyCounts(db: Knex): Promise<Array<{ kind: string; status: string; n: number }>> {
  const rows = await foldKeptSums(db, 'discrepancy_counts', ['kind', 'status'], ['n']);
  return rows.map((r) => ({ kind: String(r.kind), status: String(r.status), n: Number(r.n) }));
}

export interface DiscrepancyFilter {
  status?: string[] | undefined;
  period?: string | undefined;
  network?: string | undefined;
  kind?: string[] | undefined;
  minSeverity?: Severity | undefined;
  ids?: number[] | undefined;
  limit?: number | undefined;
}

/**
 * A discrepancy's detail as readers see it, as a SQL expression over `discrepancies <alias>`. The
 * stored detail leaves out the computed commission's explanation (~2.6 kB, migration 015); it is put
 * back at `computed.explanation`: the row's own copy (`explanation`) when the commission changed or
 * went away after the discrepancy was last written (a trigger keeps the old one then), else the
 * current explanation of the commission it names (`explained_by`). The result is the detail the
 * discrepancy was written with, as before 015. jsonb orders keys itself, so the text is the same too.
 */
export function detailSql(alias = 'd'): string {
  const d = alias;
  return `CASE WHEN ${d}.explanation IS NOT NULL THEN jsonb_set(${d}.detail, '{computed,explanation}', ${d}.explanation)
    WHEN ${d}.explained_by IS NOT NULL THEN coalesce(jsonb_set(${d}.detail, '{computed,explanation}',
      (SELECT cc.explanation FROM computed_commissions cc WHERE cc.commission_key = ${d}.explained_by)), ${d}.detail)
    ELSE ${d}.detail END`;
}

/** The columns toDiscrepancy reads (the detail as readers see it). */
const RECORD_COLUMNS = [
  'id', 'fingerprint', 'kind', 'severity', 'status', 'network', 'connection', 'partner_id', 'partner_account_id', 'billing_event_id', 'network_commission_id',
  'computed_commission_key', 'period', 'expected_minor', 'reported_minor', 'currency', 'usd_at_stake_minor', 'reason', 'first_seen_at', 'last_seen_at', 'resolved_at',
].map((c) => `d.${c}`);

const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toDiscrepancy(r: Record<string, unknown>): DiscrepancyRecord {
  return {
    id: Number(r.id),
    fingerprint: String(r.fingerprint),
    kind: String(r.kind),
    severity: r.severity as Severity,
    status: r.status as DiscrepancyRecord['status'],
    network: (r.network as string | null) ?? null,
    connection: (r.connection as string | null) ?? null,
    partnerId: n(r.partner_id),
    partnerName: (r.partner_name as string | null) ?? null,
    partnerAccountId: n(r.partner_account_id),
    billingEventId: n(r.billing_event_id),
    networkCommissionId: n(r.network_commission_id),
    computedCommissionKey: (r.computed_commission_key as string | null) ?? null,
    period: (r.period as string | null) ?? null,
    expectedMinor: n(r.expected_minor),
    reportedMinor: n(r.reported_minor),
    currency: r.currency ? String(r.currency).trim() : null,
    usdAtStakeMinor: Number(r.usd_at_stake_minor ?? 0),
    reason: (r.reason as string | null) ?? null,
    detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>,
    firstSeenAt: new Date(r.first_seen_at as string),
    lastSeenAt: new Date(r.last_seen_at as string),
    resolvedAt: r.resolved_at ? new Date(r.resolved_at as string) : null,
  };
}

export async function listDiscrepancies(db: Knex, f: DiscrepancyFilter = {}): Promise<DiscrepancyRecord[]> {
  const q = db('discrepancies as d').leftJoin('partners as p', 'p.id', 'd.partner_id').select(...RECORD_COLUMNS, db.raw(`${detailSql('d')} AS detail`), db.raw('coalesce(p.name, p.partner_key) as partner_name'));
  if (f.ids?.length) q.whereIn('d.id', f.ids);
  if (f.status?.length) q.whereIn('d.status', f.status);
  if (f.period) q.where('d.period', f.period);
  if (f.network) q.where('d.network', f.network);
  if (f.kind?.length) q.whereIn('d.kind', f.kind);
  if (f.minSeverity) q.whereIn('d.severity', SEVERITIES.slice(SEVERITIES.indexOf(f.minSeverity)));
  q.orderBy([{ column: 'd.usd_at_stake_minor', order: 'desc' }, { column: 'd.id', order: 'asc' }]);
  if (f.limit) q.limit(f.limit);
  return (await q).map(toDiscrepancy);
}

/**
 * Approve (queue for push) or ignore (with a reason; never re-reported) discrepancies. Only open or
 * approved ones can be decided; a resolved one has nothing left to decide.
 */
export async function decideDiscrepancies(db: Knex, ids: number[], decision: 'approve' | 'ignore' | 'reopen', opts: { reason?: string | undefined; by?: string | undefined; now?: Date } = {}): Promise<{ updated: number[]; skipped: Array<{ id: number; why: string }> }> {
  if (decision === 'ignore' && !opts.reason?.trim()) throw new UserError('ignore needs --reason "<why>" so the decision is auditable');
  const rows = await db('discrepancies').whereIn('id', ids).select('id', 'status');
  const found = new Map(rows.map((r) => [Number(r.id), String(r.status)]));
  const updated: number[] = [];
  const skipped: Array<{ id: number; why: string }> = [];
  const allowed: Record<typeof decision, string[]> = { approve: ['open', 'approved'], ignore: ['open', 'approved'], reopen: ['ignored', 'approved'] };
  for (const id of ids) {
    const status = found.get(id);
    if (status === undefined) skipped.push({ id, why: 'not found' });
    else if (!allowed[decision].includes(status)) skipped.push({ id, why: `status is ${status}` });
    else updated.push(id);
  }
  if (updated.length) {
    const status = decision === 'approve' ? 'approved' : decision === 'ignore' ? 'ignored' : 'open';
    await db('discrepancies')
      .whereIn('id', updated)
      .update({ status, reason: opts.reason ?? null, decided_by: opts.by ?? null, decided_at: opts.now ?? new Date() });
  }
  return { updated, skipped };
}
