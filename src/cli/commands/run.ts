// commission-sync run: the main job once (sync → compute → reconcile → alert → push).
import { Option, type Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { runMainJob } from '../../jobs/main-job.ts';
import { preflightConnections } from '../../sync/run-connections.ts';
import { withForcedSweep } from '../../sync/lookback.ts';
import { UserError } from '../../util/errors.ts';
import { parseInstant } from './compute.ts';

export function register(program: Command): void {
  program
    .command('run')
    .description('run the main job once: sync → compute → reconcile → alert → push (push only when auto-push is configured)')
    .option('--no-sync', 'skip the sync step (work on what is stored)')
    .option('--sweep', 're-read every window stream\'s whole look-back window in this sync (default: every sync.lookback.everyHours)')
    .option('--period <yyyy-mm>', 'reconcile only this month')
    .option('--format <format>', 'table | json', 'table')
    // Hidden: the job's clock (look-back windows, compute as-of), for a generated world's simulated
    // present (bench/cold-run.ts runs the real CLI against the fakes).
    .addOption(new Option('--now <instant>', "the job's clock (ISO with zone, or yyyy-mm-dd); default now").hideHelp())
    .action(async (opts: { sync: boolean; sweep?: boolean; period?: string; format?: string; now?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      const now = opts.now !== undefined ? parseInstant(opts.now, '--now') : undefined;
      // A present later than the real clock would clear held commissions (R7: the 45-day reserve) before their time.
      if (now !== undefined && now.getTime() > Date.now()) throw new UserError(`--now: must not be later than the current time (got "${opts.now}")`);
      if (opts.period !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) throw new UserError(`--period: expected yyyy-mm (got "${opts.period}")`);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      if (opts.sync) {
        // Invalid connection options and missing credentials are a start-up error (exit 2 naming the
        // field), not a failed step.
        try {
          await preflightConnections(app.config.connections.filter((x) => x.enabled), app.env);
        } catch (err) {
          await app.close();
          throw err;
        }
      }
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      try {
        const config = opts.sweep ? withForcedSweep(app.config) : app.config;
        const s = await runMainJob({ db: app.db, config, log: app.log, env: app.env, signal: ac.signal }, { sync: opts.sync, period: opts.period, now });
        if (format === 'json') console.log(JSON.stringify(s, null, 2));
        else {
          console.log(renderRows(s.sync.connections.map((c) => ({ connection: c.connection, sync: c.status, records: c.records, error: c.error ?? '' })), 'table'));
          console.log(`compute:   ${s.compute.status}${s.compute.reason ? ` — ${s.compute.reason}` : ''}`);
          console.log(`reconcile: ${s.reconcile.status}; ${s.reconcile.found} found, ${s.reconcile.new} new, ${s.reconcile.resolved} resolved`);
          console.log(`alerts:    ${s.alerts.sent} sent, ${s.alerts.failed} failed, ${s.alerts.deduped} already sent`);
          console.log(`push:      ${s.push.status}${s.push.reason ? ` — ${s.push.reason}` : `; ${s.push.confirmed + s.push.sent} sent, ${s.push.failed} failed, ${usd(s.push.usdMovedMinor)} moved`}${s.push.message ? ` — ${s.push.message}` : ''}`);
          console.log(`took:      ${(s.durationMs / 1000).toFixed(1)} s (${Object.entries(s.stepMs).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')})`);
          for (const e of s.errors) console.error(`error: ${e}`);
        }
        if (!s.ok) process.exitCode = 1;
      } finally {
        process.off('SIGINT', stop);
        await app.close();
      }
    });
}
