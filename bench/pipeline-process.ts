// One benchmark step in a fresh process (forked by bench/run.ts), so its peak RSS is its own:
//   full         migrate, then sync (from scratch) → compute → reconcile against the fakes, timed per stage;
//   incremental  runMainJob on the same database after the fakes gained new events;
//   service      the same in a process that has already run one job (what `serve`'s scheduled
//                runs are): a job with nothing new, a { type: 'warmed' } reply, then on { type: 'go' }
//                (sent once the fakes hold new events) the timed job;
//   copy         the physical-limit baseline: raw COPY of the canonical rows into empty tables.
// Receives one { type: 'run', … } message, replies with the result and exits.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import { demoConfigFor, type FakeEndpoints } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { syncConnections } from '../src/sync/run-connections.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { runReconciliation } from '../src/reconcile/run.ts';
import { runMainJob } from '../src/jobs/main-job.ts';
import { withForcedSweep } from '../src/sync/lookback.ts';
import { createLogger } from '../src/log/logger.ts';

export interface PipelineRequest {
  type: 'run';
  mode: 'full' | 'incremental' | 'service' | 'copy';
  kind: 'pglite' | 'postgres';
  /** PostgreSQL: URL with the bench schema as search_path; PGlite: the data directory. */
  url?: string;
  dataDir?: string;
  /** PostgreSQL without the search_path option (psql) and the schema name. */
  adminUrl?: string;
  schema?: string;
  endpoints: FakeEndpoints;
  firstIssuedAt: string;
  now: string;
  payments: number;
  /** incremental: force a look-back sweep (every window stream re-reads its whole window). */
  sweep?: boolean;
}

const log = createLogger({ level: 'silent', format: 'json' });
const secs = (ms: number): number => Math.round(ms) / 1000;
const maxRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const mb = (b: number): number => Math.round(b / 1048576);

/**
 * Samples process.memoryUsage() every 50 ms and keeps, per stage, the largest RSS, V8 heap (used and
 * reserved), external memory and ArrayBuffers (Buffers: HTTP bodies, pg's socket buffers): what the
 * peak RSS is made of. `mark(stage)` closes the current stage.
 */
function memorySampler(): { mark(stage: string): void; stop(): Record<string, Record<string, number>> } {
  const out: Record<string, Record<string, number>> = {};
  let cur: Record<string, number> = {};
  const sample = (): void => {
    const m = process.memoryUsage();
    const v = { rss: mb(m.rss), heap_used: mb(m.heapUsed), heap_total: mb(m.heapTotal), external: mb(m.external), array_buffers: mb(m.arrayBuffers) };
    for (const [k, x] of Object.entries(v)) cur[k] = Math.max(cur[k] ?? 0, x);
  };
  const timer = setInterval(sample, 50);
  timer.unref();
  return {
    mark(stage) {
      if (process.env.BENCH_RSS_TRACE) process.stderr.write(`RSSTRACE end of ${stage}: peak ${maxRssMb()} MB\n`);
      sample();
      out[stage] = cur;
      cur = {};
    },
    stop() {
      clearInterval(timer);
      return out;
    },
  };
}
const cpuS = (): number => {
  const c = process.cpuUsage();
  return secs((c.user + c.system) / 1000);
};

async function open(r: PipelineRequest): Promise<Knex> {
  return r.kind === 'pglite' ? openDb({ dataDir: r.dataDir! }) : openDb({ url: r.url!, poolMax: 10 });
}

async function count(db: Knex, sql: string): Promise<number> {
  return Number(((await db.raw(sql)).rows[0] as { n: string }).n);
}

/**
 * BENCH_RSS_TRACE=1: a line on stderr whenever the process's peak RSS rose by more than 2 MB during
 * a statement or the JS work before it, with the memory's make-up then, the statement's time and its
 * start, and the first time a statement's string parameters pass 2 MB. The 50 ms sampler cannot see
 * inside a PGlite statement (it runs on this thread), this can: it is how the 100k PGlite peak was
 * traced to the computed_commissions upserts (eleventh round).
 */
