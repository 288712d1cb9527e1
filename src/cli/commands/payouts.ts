// commission-sync payouts --date <yyyy-mm-dd>: builds (idempotently) and prints the R9 payout
// statements of that payout date per partner and network.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { assertPayoutDate, buildPayouts, listPayouts, markPayoutsPaid } from '../../rules/store.ts';
import { UserError } from '../../util/errors.ts';

export const PAYOUT_COLUMNS = [
  'partner_id', 'partner_key', 'network', 'payout_date', 'carried_in_usd_minor', 'new_usd_minor', 'balance_usd_minor', 'payable_usd_minor', 'carried_out_usd_minor',
  'minimum_usd_minor', 'status', 'reasons', 'projected', 'items',
] as const;

export function register(program: Command): void {
  program
    .command('payouts')
    .description('payout statements for a payout date: carried in, new, balance, payable, carried out, minimum, status and reasons')
    .option('--date <yyyy-mm-dd>', 'the payout date (e.g. 2025-03-15)')
    .option('--partner <id>', 'only this partner (id, partner_key or network external id)')
    .option('--no-store', 'print the stored statements without rebuilding them')
    .option('--mark-paid', 'record the payable statements of this date (optionally --partner / --network) as paid out')
    .option('--network <network>', 'with --mark-paid: only this network (partnerstack, shareasale, awin)')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { date?: string; partner?: string; store: boolean; format?: string; markPaid?: boolean; network?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      if (opts.date === undefined) throw new UserError('--date: required (yyyy-mm-dd)');
      assertPayoutDate(opts.date, '--date');
      if (opts.network !== undefined && !['partnerstack', 'shareasale', 'awin'].includes(opts.network)) throw new UserError(`--network: expected partnerstack, shareasale or awin (got "${opts.network}")`);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        if (opts.markPaid) {
          const done = await markPayoutsPaid(app.db, opts.date, { partner: opts.partner, network: opts.network });
          console.log(`Marked ${done.statements} statement(s) of ${opts.date} paid: ${done.commissions} commission line(s), ${usd(done.usdMinor)}.`);
          return;
        }
        const summary = opts.store ? await buildPayouts(app.db, app.config, opts.date) : null;
        const rows = await listPayouts(app.db, opts.date, { partner: opts.partner });
        if (format === 'json') console.log(JSON.stringify({ payout_date: opts.date, summary, statements: rows }, null, 2));
        else if (format === 'csv') console.log(renderRows(rows.map((r) => ({ ...r, reasons: r.reasons.join('|') })), 'csv', [...PAYOUT_COLUMNS]));
        else {
          console.log(`Payout statements for ${opts.date}`);
          console.log(
            renderRows(
              rows.map((r) => ({
                partner: `${r.partner_key} (#${r.partner_id})`,
                network: r.network,
                carried_in: usd(r.carried_in_usd_minor),
                new: usd(r.new_usd_minor),
                balance: usd(r.balance_usd_minor),
                payable: usd(r.payable_usd_minor),
                carried_out: usd(r.carried_out_usd_minor),
                minimum: usd(r.minimum_usd_minor),
                status: r.status + (r.projected ? ' (projected)' : ''),
                reasons: r.reasons.join(', '),
              })),
              'table',
            ),
          );
          if (summary) console.log(`${summary.statements} statements, payable ${usd(summary.payableUsdMinor)}, carried forward ${usd(summary.carriedOutUsdMinor)}`);
        }
      } finally {
        await app.close();
      }
    });
}
