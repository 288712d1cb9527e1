// commission-sync reconcile: three-way reconciliation with per-network and per-partner totals and
// the discrepancy list; --fail-on makes it usable as a CI/cron gate.
import type { Command } from 'commander';
import { z } from 'zod';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { runReconciliation } from '../../reconcile/run.ts';
import { listDiscrepancies } from '../../reconcile/discrepancies.ts';
import { SEVERITIES, severityRank, type Severity } from '../../reconcile/types.ts';
import { UserError } from '../../util/errors.ts';
import { formatZodIssues } from '../../util/zod-format.ts';

const optsSchema = z.object({
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected yyyy-mm').optional(),
  network: z.enum(['partnerstack', 'shareasale', 'awin']).optional(),
  format: z.string().optional(),
  failOn: z.enum(SEVERITIES).optional(),
  full: z.boolean().optional(),
});

export function register(program: Command): void {
  program
    .command('reconcile')
    .description('compare network-reported, rule-computed and billing-collected commissions; record discrepancies')
    .option('--period <yyyy-mm>', 'only this month (default: every month with data)')
    .option('--network <network>', 'partnerstack | shareasale | awin')
    .option('--full', 're-evaluate everything (default: only what changed since the last run, or everything on the first run)')
    .option('--format <format>', 'table | json | csv', 'table')
    .option('--fail-on <severity>', `exit 1 when open discrepancies at or above this severity exist (${SEVERITIES.join('|')})`)
    .action(async (raw: unknown, cmd: Command) => {
      const parsed = optsSchema.safeParse(raw);
      if (!parsed.success) throw new UserError(`Invalid options:\n${formatZodIssues(parsed.error)}`);
      const opts = parsed.data;
      const format = parseFormat(opts.format);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
      try {
        const s = await runReconciliation({ db: app.db, config: app.config, log: app.log }, { period: opts.period, network: opts.network, full: opts.full });
        const list = await listDiscrepancies(app.db, { status: ['open', 'approved'], period: opts.period, network: opts.network });
        const rows = list.map((d) => ({
          id: d.id,
          kind: d.kind,
          severity: d.severity,
          status: d.status,
          network: d.network,
          period: d.period,
          partner: d.partnerName ?? d.partnerId,
          expected_minor: d.expectedMinor,
          reported_minor: d.reportedMinor,
          currency: d.currency,
          usd_at_stake_minor: d.usdAtStakeMinor,
          reason: (d.detail.reason as string | undefined) ?? '',
          billing_event_id: d.billingEventId,
          network_commission_id: d.networkCommissionId,
          computed_commission_key: d.computedCommissionKey,
          new: s.newIds.includes(d.id),
        }));
        if (format === 'json') {
          console.log(JSON.stringify({ run: { id: s.runId, mode: s.mode, units: s.units, found: s.found, new: s.new, stillOpen: s.stillOpen, resolved: s.resolved, byKind: s.byKind, slices: s.slices }, totals: s.totals, discrepancies: rows }, null, 2));
        } else if (format === 'csv') {
          console.log(renderRows(rows, 'csv'));
        } else {
          const money = (t: { reportedUsdMinor: number; owedUsdMinor: number; collectedUsdMinor: number; deltaUsdMinor: number }) => ({ reported: usd(t.reportedUsdMinor), owed: usd(t.owedUsdMinor), collected: usd(t.collectedUsdMinor), delta: usd(t.deltaUsdMinor) });
          console.log('Per network (USD)');
          console.log(renderRows(s.totals.byNetwork.map((t) => ({ network: t.network, ...money(t) })), 'table'));
          console.log('\nPer partner (USD)');
          console.log(renderRows(s.totals.byPartner.map((t) => ({ partner: t.partnerName ?? t.partnerId ?? '(unknown)', network: t.network, ...money(t) })), 'table'));
          console.log(`\nDiscrepancies: ${s.found} found, ${s.new} new, ${s.stillOpen} still open, ${s.resolved} resolved (run ${s.runId}, ${s.mode}${s.mode === 'scoped' ? '' : `, ${s.units} units evaluated`})`);
          console.log(renderRows(rows.map((r) => ({ id: r.id, new: r.new ? '*' : '', kind: r.kind, severity: r.severity, status: r.status, network: r.network, period: r.period, partner: r.partner, expected: r.expected_minor, reported: r.reported_minor, currency: r.currency, at_stake: usd(r.usd_at_stake_minor), reason: r.reason })), 'table'));
        }
        if (opts.failOn) {
          const bad = list.filter((d) => d.status === 'open' && severityRank(d.severity) >= severityRank(opts.failOn as Severity));
          if (bad.length) {
            console.error(`${bad.length} open discrepancies at or above ${opts.failOn}`);
            process.exitCode = 1;
          }
        }
      } finally {
        await app.close();
      }
    });
}
