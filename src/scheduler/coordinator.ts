// Cross-replica coordination of scheduled fires through the `job_fires` table (see docs/scheduler.md).
//
// Every replica schedules the same cron tasks. When a task fires, each replica tries to insert the row
// (job_name, fire_at); the primary key lets exactly one insert succeed, and that replica runs the fire.
// While it runs it refreshes `heartbeat_at`; when it is done it marks the row succeeded or failed.
// A fire is recorded as `skipped` (and nobody runs it) while an earlier fire of the same job is still
// `running` with a heartbeat younger than the lease — overlap prevention across replicas. A `running`
// row whose heartbeat is older than the lease belongs to a dead replica: it is marked failed and does
// not block the next fire.
//
// Plugs into node-cron v4 as its RunCoordinator (`shouldRun(key)` / `onComplete(key)`); node-cron
// builds the key as `${taskName}:${slot.toISOString()}`, the slot being the cron time that matched,
// identical on every replica whose clock is within a second of the others.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { RunCoordinator } from 'node-cron';
import { scrubSecrets } from '../util/secrets.ts';

export const DEFAULT_LEASE_MS = 60_000;

export interface CoordinatorOptions {
  db: Knex;
  /** Identifies this replica in job_fires.owner (host:pid:random by default). */
  owner: string;
  /** A running fire whose heartbeat is older than this is considered abandoned. */
  leaseMs?: number;
  /** How often a running fire refreshes its heartbeat (default lease / 4). */
  heartbeatMs?: number;
  log: Logger;
}

export type ClaimResult =
  | { status: 'won' }
  | { status: 'lost' }
  | { status: 'skipped'; reason: string };

