// commission-sync explain --partner <id> | --payment <id>: why each stored commission is what it is
// (tier at that moment and the counted sales behind it, rate, base in payment currency and USD,
// refunds, clearing and payout dates, rule version, exclusion reason).
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { explainCommission } from '../../rules/explain.ts';
import { explainCommissions } from '../../rules/store.ts';
import { UserError } from '../../util/errors.ts';

export function register(program: Command): void {
  program
    .command('explain')
    .description('explain computed commissions of a partner and/or a payment, to the cent')
    .option('--partner <id>', 'partner id, partner_key or network external id')
    .option('--payment <id>', 'billing event id, external id or document id')
    .action(async (opts: { partner?: string; payment?: string }, cmd: Command) => {
      if (opts.partner === undefined && opts.payment === undefined) throw new UserError('explain: give --partner <id> and/or --payment <id>');
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const lines = await explainCommissions(app.db, { partner: opts.partner, payment: opts.payment }, explainCommission);
        console.log(lines.join('\n').trimEnd());
      } finally {
        await app.close();
      }
    });
}
