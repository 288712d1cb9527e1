// The demo report: what the main job found on a world, from the database it filled. One object with
// stable snake_case keys (money: integer minor units with their currency; USD unless said), rendered
// as JSON (`demo --json`) or as text for people.
import type { Knex } from 'knex';
import { DateTime } from 'luxon';
import type { Config } from '../config/schema.ts';
import type { MainJobSummary } from '../jobs/main-job.ts';
import { buildPayouts, listCommissions, listPayouts, type CommissionListRow } from '../rules/store.ts';
import { scrubValue } from '../util/secrets.ts';
import { usd } from '../cli/output.ts';
import type { World } from './build.ts';

export interface NetworkTotals {
  reported_usd_minor: number;
  owed_usd_minor: number;
  collected_usd_minor: number;
  /** reported − owed */
  delta_usd_minor: number;
  currency: 'USD';
}

export interface ReportDiscrepancy {
  id: number;
  kind: string;
  severity: string;
  network: string | null;
  /** Canonical partner key (e.g. email:…, shareasale:…). */
  partner: string | null;
  partner_name: string | null;
  /** `network:external id` of the partner account the finding is about. */
  partner_account: string | null;
  /** Billing document id of the payment, where there is one. */
  payment: string | null;
  usd_minor: number;
  currency: 'USD';
  expected_minor: number | null;
  reported_minor: number | null;
  amount_currency: string | null;
  status: string;
  reason: string | null;
}

export interface DemoReport {
  world: { name: string; as_of: string; affiliates: number; customers: number; subscriptions: number; payments: number; refunds: number; disputes: number; network_reports: number; injected_errors: number };
  database: string;
  ok: boolean;
  errors: string[];
  timings_ms: Record<string, number>;
  sync: Array<{ connection: string; status: string; records: number }>;
  totals: Record<string, NetworkTotals>;
  discrepancies_by_kind: Record<string, { count: number; usd_minor: number }>;
  discrepancies: ReportDiscrepancy[];
  top_partners: Array<{ partner: string; partner_name: string | null; network: string | null; owed_usd_minor: number; reported_usd_minor: number; delta_usd_minor: number }>;
  payouts_due: { payout_date: string; by_network: Record<string, { partners_payable: number; payable_usd_minor: number; carried_forward: number; blocked: number }> };
  injected: Array<{ kind: string; error: string; network: string; partner: string; payment: string; usd_minor: number }>;
  commissions: CommissionListRow[];
}

const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** The first payout date (the 15th) on or after `at`. */
export function nextPayoutDate(at: Date, day = 15): string {
  let d = DateTime.fromJSDate(at, { zone: 'UTC' }).startOf('day');
  if (d.day > day) d = d.plus({ months: 1 });
  return d.set({ day }).toISODate()!;
}