function traceRssByStatement(db: Knex): void {
  let last = maxRssMb();
  let lastEnd = performance.now();
  let biggest = 2e6;
  const starts = new Map<string, number>();
  db.on('query', (q: { __knexQueryUid: string }) => starts.set(q.__knexQueryUid, performance.now()));
  db.on('query-response', (_res: unknown, q: { __knexQueryUid: string; sql: string; bindings?: unknown[] }) => {
    const now = performance.now();
    const start = starts.get(q.__knexQueryUid) ?? now;
    starts.delete(q.__knexQueryUid);
    const sql = q.sql.replace(/\s+/g, ' ').slice(0, 120);
    const chars = (q.bindings ?? []).reduce<number>((n, b) => n + (typeof b === 'string' ? b.length : 0), 0);
    if (chars > biggest) {
      biggest = chars;
      process.stderr.write(`RSSTRACE parameters ${(chars / 1e6).toFixed(1)} MB: ${sql}\n`);
    }
    const peak = maxRssMb();
    if (peak > last + 2) {
      const m = process.memoryUsage();
      process.stderr.write(`RSSTRACE ${JSON.stringify({ peak, prev: last, rss: mb(m.rss), heap_used: mb(m.heapUsed), external: mb(m.external), array_buffers: mb(m.arrayBuffers), statement_ms: Math.round(now - start), js_before_ms: Math.round(start - lastEnd), sql })}\n`);
      last = peak;
    }
    lastEnd = now;
  });
}

async function full(r: PipelineRequest): Promise<Record<string, unknown>> {
  const mem = memorySampler();
  const db = await open(r);
  if (process.env.BENCH_RSS_TRACE) traceRssByStatement(db);
  try {
    await migrateUp(db);
    mem.mark('migrate');
    const now = new Date(r.now);
    const { config, env } = demoConfigFor(r.endpoints, new Date(r.firstIssuedAt), { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
    const rssBefore = maxRssMb();
    const t0 = Date.now();
    let t = Date.now();
    const results = await syncConnections({ db, config, log, env, now });
    const syncMs = Date.now() - t;
    const rssAfterSync = maxRssMb();
    mem.mark('sync');
    const records = results.reduce((a, x) => a + Object.values(x.streams).reduce((b, s) => b + s.records, 0), 0);
    const failed = results.filter((x) => x.status !== 'succeeded').map((x) => `${x.connection}: ${x.error}`);
    t = Date.now();
    await computeAndStore(db, config, now);
    const computeMs = Date.now() - t;
    const rssAfterCompute = maxRssMb();
    mem.mark('compute');
    t = Date.now();
    await runReconciliation({ db, config, log }, { now });
    const reconcileMs = Date.now() - t;
    mem.mark('reconcile');
    const e2eMs = Date.now() - t0;
    const canonical = await count(db, `SELECT (SELECT count(*) FROM billing_events) + (SELECT count(*) FROM network_commissions) AS n`);
    const computed = await count(db, `SELECT count(*) AS n FROM computed_commissions`);
    return {
      sync_errors: failed,
      stages: {
        sync: { seconds: secs(syncMs), api_records: records, canonical_rows: canonical, rows_per_s: Math.round(canonical / (syncMs / 1000)) },
        compute: { seconds: secs(computeMs), commissions: computed, payments_per_s: Math.round(r.payments / (computeMs / 1000)) },
        reconcile: { seconds: secs(reconcileMs), payments_per_s: Math.round(r.payments / (reconcileMs / 1000)) },
      },
      end_to_end: { seconds: secs(e2eMs), payments_per_s: Math.round(r.payments / (e2eMs / 1000)) },
      canonical_rows: canonical,
      sync_ms: syncMs,
      max_rss_mb: { after_migrate: rssBefore, after_sync: rssAfterSync, after_compute: rssAfterCompute, after_reconcile: maxRssMb() },
      memory_mb: mem.stop(),
      cpu_s: cpuS(),
    };
  } finally {
    await db.destroy();
  }
}

/** Tables whose physical state an incremental run is sensitive to (see tableState). */
const WATCHED = ['stream_keys', 'raw_records', 'network_commissions', 'network_transactions', 'billing_events', 'computed_commissions', 'discrepancies'];

/**
 * PostgreSQL only: per watched table, whether (auto)vacuum and analyze have visited it, its dead
 * rows, the share of pages the visibility map marks all-visible, and its update counters. Read
 * before and after an incremental run, so a result says whether the run met freshly imported,
 * never-vacuumed tables (the sixth round's 1M incremental question) and how many of its updates
 * were HOT. Read on a fresh connection after the run's pool is closed: a backend reports its
 * counters when it exits.
 */
async function tableState(r: PipelineRequest): Promise<Record<string, Record<string, unknown>> | undefined> {
  if (r.kind !== 'postgres') return undefined;
  const db = await openDb({ url: r.url!, poolMax: 1 });
  try {
    const res = await db.raw(
      `SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.n_tup_upd, s.n_tup_hot_upd,
              (s.last_vacuum IS NOT NULL OR s.last_autovacuum IS NOT NULL) AS vacuumed,
              (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL) AS analyzed,
              c.relpages, c.relallvisible
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
        WHERE s.schemaname = current_schema() AND s.relname = ANY(?::text[])`,
      [WATCHED],
    );
    const out: Record<string, Record<string, unknown>> = {};
    for (const row of res.rows as Array<Record<string, unknown>>) {
      const { relname, ...rest } = row;
      out[relname as string] = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v]));
    }
    return out;
  } finally {
    await db.destroy();
  }
}