const KEY_RE = /^(.*):(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/;

export function fireKey(job: string, fireAt: Date): string {
  return `${job}:${fireAt.toISOString()}`;
}

export function parseFireKey(key: string): { job: string; fireAt: Date } {
  const m = KEY_RE.exec(key);
  if (!m) throw new Error(`unexpected scheduler key "${key}"`);
  return { job: m[1]!, fireAt: new Date(m[2]!) };
}

export class PgJobCoordinator implements RunCoordinator {
  readonly owner: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  private readonly db: Knex;
  private readonly log: Logger;
  private readonly heartbeats = new Map<string, NodeJS.Timeout>();
  /** Outcome of a fire, recorded by the task wrapper before node-cron calls onComplete. */
  private readonly outcomes = new Map<string, { error?: string }>();
  private readonly finishing = new Set<Promise<void>>();

  constructor(opts: CoordinatorOptions) {
    this.db = opts.db;
    this.owner = opts.owner;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.heartbeatMs = opts.heartbeatMs ?? Math.max(250, Math.floor(this.leaseMs / 4));
    this.log = opts.log;
  }

  // ---- node-cron RunCoordinator ----

  async shouldRun(key: string): Promise<boolean> {
    const { job, fireAt } = parseFireKey(key);
    const res = await this.claim(job, fireAt);
    if (res.status === 'skipped') this.log.warn({ job, fireAt, reason: res.reason }, 'scheduled fire skipped');
    else if (res.status === 'lost') this.log.debug({ job, fireAt }, 'scheduled fire taken by another replica');
    return res.status === 'won';
  }

  async onComplete(key: string): Promise<void> {
    const { job, fireAt } = parseFireKey(key);
    const outcome = this.outcomes.get(key);
    this.outcomes.delete(key);
    const p = this.finish(job, fireAt, outcome?.error);
    this.finishing.add(p);
    try {
      await p;
    } finally {
      this.finishing.delete(p);
    }
  }

  /** Waits for fires being marked finished (graceful shutdown, before the pool closes). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.finishing]);
  }

  /** Called by the task wrapper: remembers how the fire ended for onComplete. */
  recordOutcome(key: string, error?: string): void {
    this.outcomes.set(key, error === undefined ? {} : { error });
  }

  // ---- the protocol ----

  /**
   * Tries to take (job, fireAt). One statement: the insert decides the winner (primary key), and the
   * status it inserts is `skipped` when another fire of the job is still running with a fresh heartbeat.
   */
  async claim(job: string, fireAt: Date): Promise<ClaimResult> {
    const leaseSeconds = this.leaseMs / 1000;
    // Abandoned fires (heartbeat older than the lease) are closed so they no longer look running.
    await this.db.raw(
      `UPDATE job_fires SET status = 'failed', finished_at = now(),
              error = 'lease expired: owner ' || owner || ' stopped heartbeating (presumed dead)'
        WHERE job_name = ? AND status = 'running' AND heartbeat_at < now() - make_interval(secs => ?)`,
      [job, leaseSeconds],
    );
    const result = await this.db.raw(
      `WITH blocker AS (
         SELECT owner, fire_at FROM job_fires
          WHERE job_name = ? AND status = 'running' AND fire_at <> ?
            AND heartbeat_at >= now() - make_interval(secs => ?)
          ORDER BY fire_at DESC LIMIT 1
       )
       INSERT INTO job_fires (job_name, fire_at, owner, status, started_at, heartbeat_at, finished_at, error)
       SELECT ?, ?, ?,
              CASE WHEN b.owner IS NULL THEN 'running' ELSE 'skipped' END,
              now(), now(),
              CASE WHEN b.owner IS NULL THEN NULL ELSE now() END,
              CASE WHEN b.owner IS NULL THEN NULL
                   ELSE 'overlap: the fire of ' || to_char(b.fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' is still running on ' || b.owner END
         FROM (SELECT 1) AS one LEFT JOIN blocker b ON true
       ON CONFLICT (job_name, fire_at) DO NOTHING
       RETURNING status, error`,
      [job, fireAt, leaseSeconds, job, fireAt, this.owner],
    );
    const row = (result.rows as Array<{ status: string; error: string | null }>)[0];
    if (!row) return { status: 'lost' };
    if (row.status === 'skipped') return { status: 'skipped', reason: row.error ?? 'overlap' };
    this.startHeartbeat(job, fireAt);
    return { status: 'won' };
  }

  private startHeartbeat(job: string, fireAt: Date): void {
    const key = fireKey(job, fireAt);
    const timer = setInterval(() => {
      this.db
        .raw(`UPDATE job_fires SET heartbeat_at = now() WHERE job_name = ? AND fire_at = ? AND owner = ? AND status = 'running'`, [job, fireAt, this.owner])
        .then((r: { rowCount?: number; affectedRows?: number }) => {
          const n = r.rowCount ?? r.affectedRows;
          if (n === 0) this.log.warn({ job, fireAt }, 'heartbeat found the fire no longer running (lease expired?)');
        })
        .catch((err: unknown) => this.log.warn({ job, err: scrubSecrets(String(err)) }, 'heartbeat failed'));
    }, this.heartbeatMs);
    timer.unref();
    this.heartbeats.set(key, timer);
  }

  /** Marks a won fire finished (succeeded, or failed with the scrubbed error). */
  async finish(job: string, fireAt: Date, error?: string): Promise<void> {
    const key = fireKey(job, fireAt);
    const timer = this.heartbeats.get(key);
    if (timer) clearInterval(timer);
    this.heartbeats.delete(key);
    await this.db('job_fires')
      .where({ job_name: job, fire_at: fireAt, owner: this.owner })
      .update({
        status: error === undefined ? 'succeeded' : 'failed',
        finished_at: this.db.fn.now(),
        heartbeat_at: this.db.fn.now(),
        error: error === undefined ? null : scrubSecrets(error).slice(0, 2000),
      });
  }

  /** Stops heartbeating without finishing (tests use it to simulate a crashed replica). */
  abandonAll(): void {
    for (const t of this.heartbeats.values()) clearInterval(t);
    this.heartbeats.clear();
  }

  runningCount(): number {
    return this.heartbeats.size;
  }
}
