// The main job: sync all configured connections → compute commissions (rules DB adapter, when this
// build has it) → reconcile → alert → push (only when push.autoPushKinds is configured). Every step
// runs even if an earlier one failed where that still makes sense (reconcile works on what is
// stored; alerts report the failures), and the job returns a structured summary for the scheduler,
// the API and the demo.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionType } from '../config/schema.ts';
import type { Connector } from '../sync/types.ts';
import { syncConnections as defaultSync } from '../sync/run-connections.ts';
import { loadOptionalModule, pickFunction } from '../service/optional-module.ts';
import { errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';
import { runReconciliation, type ReconcileSummary } from '../reconcile/run.ts';
import { runAlerts, type AlertSummary } from '../alerts/alerts.ts';
import { maintainEmbedded } from '../db/embedded-maintenance.ts';

export type ComputeFn = (db: Knex, config: Config, asOf: Date, opts?: { log?: Logger | undefined }) => Promise<unknown>;

export interface MainJobDeps {
  db: Knex;
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  /** Overrides (tests, demo). */
  syncConnections?: typeof defaultSync | undefined;
  compute?: ComputeFn | null | undefined;
  loadConnector?: ((type: ConnectionType) => Promise<Connector>) | undefined;
}

export interface MainJobOptions {
  now?: Date | undefined;
  signal?: AbortSignal | undefined;
  /** Skip the sync step (e.g. `run --no-sync` on an offline copy). */
  sync?: boolean | undefined;
  period?: string | undefined;
}

export interface MainJobSummary {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Milliseconds per step (steps not run are absent): where a run's time went, for ops and the benchmark. */
  stepMs: Partial<Record<'sync' | 'compute' | 'reconcile' | 'alerts' | 'push' | 'maintenance', number>>;
  sync: { status: 'done' | 'skipped' | 'failed'; connections: Array<{ connection: string; status: string; records: number; error?: string | undefined }> };
  compute: { status: 'done' | 'skipped' | 'failed'; reason?: string; result?: unknown };
  reconcile: { status: 'done' | 'failed'; runId?: number; found: number; new: number; stillOpen: number; resolved: number; byKind: Record<string, number>; totals?: ReconcileSummary['totals'] };
  alerts: AlertSummary & { status: 'done' | 'failed' };
  push: { status: 'done' | 'skipped' | 'failed'; reason?: string; planned: number; confirmed: number; sent: number; failed: number; skipped: number; usdMovedMinor: number; stoppedBy: string | null; message: string | null };
  errors: string[];
}

/** The rules engine's DB adapter, loaded when this build has one (it lands independently). */
export async function findComputeAndStore(): Promise<ComputeFn | undefined> {
  for (const p of ['src/rules/store', 'src/rules/db', 'src/rules/persist', 'src/rules/compute-store']) {
    const fn = pickFunction<ComputeFn>(await loadOptionalModule(p), ['computeAndStore']);
    if (fn) return fn;
  }
  return undefined;
}

export async function runMainJob(deps: MainJobDeps, opts: MainJobOptions = {}): Promise<MainJobSummary> {
  const { db, config, log } = deps;
  const started = opts.now ?? new Date();
  const t0 = Date.now();
  const signal = opts.signal ?? deps.signal;
  const errors: string[] = [];
  const fail = (step: string, err: unknown): string => {
    const m = `${step}: ${scrubSecrets(errorMessage(err))}`;
    errors.push(m);
    log.error({ step, error: m }, 'main job step failed');
    return m;
  };
  const s: MainJobSummary = {
    ok: false,
    startedAt: started.toISOString(),
    finishedAt: '',
    durationMs: 0,
    stepMs: {},
    sync: { status: 'skipped', connections: [] },
    compute: { status: 'skipped' },
    reconcile: { status: 'failed', found: 0, new: 0, stillOpen: 0, resolved: 0, byKind: {} },
    alerts: { status: 'failed', candidates: 0, sent: 0, failed: 0, deduped: 0, sinkErrors: [] },
    push: { status: 'skipped', planned: 0, confirmed: 0, sent: 0, failed: 0, skipped: 0, usdMovedMinor: 0, stoppedBy: null, message: null },
    errors,
  };

  let mark = Date.now();
  const lap = (step: keyof MainJobSummary['stepMs']): void => {
    const t = Date.now();
    s.stepMs[step] = (s.stepMs[step] ?? 0) + (t - mark);
    mark = t;
  };

  // 1. Sync
  if (opts.sync !== false && config.connections.some((c) => c.enabled)) {
    try {
      // The job's clock is the sync's too: look-back windows are relative to it (a `run` at a given
      // --now, the demo and the benchmark read their simulated present, not the wall clock's).
      const results = await (deps.syncConnections ?? defaultSync)({ db, config, log, env: deps.env, ...(signal ? { signal } : {}), ...(opts.now ? { now: opts.now } : {}) });
      s.sync.connections = results.map((r) => ({ connection: r.connection, status: r.status, records: Object.values(r.streams).reduce((n, x) => n + x.records, 0), ...(r.error ? { error: scrubSecrets(r.error) } : {}) }));
      const bad = results.filter((r) => r.status === 'failed');
      s.sync.status = bad.length ? 'failed' : 'done';
      for (const b of bad) errors.push(`sync ${b.connection}: ${scrubSecrets(b.error ?? 'failed')}`);
    } catch (err) {
      s.sync.status = 'failed';
      fail('sync', err);
    }
    lap('sync');
  }
  if (signal?.aborted) return finish();

  // 2. Compute (rules engine → computed_commissions)
  try {
    const compute = deps.compute === null ? undefined : (deps.compute ?? (await findComputeAndStore()));
    if (compute) {
      s.compute = { status: 'done', result: await compute(db, config, started, { log }) };
    } else s.compute = { status: 'skipped', reason: 'the rules engine DB adapter (computeAndStore) is not in this build; reconciling stored computed commissions' };
  } catch (err) {
    s.compute = { status: 'failed', reason: fail('compute', err) };
  }
  lap('compute');
  if (signal?.aborted) return finish();

  // 3. Reconcile
  try {
    const r = await runReconciliation({ db, config, log }, { now: started, period: opts.period });
    s.reconcile = { status: 'done', runId: r.runId, found: r.found, new: r.new, stillOpen: r.stillOpen, resolved: r.resolved, byKind: r.byKind, totals: r.totals };
  } catch (err) {
    fail('reconcile', err);
  }
  lap('reconcile');

  // 4. Alerts (never throws; failing sinks are reported in the summary)
  const alertDeps = { db, config, log, env: deps.env };
  const a = await runAlerts(alertDeps, { now: started });
  s.alerts = { status: a.sinkErrors.some((e) => e.sink === '*') ? 'failed' : 'done', ...a };
  for (const e of a.sinkErrors) errors.push(`alert sink ${e.sink}: ${e.error}`);
  lap('alerts');

  // 5. Push, only when automatic push is configured and reconciliation is current.
  if (config.push.autoPushKinds.length === 0) s.push.reason = 'push.autoPushKinds is empty: corrections are pushed by `commission-sync push --apply`';
  else if (s.reconcile.status !== 'done') s.push.reason = 'reconciliation failed: nothing is pushed on stale results';
  else if (signal?.aborted) s.push.reason = 'aborted';
  else {
    try {
      // Loaded only when pushing (most deployments push by hand, after review).
      const { executePush } = await import('../push/executor.ts');
      const p = await executePush({ db, config, log, env: deps.env, loadConnector: deps.loadConnector }, { apply: true, now: started });
      s.push = { status: 'done', planned: p.plan.actions.length, confirmed: p.counts.confirmed, sent: p.counts.sent, failed: p.counts.failed, skipped: p.counts.skipped, usdMovedMinor: p.usdMovedMinor, stoppedBy: p.stoppedBy, message: p.message };
      if (p.counts.failed > 0) {
        // Report push failures now rather than at the next run.
        const again = await runAlerts(alertDeps, { now: started });
        s.alerts.sent += again.sent;
        s.alerts.failed += again.failed;
      }
    } catch (err) {
      s.push = { ...s.push, status: 'failed', reason: fail('push', err) };
    }
    lap('push');
  }
  // 6. On the embedded database only (no autovacuum, no checkpointer): VACUUM the tables this and
  // earlier runs left dead rows in, and recycle WAL (src/db/embedded-maintenance.ts). Never fails the job.
  if (!signal?.aborted) {
    const m = await maintainEmbedded(db, { log });
    if (m.vacuumed.length > 0 || m.checkpoint) lap('maintenance');
  }
  return finish();

  function finish(): MainJobSummary {
    s.finishedAt = new Date().toISOString();
    s.durationMs = Date.now() - t0;
    s.ok = errors.length === 0 && s.reconcile.status === 'done';
    log.info({ ok: s.ok, stepMs: s.stepMs, reconcile: { found: s.reconcile.found, new: s.reconcile.new, resolved: s.reconcile.resolved }, alerts: { sent: s.alerts.sent, failed: s.alerts.failed }, push: s.push.status }, 'main job finished');
    return s;
  }
}

export default runMainJob;