export async function loadDiscrepancies(db: Knex): Promise<ReportDiscrepancy[]> {
  const rows = (await db('discrepancies as d')
    .leftJoin('partners as p', 'p.id', 'd.partner_id')
    .leftJoin('partner_accounts as pa', 'pa.id', 'd.partner_account_id')
    .leftJoin('billing_events as be', 'be.id', 'd.billing_event_id')
    .whereIn('d.status', ['open', 'approved'])
    .orderBy([{ column: 'd.usd_at_stake_minor', order: 'desc' }, { column: 'd.id' }])
    .select('d.id', 'd.kind', 'd.severity', 'd.network', 'p.partner_key', 'p.name as partner_name', 'pa.network as pa_network', 'pa.external_id as pa_external', 'be.document_id', 'd.usd_at_stake_minor', 'd.expected_minor', 'd.reported_minor', 'd.currency', 'd.status', 'd.detail')) as Array<Record<string, unknown>>;
  return rows.map((r) => {
    const detail = (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown> | null;
    const network = (detail?.network ?? null) as Record<string, unknown> | null;
    return {
      id: n(r.id),
      kind: String(r.kind),
      severity: String(r.severity),
      network: (r.network as string | null) ?? null,
      partner: (r.partner_key as string | null) ?? null,
      partner_name: (r.partner_name as string | null) ?? null,
      partner_account: r.pa_external ? `${String(r.pa_network)}:${String(r.pa_external)}` : null,
      payment: (r.document_id as string | null) ?? ((network?.transactionKey ?? network?.orderRef ?? null) as string | null),
      usd_minor: n(r.usd_at_stake_minor),
      currency: 'USD' as const,
      expected_minor: r.expected_minor === null ? null : n(r.expected_minor),
      reported_minor: r.reported_minor === null ? null : n(r.reported_minor),
      amount_currency: r.currency ? String(r.currency).trim() : null,
      status: String(r.status),
      reason: typeof detail?.reason === 'string' ? detail.reason : typeof detail?.direction === 'string' ? detail.direction : null,
    };
  });
}

export async function buildReport(db: Knex, config: Config, world: World, summary: MainJobSummary, extra: { database: string; timings: Record<string, number>; now: Date }): Promise<DemoReport> {
  const totals: Record<string, NetworkTotals> = {};
  for (const t of [...(summary.reconcile.totals?.byNetwork ?? [])].sort((a, b) => String(a.network).localeCompare(String(b.network)))) {
    totals[t.network ?? 'none'] = { reported_usd_minor: t.reportedUsdMinor, owed_usd_minor: t.owedUsdMinor, collected_usd_minor: t.collectedUsdMinor, delta_usd_minor: t.deltaUsdMinor, currency: 'USD' };
  }
  const discrepancies = await loadDiscrepancies(db);
  const byKind: DemoReport['discrepancies_by_kind'] = {};
  for (const d of [...discrepancies].sort((a, b) => a.kind.localeCompare(b.kind))) {
    const k = (byKind[d.kind] ??= { count: 0, usd_minor: 0 });
    k.count++;
    k.usd_minor += d.usd_minor;
  }
  const topPartners = [...(summary.reconcile.totals?.byPartner ?? [])]
    .sort((a, b) => b.owedUsdMinor - a.owedUsdMinor || String(a.key).localeCompare(String(b.key)))
    .slice(0, 10);
  const keys = new Map<number, string>();
  const ids = topPartners.map((t) => t.partnerId).filter((x): x is number => x !== null);
  if (ids.length) for (const p of (await db('partners').whereIn('id', ids).select('id', 'partner_key')) as Array<{ id: number; partner_key: string }>) keys.set(n(p.id), p.partner_key);

  const payoutDate = nextPayoutDate(extra.now);
  await buildPayouts(db, config, payoutDate);
  const byNetwork: DemoReport['payouts_due']['by_network'] = {};
  for (const p of (await listPayouts(db, payoutDate)).sort((a, b) => a.network.localeCompare(b.network))) {
    const x = (byNetwork[p.network] ??= { partners_payable: 0, payable_usd_minor: 0, carried_forward: 0, blocked: 0 });
    if (p.status === 'payable') {
      x.partners_payable++;
      x.payable_usd_minor += p.payable_usd_minor;
    } else if (p.status === 'blocked') x.blocked++;
    else if (p.status === 'carried_forward') x.carried_forward++;
  }
  const commissions = scrubValue(await listCommissions(db)) as CommissionListRow[];
  return {
    world: {
      name: world.scenario.name,
      as_of: world.asOf.toISOString(),
      affiliates: world.affiliates.size,
      customers: world.customers.size,
      subscriptions: world.subscriptions.size,
      payments: world.payments.length,
      refunds: world.payments.reduce((a, p) => a + p.refunds.length, 0),
      disputes: world.payments.filter((p) => p.dispute).length,
      network_reports: world.reports.length,
      injected_errors: world.injected.length,
    },
    database: extra.database,
    ok: summary.ok,
    errors: summary.errors,
    timings_ms: extra.timings,
    sync: summary.sync.connections.map((c) => ({ connection: c.connection, status: c.status, records: c.records })),
    totals,
    discrepancies_by_kind: byKind,
    discrepancies,
    top_partners: topPartners.map((t) => ({ partner: t.partnerId === null ? 'none' : (keys.get(t.partnerId) ?? String(t.partnerId)), partner_name: t.partnerName, network: t.network, owed_usd_minor: t.owedUsdMinor, reported_usd_minor: t.reportedUsdMinor, delta_usd_minor: t.deltaUsdMinor })),
    payouts_due: { payout_date: payoutDate, by_network: byNetwork },
    injected: world.injected.map((i) => ({ kind: i.kind, error: i.error, network: i.network, partner: i.partner, payment: i.payment, usd_minor: i.usdMinor })),
    commissions,
  };
}

const pad = (s: string, w: number): string => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number): string => (s.length >= w ? s : ' '.repeat(w - s.length) + s);

