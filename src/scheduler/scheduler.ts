// The in-process scheduler: node-cron tasks (time zone from config, in-process overlap prevention)
// whose fires are coordinated across replicas by PgJobCoordinator. Manual triggers (the API's
// "run now") go through the same job_fires protocol, so they never overlap a scheduled fire either.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { PgJobCoordinator, fireKey } from './coordinator.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';

export interface JobRunContext {
  fireAt: Date;
  trigger: 'scheduled' | 'manual';
  signal: AbortSignal;
  log: Logger;
  /** Free-form input of a manual trigger (e.g. which connection). */
  input?: Record<string, unknown> | undefined;
}

export interface JobDef {
  /** Unique job name; job_fires.job_name. */
  name: string;
  /** Cron expression (5 or 6 fields); jobs without one only run when triggered. */
  cron?: string | undefined;
  /** Where the cron expression came from, for error messages (e.g. `connections.2.schedule`). */
  source?: string;
  description: string;
  run(ctx: JobRunContext): Promise<unknown>;
}

export interface JobObserver {
  onFinished?(job: string, outcome: 'succeeded' | 'failed', durationMs: number, result: unknown): void;
}

export interface SchedulerOptions {
  db: Knex;
  log: Logger;
  jobs: JobDef[];
  timezone?: string;
  owner?: string;
  leaseMs?: number;
  heartbeatMs?: number;
  observer?: JobObserver;
}

export type TriggerResult =
  | { status: 'started'; job: string; fireAt: Date; done: Promise<void> }
  | { status: 'skipped'; job: string; fireAt: Date; reason: string }
  | { status: 'lost'; job: string; fireAt: Date };

export function defaultOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export class Scheduler {
  readonly coordinator: PgJobCoordinator;
  readonly owner: string;
  private readonly opts: SchedulerOptions;
  private readonly jobs = new Map<string, JobDef>();
  private readonly tasks: ScheduledTask[] = [];
  private readonly inflight = new Map<string, { controller: AbortController; promise: Promise<void> }>();
  private stopping = false;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.owner = opts.owner ?? defaultOwner();
    this.coordinator = new PgJobCoordinator({ db: opts.db, owner: this.owner, log: opts.log, ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}), ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}) });
    for (const job of opts.jobs) {
      if (this.jobs.has(job.name)) throw new ConfigError(`duplicate scheduled job "${job.name}"`);
      if (job.cron !== undefined && !cron.validate(job.cron)) {
        throw new ConfigError(`${job.source ?? job.name}: "${job.cron}" is not a valid cron expression`);
      }
      this.jobs.set(job.name, job);
    }
  }

  listJobs(): Array<{ name: string; cron: string | null; description: string; nextRun: Date | null; running: boolean }> {
    return [...this.jobs.values()].map((j) => {
      const task = this.tasks.find((t) => t.name === j.name);
      return {
        name: j.name,
        cron: j.cron ?? null,
        description: j.description,
        nextRun: task?.getNextRun() ?? null,
        running: [...this.inflight.keys()].some((k) => k.startsWith(`${j.name}:`)),
      };
    });
  }

  hasJob(name: string): boolean {
    return this.jobs.has(name);
  }

  start(): void {
    for (const job of this.jobs.values()) {
      if (!job.cron) continue;
      const task = cron.createTask(
        job.cron,
        async (ctx) => {
          await this.execute(job, ctx.date, 'scheduled', undefined);
        },
        {
          name: job.name,
          timezone: this.opts.timezone ?? 'UTC',
          noOverlap: true,
          distributed: true,
          runCoordinator: this.coordinator,
          distributedLease: this.coordinator.leaseMs,
          suppressMissedWarning: true,
        },
      );
      void task.start();
      this.tasks.push(task);
      this.opts.log.info({ job: job.name, cron: job.cron, timezone: this.opts.timezone ?? 'UTC' }, 'scheduled');
    }
  }

  /** Runs a job now (API trigger). The fire is claimed like a scheduled one. */
  async trigger(name: string, input?: Record<string, unknown>): Promise<TriggerResult> {
    const job = this.jobs.get(name);
    if (!job) throw new Error(`unknown job "${name}"`);
    const fireAt = new Date();
    const claim = await this.coordinator.claim(name, fireAt);
    if (claim.status === 'skipped') return { status: 'skipped', job: name, fireAt, reason: claim.reason };
    if (claim.status === 'lost') return { status: 'lost', job: name, fireAt };
    const done = this.execute(job, fireAt, 'manual', input).then(async () => {
      const key = fireKey(name, fireAt);
      const outcome = this.lastOutcome.get(key);
      this.lastOutcome.delete(key);
      await this.coordinator.finish(name, fireAt, outcome);
    });
    return { status: 'started', job: name, fireAt, done: done.catch((err: unknown) => this.opts.log.error({ job: name, err: scrubSecrets(errorMessage(err)) }, 'could not record the end of a triggered job')) };
  }

  private readonly lastOutcome = new Map<string, string | undefined>();

  /** Runs the job body; never throws (the outcome goes to the coordinator and the observer). */
  private async execute(job: JobDef, fireAt: Date, trigger: 'scheduled' | 'manual', input: Record<string, unknown> | undefined): Promise<void> {
    const key = fireKey(job.name, fireAt);
    const controller = new AbortController();
    const log = this.opts.log.child({ job: job.name, fireAt: fireAt.toISOString(), trigger });
    const started = Date.now();
    const run = (async () => {
      let error: string | undefined;
      let result: unknown;
      try {
        log.info('job started');
        result = await job.run({ fireAt, trigger, signal: controller.signal, log, input });
        log.info({ durationMs: Date.now() - started }, 'job finished');
      } catch (err) {
        error = scrubSecrets(errorMessage(err));
        log.error({ err: error, durationMs: Date.now() - started }, 'job failed');
      }
      if (trigger === 'scheduled') this.coordinator.recordOutcome(key, error);
      else this.lastOutcome.set(key, error);
      try {
        this.opts.observer?.onFinished?.(job.name, error === undefined ? 'succeeded' : 'failed', Date.now() - started, result);
      } catch {
        /* metrics must never break a job */
      }
    })();
    this.inflight.set(key, { controller, promise: run });
    try {
      await run;
    } finally {
      this.inflight.delete(key);
    }
  }

  isStopping(): boolean {
    return this.stopping;
  }

  /**
   * Graceful stop: no new fires; running jobs get `graceMs` to finish, then their AbortSignal fires
   * (syncs stop at a page boundary and resume from the checkpoint next time).
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    for (const t of this.tasks) await t.stop();
    const pending = [...this.inflight.values()];
    if (pending.length === 0) {
      await this.coordinator.drain();
      for (const t of this.tasks) await t.destroy();
      return;
    }
    this.opts.log.info({ running: pending.length, graceMs }, 'waiting for running jobs to finish');
    const all = Promise.allSettled(pending.map((p) => p.promise));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      this.opts.log.warn('grace period over: aborting running jobs');
      for (const p of pending) p.controller.abort(new Error('service shutting down'));
      await Promise.race([all, new Promise((r) => setTimeout(r, 5_000))]);
    }
    // Let node-cron's onComplete (which marks the fire finished) run before the pool closes.
    await new Promise((r) => setTimeout(r, 20));
    await this.coordinator.drain();
    for (const t of this.tasks) await t.destroy();
  }
}
