// commission-sync push: prints the correction plan (dry run); --apply sends it through the connectors.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { UserError } from '../../util/errors.ts';

const posInt = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UserError(`${name}: expected a positive integer (got "${v}")`);
  return n;
};

export function register(program: Command): void {
  program
    .command('push')
    .description('plan corrections for approved (or auto-push) discrepancies; dry run unless --apply')
    .option('--apply', 'send the actions to the networks')
    .option('--network <network>', 'only this network')
    .option('--id <ids...>', 'only these discrepancy ids')
    .option('--max-actions <n>', 'per-run cap on actions (default push.maxActionsPerRun)')
    .option('--max-usd-minor <n>', 'per-run cap on USD moved, in cents (default push.maxUsdMinorPerRun)')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { apply?: boolean; network?: string; id?: string[]; maxActions?: string; maxUsdMinor?: string; format?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      if (opts.network !== undefined && !['partnerstack', 'shareasale', 'awin'].includes(opts.network)) throw new UserError(`--network: expected one of partnerstack, shareasale, awin (got "${opts.network}")`);
      const ids = opts.id?.map((s) => posInt('--id', s)!);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
      try {
        const { executePush } = await import('../../push/executor.ts');
        const s = await executePush({ db: app.db, config: app.config, log: app.log, env: app.env }, { apply: opts.apply === true, network: opts.network, ids, maxActions: posInt('--max-actions', opts.maxActions), maxUsdMinor: posInt('--max-usd-minor', opts.maxUsdMinor) });
        if (format === 'json') {
          console.log(JSON.stringify(s, null, 2));
        } else {
          const plan = s.plan.actions.map((a) => ({ discrepancy: a.discrepancyId, kind: a.discrepancyKind, connection: a.connection, action: a.type, usd: format === 'csv' ? a.usdMinor : usd(a.usdMinor), payload: a.payload, subscription: a.justification.subscription_state, key: a.idempotencyKey }));
          console.log(`${s.mode === 'dry_run' ? 'Plan (dry run — nothing sent; use --apply)' : 'Plan'}: ${plan.length} action(s)${s.plan.alreadyDone ? `, ${s.plan.alreadyDone} already done` : ''}`);
          console.log(renderRows(plan, format));
          if (s.plan.skipped.length && format === 'table') {
            console.log('\nNot pushable (handled by hand)');
            console.log(renderRows(s.plan.skipped.map((k) => ({ discrepancy: k.discrepancyId, kind: k.kind, network: k.network, why: k.reason })), 'table'));
          }
          if (s.mode === 'apply') {
            console.log(`\nSent: ${s.counts.confirmed} confirmed, ${s.counts.sent} sent, ${s.counts.failed} failed, ${s.counts.skipped} skipped, ${s.counts.recovered} recovered; USD moved ${usd(s.usdMovedMinor)}; ${s.counts.left} left planned`);
            const bad = s.outcomes.filter((o) => o.status === 'failed' || o.status === 'skipped');
            if (bad.length) console.log(renderRows(bad.map((o) => ({ correction: o.correctionId, discrepancy: o.discrepancyId, action: o.type, status: o.status, error: o.error ?? '' })), 'table'));
          }
        }
        if (s.message) {
          console.error(s.message);
          process.exitCode = 3;
        } else if (s.counts.failed > 0) process.exitCode = 1;
      } finally {
        await app.close();
      }
    });
}