/** The report for people. */
export function renderReport(r: DemoReport): string {
  const out: string[] = [];
  const w = r.world;
  out.push(`commission-sync demo — world "${w.name}" as of ${w.as_of.slice(0, 10)}`);
  out.push(`  ${w.affiliates} affiliates, ${w.customers} customers, ${w.subscriptions} subscriptions, ${w.payments} payments (${w.refunds} refunds, ${w.disputes} disputes); networks reported ${w.network_reports} commissions, ${w.injected_errors} with injected errors`);
  out.push(`  database: ${r.database}; main job ${r.ok ? 'succeeded' : 'finished with errors'} in ${((r.timings_ms.main_job ?? 0) / 1000).toFixed(1)} s`);
  out.push('');
  out.push('Per network (USD)            reported         owed    collected   reported−owed');
  for (const [net, t] of Object.entries(r.totals)) {
    out.push(`  ${pad(net, 22)} ${lpad(usd(t.reported_usd_minor), 12)} ${lpad(usd(t.owed_usd_minor), 12)} ${lpad(usd(t.collected_usd_minor), 12)} ${lpad(usd(t.delta_usd_minor), 15)}`);
  }
  out.push('');
  out.push('Discrepancies by kind           count     USD at stake');
  for (const [kind, k] of Object.entries(r.discrepancies_by_kind)) out.push(`  ${pad(kind, 28)} ${lpad(String(k.count), 6)} ${lpad(usd(k.usd_minor), 16)}`);
  if (Object.keys(r.discrepancies_by_kind).length === 0) out.push('  (none)');
  out.push('');
  out.push('Largest discrepancies');
  for (const d of r.discrepancies.slice(0, 8)) {
    out.push(`  ${pad(d.kind, 22)} ${pad(d.network ?? '', 13)} ${pad((d.partner_name ?? d.partner ?? '').slice(0, 22), 23)} ${pad(d.payment ?? '', 22)} ${lpad(usd(d.usd_minor), 11)}${d.reason ? `  ${d.reason}` : ''}`);
  }
  out.push('');
  out.push('Top partners by commission owed (USD)      owed     reported   reported−owed');
  for (const p of r.top_partners) out.push(`  ${pad(`${(p.partner_name ?? p.partner).slice(0, 24)} (${p.network ?? ''})`, 38)} ${lpad(usd(p.owed_usd_minor), 10)} ${lpad(usd(p.reported_usd_minor), 12)} ${lpad(usd(p.delta_usd_minor), 15)}`);
  out.push('');
  out.push(`Payouts due on ${r.payouts_due.payout_date} (R9: minimums, carry-forward, blocked)`);
  for (const [net, p] of Object.entries(r.payouts_due.by_network)) out.push(`  ${pad(net, 14)} ${lpad(usd(p.payable_usd_minor), 12)} to ${p.partners_payable} partner(s); ${p.carried_forward} carried forward, ${p.blocked} blocked`);
  if (Object.keys(r.payouts_due.by_network).length === 0) out.push('  (none)');
  if (r.errors.length) {
    out.push('');
    for (const e of r.errors) out.push(`error: ${e}`);
  }
  return out.join('\n');
}
