// The jobs the service schedules, built from configuration:
//   sync:<connection>  per connection with a `schedule`
//   main-job           schedules.mainJob — sync → compute → reconcile → alert → push (src/jobs/main-job.ts)
//   alert-digest       schedules.alertDigest (the alerts module's digest)
//   push               no schedule (the main job pushes when auto-push is configured); an operator
//                      triggers it from the API to send approved corrections
// Every job can also be triggered from the API. Modules that land independently (main job, alert
// digest) are loaded when present; a missing one is reported, never silently faked.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { syncConnections } from '../sync/run-connections.ts';
import { maintainEmbedded } from '../db/embedded-maintenance.ts';
import type { SyncRunResult } from '../sync/engine.ts';
import { executePush } from '../push/executor.ts';
import { loadOptionalModule, pickFunction } from '../service/optional-module.ts';
import type { JobDef, JobRunContext } from './scheduler.ts';

export interface JobDeps {
  db: Knex;
  config: Config;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Called with each sync result (metrics). */
  onSyncResult?: (r: SyncRunResult) => void;
}

export const MAIN_JOB = 'main-job';
export const ALERT_DIGEST_JOB = 'alert-digest';
export const PUSH_JOB = 'push';
export const syncJobName = (connection: string): string => `sync:${connection}`;

type MainJobFn = (deps: Record<string, unknown>, opts?: Record<string, unknown>) => Promise<unknown>;

async function runSync(deps: JobDeps, ctx: JobRunContext, connection?: string): Promise<SyncRunResult[]> {
  const results = await syncConnections({ db: deps.db, config: deps.config, log: ctx.log, env: deps.env, signal: ctx.signal }, connection ? { connection } : {});
  for (const r of results) deps.onSyncResult?.(r);
  // A sync re-stamps the keys it re-reads; the embedded database has no autovacuum or checkpointer.
  if (!ctx.signal?.aborted) await maintainEmbedded(deps.db, { log: ctx.log });
  const failed = results.filter((r) => r.status === 'failed');
  if (failed.length) throw new Error(failed.map((r) => `${r.connection}: ${r.error ?? 'failed'}`).join('; '));
  return results;
}

export async function buildJobs(deps: JobDeps): Promise<JobDef[]> {
  const jobs: JobDef[] = [];
  deps.config.connections.forEach((c, i) => {
    if (!c.enabled) return;
    jobs.push({
      name: syncJobName(c.name),
      cron: c.schedule,
      source: `connections.${i}.schedule`,
      description: `sync connection ${c.name} (${c.type})`,
      run: (ctx) => runSync(deps, ctx, c.name),
    });
  });

  const mainMod = await loadOptionalModule('src/jobs/main-job');
  const runMainJob = pickFunction<MainJobFn>(mainMod, ['runMainJob', 'mainJob', 'default']);
  jobs.push({
    name: MAIN_JOB,
    cron: deps.config.schedules.mainJob,
    source: 'schedules.mainJob',
    description: runMainJob ? 'main job: sync → compute → reconcile → alert → push' : 'main job (module not in this build: syncs all connections only)',
    run: async (ctx) => {
      if (runMainJob) {
        // The main job's sync step goes through this wrapper so its results reach the metrics too.
        const observedSync: typeof syncConnections = async (d, sel) => {
          const results = await syncConnections(d, sel);
          for (const r of results) deps.onSyncResult?.(r);
          return results;
        };
        const summary = await runMainJob({ db: deps.db, config: deps.config, log: ctx.log, env: deps.env, signal: ctx.signal, syncConnections: observedSync }, { signal: ctx.signal });
        const s = summary as { ok?: unknown; errors?: unknown } | null;
        if (s && s.ok === false) throw new Error(Array.isArray(s.errors) && s.errors.length ? s.errors.join('; ') : 'main job reported failure');
        return summary;
      }
      ctx.log.warn('src/jobs/main-job.ts is not in this build: running the sync step only');
      return runSync(deps, ctx);
    },
  });

  jobs.push({
    name: PUSH_JOB,
    description: 'push approved corrections to the networks (per-run caps apply)',
    run: async (ctx) => {
      const summary = await executePush({ db: deps.db, config: deps.config, log: ctx.log, env: deps.env }, { apply: true });
      if (summary.counts.failed > 0 || summary.stoppedBy) {
        throw new Error(`push: ${summary.counts.failed} failed, ${summary.counts.confirmed + summary.counts.sent} sent${summary.message ? ` — ${summary.message}` : ''}`);
      }
      return { counts: summary.counts, usdMovedMinor: summary.usdMovedMinor };
    },
  });

  const alertsMod = (await loadOptionalModule('src/alerts/digest')) ?? (await loadOptionalModule('src/alerts/index'));
  const digest = pickFunction<MainJobFn>(alertsMod, ['sendAlertDigest', 'sendDigest', 'runAlertDigest', 'runDigest']);
  if (digest) {
    jobs.push({
      name: ALERT_DIGEST_JOB,
      cron: deps.config.schedules.alertDigest,
      source: 'schedules.alertDigest',
      description: 'daily alert digest',
      run: (ctx) => digest({ db: deps.db, config: deps.config, log: ctx.log, env: deps.env, signal: ctx.signal }),
    });
  } else if (deps.config.schedules.alertDigest) {
    deps.log.warn('schedules.alertDigest is set but the alerts digest module is not in this build; not scheduled');
  }
  return jobs;
}