/** The scheduled job's configuration against the fakes (r.sweep: a forced look-back sweep); incremental-profile uses it too. */
export function jobConfig(r: Pick<PipelineRequest, 'endpoints' | 'firstIssuedAt' | 'sweep'>): ReturnType<typeof demoConfigFor> {
  const { config, env } = demoConfigFor(r.endpoints, new Date(r.firstIssuedAt), { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
  // The incremental run uses PartnerStack's normal 60-day look-back (the first run read all history).
  for (const c of config.connections) if (c.type === 'partnerstack') c.options = { ...c.options, lookbackDays: 60 };
  // sweep: every window stream re-reads its whole look-back window (what `run --sweep` does, and
  // what a scheduled run does once per sync.lookback.everyHours); otherwise tails + change feeds.
  return { config: r.sweep ? withForcedSweep(config) : config, env };
}

/** One runMainJob, timed: wall seconds per step, records read, this process's CPU during it (run_cpu_s) and since its start (cpu_s). */
async function timedJob(db: Knex, r: PipelineRequest): Promise<Record<string, unknown>> {
  const { config, env } = jobConfig(r);
  let syncMs = 0;
  let records = 0;
  const timedSync: typeof syncConnections = async (d, sel) => {
    const ts = Date.now();
    const res = await syncConnections(d, sel);
    syncMs = Date.now() - ts;
    records = res.reduce((n, x) => n + Object.values(x.streams).reduce((m, st) => m + st.records, 0), 0);
    return res;
  };
  const cpu0 = cpuS();
  const t = Date.now();
  const s = await runMainJob({ db, config, log, env, syncConnections: timedSync }, { now: new Date(r.now) });
  const ms = Date.now() - t;
  return { seconds: secs(ms), sync_s: secs(syncMs), after_sync_s: secs(ms - syncMs), step_s: Object.fromEntries(Object.entries(s.stepMs).map(([k, v]) => [k, secs(v)])), records_read: records, ok: s.ok, errors: s.errors, max_rss_mb: maxRssMb(), cpu_s: cpuS(), run_cpu_s: Math.round((cpuS() - cpu0) * 1000) / 1000 };
}

/**
 * The service's case: `serve` runs the scheduled job in one long-lived process, so from its second
 * run on the code is loaded and compiled. A first job here finds nothing new; then the benchmark
 * gives the fakes new events and says go, and the second job is timed.
 */
async function service(r: PipelineRequest): Promise<Record<string, unknown>> {
  const db = await open(r);
  try {
    const t = Date.now();
    const first = await runMainJob({ db, log, ...jobConfig(r) }, { now: new Date(r.now) });
    if (!first.ok) throw new Error(`the service's first run failed: ${first.errors.join('; ')}`);
    const firstS = secs(Date.now() - t);
    await new Promise<void>((resolve) => {
      process.once('message', () => resolve());
      process.send!({ type: 'warmed', seconds: firstS });
    });
    return { ...(await timedJob(db, r)), first_run_s: firstS };
  } finally {
    await db.destroy();
  }
}

async function incremental(r: PipelineRequest): Promise<Record<string, unknown>> {
  const before = await tableState(r);
  const db = await open(r);
  let result: Record<string, unknown>;
  try {
    result = await timedJob(db, r);
  } finally {
    await db.destroy();
  }
  const after = await tableState(r);
  if (before && after) {
    result.tables = Object.fromEntries(Object.entries(before).map(([t, b]) => {
      const a = after[t] ?? {};
      const delta = (k: string): number => Number(a[k] ?? 0) - Number(b[k] ?? 0);
      return [t, { before: b, updates: delta('n_tup_upd'), hot_updates: delta('n_tup_hot_upd') }];
    }));
  }
  return result;
}

const BE = `SELECT connection, billing_system, kind, external_id, document_id, occurred_at, amount_minor, currency, amount_usd_minor, classification FROM billing_events`;
const NC = `SELECT connection, network, external_id, amount_minor, currency, status, occurred_at, transaction_key FROM network_commissions`;
const DDL = `CREATE TABLE be_copy (connection text, billing_system text, kind text, external_id text, document_id text, occurred_at timestamptz, amount_minor bigint, currency char(3), amount_usd_minor bigint, classification text);
             CREATE TABLE nc_copy (connection text, network text, external_id text, amount_minor bigint, currency char(3), status text, occurred_at timestamptz, transaction_key text);`;

/**
 * Raw COPY of the same canonical rows (billing_events + network_commissions) into empty tables on the
 * same engine; only the COPY is timed. PostgreSQL: exported with psql \copy … TO, loaded with one psql
 * run (DDL + two \copy FROM, as before); PGlite: exported with COPY … TO '/dev/blob' from the
 * pipeline's data directory, loaded with COPY FROM '/dev/blob' into an in-memory instance.
 */
async function copyBaseline(r: PipelineRequest): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-copy-'));
  try {
    if (r.kind === 'postgres') {
      const psql = (script: string): void => {
        const p = spawnSync('psql', [r.adminUrl!, '-q', '-v', 'ON_ERROR_STOP=1'], { input: script, encoding: 'utf8' });
        if (p.status !== 0) throw new Error(`psql failed: ${p.stderr}`);
      };
      psql(`SET search_path=${r.schema};\n\\copy (${BE}) TO '${dir}/be.csv' CSV\n\\copy (${NC}) TO '${dir}/nc.csv' CSV\n`);
      const rows = readFileSync(`${dir}/be.csv`, 'utf8').split('\n').length - 1 + (readFileSync(`${dir}/nc.csv`, 'utf8').split('\n').length - 1);
      const t = Date.now();
      psql(`SET search_path=${r.schema}; DROP TABLE IF EXISTS be_copy, nc_copy; ${DDL}\n\\copy be_copy FROM '${dir}/be.csv' CSV\n\\copy nc_copy FROM '${dir}/nc.csv' CSV\n`);
      const ms = Date.now() - t;
      psql(`SET search_path=${r.schema}; DROP TABLE IF EXISTS be_copy, nc_copy;\n`);
      return { rows, ms, max_rss_mb: maxRssMb() };
    }
    const src = new PGlite({ dataDir: r.dataDir! });
    const be = (await src.query(`COPY (${BE}) TO '/dev/blob' CSV`)).blob!;
    const nc = (await src.query(`COPY (${NC}) TO '/dev/blob' CSV`)).blob!;
    const rows = Number((await src.query<{ n: string }>(`SELECT (SELECT count(*) FROM billing_events) + (SELECT count(*) FROM network_commissions) AS n`)).rows[0]!.n);
    await src.close();
    const pg = await PGlite.create();
    await pg.exec(DDL);
    const t = Date.now();
    await pg.query(`COPY be_copy FROM '/dev/blob' CSV`, [], { blob: be });
    await pg.query(`COPY nc_copy FROM '/dev/blob' CSV`, [], { blob: nc });
    const ms = Date.now() - t;
    await pg.close();
    return { rows, ms, max_rss_mb: maxRssMb() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.send && process.env.BENCH_CHILD === 'pipeline') {
  process.once('message', (r: PipelineRequest) => {
    const run = r.mode === 'full' ? full(r) : r.mode === 'incremental' ? incremental(r) : r.mode === 'service' ? service(r) : copyBaseline(r);
    run.then(
      (result) => process.send!({ type: 'result', ...result }, () => process.exit(0)),
      (err: unknown) => process.send!({ type: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
    );
  });
}
