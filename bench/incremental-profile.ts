// Where an incremental run's time goes: a generated world (fakes in a child process, bench/fakes-process.ts)
// synced once into a KEPT PostgreSQL database, then 1k new events (the fakes' `incremental` request)
// and one timed runMainJob on a throw-away copy of it, with
//   - per stream: seconds, pages, records, written/unchanged (each stream is synced on its own, in
//     the job's order — billing connections first; `--job-sync` uses the job's own concurrent sync
//     and gives per-connection figures only),
//   - the job's stepMs (sync, compute, reconcile, alerts),
//   - every SQL statement timed client-side (knex query events) and grouped by statement shape and
//     the code that issued it (file:line of the first src/ or connectors/ frames),
//   - the server's own slow-statement log for the copy (log_min_duration_statement, optionally
//     auto_explain with ANALYZE + BUFFERS) read back from /var/log/postgresql/,
//   - optionally a CPU profile of the pipeline (this process) during the run, summarized by self time.
//
//   node bench/incremental-profile.ts [size] [--rebuild] [--n 1000] [--min-ms 20] [--explain-ms 0]
//                                     [--sweep] [--job-sync] [--cpu-prof] [--keep-work] [--top 25] [--json FILE]
//                                     [--unvacuumed] [--warm]
//
// size: payments (default 100000). The full run (bench/pipeline-process.ts `full`, its own process)
// goes into database `cs_bench_keep_<size>` (public schema), which is KEPT and reused while its
// marker (size, seed, the world's counts) and its row counts match the regenerated world
// (`--rebuild` forces a new one). Each profile run clones it (CREATE DATABASE … TEMPLATE, a file
// copy) into `cs_bench_inc_<size>_<pid>`, so every run starts from the same post-full-run state; the copy
// is dropped afterwards unless --keep-work (for EXPLAINs by hand). --explain-ms N logs the plan
// (EXPLAIN ANALYZE, BUFFERS, nested statements) of every statement slower than N ms via auto_explain
// (slows the run somewhat). The pipeline runs in this process, cold, like a CLI `run` (--warm: after
// one untimed job with nothing new, like a `serve` process's later runs). --cpu-prof
// writes <tmpdir>/incremental-profile-<size>-<ms>.cpuprofile (the run only) and prints self time by
// function; --json FILE writes every statement group, the server's slow statements and plans.
// PostgreSQL: DATABASE_URL's server (default postgres@127.0.0.1:5432, superuser, trust auth).
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import type { Knex } from 'knex';
import type { FakeEndpoints } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { syncConnections } from '../src/sync/run-connections.ts';
import type { SyncRunResult } from '../src/sync/engine.ts';
import { runMainJob, type ComputeFn } from '../src/jobs/main-job.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { withForcedSweep } from '../src/sync/lookback.ts';
import { createLogger } from '../src/log/logger.ts';
import { loadConnector } from '../connectors/index.ts';
import type { ConnectionType } from '../src/config/schema.ts';
import { forkChild } from './child.ts';
import { jobConfig, type PipelineRequest } from './pipeline-process.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const has = (name: string): boolean => args.includes(`--${name}`);
const valued = new Set(['--n', '--min-ms', '--explain-ms', '--top', '--json']);
const positional = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1] ?? ''));
const size = Number(positional[0] ?? 100_000);
const SEED = 1;
const N = Number(flag('n') ?? 1000);
const minMs = Number(flag('min-ms') ?? 20);
const explainMs = Number(flag('explain-ms') ?? 0);
const TOP = Number(flag('top') ?? 25);
const NOW = new Date(Date.UTC(2025, 6, 1));
const PG_LOG = process.env.PG_LOG ?? '/var/log/postgresql/postgresql-15-main.log';
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
// --unvacuumed: a kept database that is only analyzed after its build (its own name), to compare a
// never-vacuumed import with the vacuumed one (bench/README, seventh round: no difference measured).
const unvacuumed = has('unvacuumed');
// --warm: run the job once (nothing new) in this process before the timed run, as `serve` would have.
const warmFirst = has('warm');
const keepDb = `cs_bench_keep_${size}${unvacuumed ? '_unvac' : ''}`;
// Per process: several people may profile the same size at once.
const workDb = `cs_bench_inc_${size}_${process.pid}`;
const log = createLogger({ level: 'silent', format: 'json' });
const secs = (ms: number): number => Math.round(ms) / 1000;
const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const urlFor = (db: string): string => {
  const u = new URL(pgUrl);
  u.pathname = `/${db}`;
  return u.toString();
};
const loadavg = async (): Promise<string> => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Ready { endpoints: FakeEndpoints; firstIssuedAt: string; payments: number; network_reports: number; generate_s: number; load_fakes_s: number }
interface Marker { size: number; seed: number; payments: number; network_reports: number; first_issued_at: string; billing_events: number; network_commissions: number }

async function withAdmin<T>(f: (a: Knex) => Promise<T>): Promise<T> {
  const a = await openDb({ url: pgUrl, poolMax: 1 });
  try {
    return await f(a);
  } finally {
    await a.destroy();
  }
}
const dbExists = (name: string): Promise<boolean> => withAdmin(async (a) => (await a.raw(`SELECT 1 FROM pg_database WHERE datname = ?`, [name])).rows.length > 0);

async function counts(db: Knex): Promise<{ billing_events: number; network_commissions: number }> {
  const r = (await db.raw(`SELECT (SELECT count(*) FROM billing_events)::int AS be, (SELECT count(*) FROM network_commissions)::int AS nc`)).rows[0] as { be: number; nc: number };
  return { billing_events: r.be, network_commissions: r.nc };
}

/** The kept database matches the regenerated world: same marker, and its rows were not touched since. */
async function keptMatches(ready: Ready): Promise<string | undefined> {
  if (!(await dbExists(keepDb))) return `${keepDb} does not exist`;
  const db = await openDb({ url: urlFor(keepDb), poolMax: 1 });
  try {
    const has = (await db.raw(`SELECT to_regclass('bench_keep_marker') AS t`)).rows[0] as { t: string | null };
    if (!has.t) return 'no marker (an interrupted build?)';
    const m = (await db.raw(`SELECT marker FROM bench_keep_marker`)).rows[0]?.marker as Marker | undefined;
    if (!m) return 'empty marker';
    const want = { size, seed: SEED, payments: ready.payments, network_reports: ready.network_reports, first_issued_at: ready.firstIssuedAt };
    for (const [k, v] of Object.entries(want)) if (m[k as keyof Marker] !== v) return `marker ${k} ${String(m[k as keyof Marker])} ≠ ${String(v)}`;
    const c = await counts(db);
    if (c.billing_events !== m.billing_events || c.network_commissions !== m.network_commissions) return `row counts ${JSON.stringify(c)} ≠ marker's`;
    return undefined;
  } finally {
    await db.destroy();
  }
}

async function buildKept(ready: Ready): Promise<void> {
  await withAdmin(async (a) => {
    // Someone connected (a build by hand or by an older copy of this script, a clone in progress):
    // never drop it from under them.
    const busy = (await a.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ?`, [keepDb])).rows[0] as { n: number };
    if (busy.n > 0) throw new Error(`${keepDb} is not usable but ${busy.n} session(s) are connected to it (a build in progress?): not dropping it; retry when they are gone`);
    await a.raw(`DROP DATABASE IF EXISTS "${keepDb}" WITH (FORCE)`);
    await a.raw(`CREATE DATABASE "${keepDb}"`);
  });
  say(`building ${keepDb}: full run (sync → compute → reconcile) in a pipeline process … (load ${await loadavg()})`);
  const child = forkChild('pipeline-process.ts', 'pipeline');
  const req: PipelineRequest = { type: 'run', mode: 'full', kind: 'postgres', url: urlFor(keepDb), adminUrl: urlFor(keepDb), schema: 'public', endpoints: ready.endpoints, firstIssuedAt: ready.firstIssuedAt, now: NOW.toISOString(), payments: ready.payments };
  const f = await child.request<Record<string, unknown>>(req);
  await child.exited;
  say(`full run: ${JSON.stringify({ stages: f.stages, sync_errors: f.sync_errors })}`);
  const db = await openDb({ url: urlFor(keepDb), poolMax: 1 });
  try {
    const c = await counts(db);
    const m: Marker = { size, seed: SEED, payments: ready.payments, network_reports: ready.network_reports, first_issued_at: ready.firstIssuedAt, ...c };
    await db.raw(`CREATE TABLE bench_keep_marker (marker jsonb NOT NULL)`);
    await db.raw(`INSERT INTO bench_keep_marker VALUES (?::jsonb)`, [JSON.stringify(m)]);
    // Every table vacuumed and analyzed (--unvacuumed: analyzed only, as the pipeline leaves it where
    // autovacuum has not run yet; no difference in the incremental run at 100k, bench/README).
    await db.raw(unvacuumed ? `ANALYZE` : `VACUUM ANALYZE`);
  } finally {
    await db.destroy();
  }
}

// ---- client-side statement timing (knex events), grouped by shape and call site ----
interface Stmt { n: number; ms: number; max: number; rows: number; sql: string; site: string }
const stmts = new Map<string, Stmt>();
/** What the job is doing (a stream, compute, reconcile; alerts by call site): SQL summed per phase. */
let phase = 'setup';
const byPhase = new Map<string, { n: number; ms: number }>();
const open = new Map<string, { t: number; key: string; sql: string; site: string; phase: string }>();
const shape = (sql: string): string => sql.replace(/\s+/g, ' ').replace(/\$\d+|\?/g, '?').replace(/'[^']*'/g, "'…'").replace(/\b\d+\b/g, 'N').trim();
function callSite(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const app = frames.map((f) => /(?:file:\/\/)?[^\s(]*\/((?:src|connectors)\/[^:]+):(\d+)/.exec(f)).filter((m): m is RegExpExecArray => !!m).map((m) => `${m[1]}:${m[2]}`);
  return app.slice(0, 3).join(' < ') || '(no app frame)';
}
function instrument(db: Knex): void {
  // A builder runs when awaited (a thenable: the async stack stops there), so the call site is taken
  // where the builder is made — client.queryBuilder()/raw(), on the prototype transactions share.
  const proto = Object.getPrototypeOf(db.client) as Record<'queryBuilder' | 'raw', (...a: unknown[]) => Record<string, unknown>>;
  for (const m of ['queryBuilder', 'raw'] as const) {
    const orig = proto[m];
    proto[m] = function (this: unknown, ...a: unknown[]) {
      const b = orig.apply(this, a);
      b._benchSite = callSite();
      return b;
    };
  }
  db.on('query', (q: { __knexQueryUid: string; sql: string }) => {
    open.set(q.__knexQueryUid, { t: performance.now(), key: '', sql: shape(q.sql), site: '', phase });
  });
  const done = (q: { __knexQueryUid: string }, rows: number, builder?: { _benchSite?: string }): void => {
    const o = open.get(q.__knexQueryUid);
    if (!o) return;
    open.delete(q.__knexQueryUid);
    const ms = performance.now() - o.t;
    o.site = builder?._benchSite ?? '(unknown)';
    o.key = `${o.site}|${o.sql.slice(0, 200)}`;
    const cur = stmts.get(o.key) ?? { n: 0, ms: 0, max: 0, rows: 0, sql: o.sql, site: o.site };
    cur.n++;
    cur.ms += ms;
    cur.max = Math.max(cur.max, ms);
    cur.rows += rows;
    stmts.set(o.key, cur);
    const ph = o.site.startsWith('src/alerts/') || o.site.includes('< src/alerts/') ? 'alerts' : o.phase;
    const p = byPhase.get(ph) ?? { n: 0, ms: 0 };
    p.n++;
    p.ms += ms;
    byPhase.set(ph, p);
  };
  db.on('query-response', (resp: unknown, q: { __knexQueryUid: string }, builder: { _benchSite?: string }) => {
    const rows = Array.isArray(resp) ? resp.length : typeof resp === 'number' ? resp : ((resp as { rowCount?: number } | undefined)?.rowCount ?? 0);
    done(q, rows, builder);
  });
  db.on('query-error', (_e: unknown, q: { __knexQueryUid: string }) => done(q, 0));
}

// ---- per-stream sync: each stream on its own, in the job's order ----
interface StreamRow { connection: string; stream: string; s: number; pages: number; records: number; written: number; unchanged: number; status: string; fakesCpu?: number; requests?: number }
let fakesStats: (() => Promise<{ cpu_s: number; requests: Record<string, number> }>) | undefined;
const streamRows: StreamRow[] = [];
const ORDER: Record<ConnectionType, number> = { stripe: 0, chargebee: 0, partnerstack: 1, shareasale: 1, awin: 1 };
const perStreamSync: typeof syncConnections = async (deps, sel = {}) => {
  const results: SyncRunResult[] = [];
  const conns = deps.config.connections.filter((c) => c.enabled).sort((a, b) => ORDER[a.type] - ORDER[b.type]);
  for (const c of conns) {
    const connector = await loadConnector(c.type);
    const names = connector.streams({ db: deps.db, config: deps.config, connection: c, log: deps.log, now: deps.now ?? new Date(), runId: 0, env: deps.env ?? process.env, signal: deps.signal }).map((s) => s.name);
    const merged: SyncRunResult = { runId: 0, connection: c.name, status: 'succeeded', streams: {} };
    for (const name of names) {
      phase = `${c.name}/${name}`;
      const f0 = await fakesStats?.();
      const t = performance.now();
      const [r] = await syncConnections(deps, { ...sel, connection: c.name, streams: [name] });
      const ms = performance.now() - t;
      const f1 = await fakesStats?.();
      const st = r!.streams[name];
      const requests = f0 && f1 ? Object.values(f1.requests).reduce((a, b) => a + b, 0) - Object.values(f0.requests).reduce((a, b) => a + b, 0) : undefined;
      streamRows.push({ connection: c.name, stream: name, s: secs(ms), pages: st?.pages ?? 0, records: st?.records ?? 0, written: st?.written ?? 0, unchanged: st?.unchanged ?? 0, status: r!.status, ...(f0 && f1 ? { fakesCpu: f1.cpu_s - f0.cpu_s, requests } : {}) });
      if (st) merged.streams[name] = st;
      if (r!.status !== 'succeeded') {
        merged.status = r!.status;
        merged.error = r!.error;
        break;
      }
    }
    results.push(merged);
  }
  phase = 'sync (after streams)';
  return results;
};
const jobSync: typeof syncConnections = async (deps, sel) => {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const t0 = performance.now();
  phase = 'sync';
  const res = await syncConnections({ ...deps, onProgress: (e) => {
    const now = performance.now();
    if (!first.has(e.connection)) first.set(e.connection, now);
    last.set(e.connection, now);
  } }, sel);
  for (const r of res) {
    for (const [name, st] of Object.entries(r.streams)) streamRows.push({ connection: r.connection, stream: name, s: NaN, pages: st.pages, records: st.records, written: st.written, unchanged: st.unchanged, status: r.status });
    streamRows.push({ connection: r.connection, stream: '(connection, to its last commit)', s: secs((last.get(r.connection) ?? t0) - t0), pages: 0, records: 0, written: 0, unchanged: 0, status: r.status });
  }
  return res;
};

// ---- CPU profile summary: self time by function and file:line ----
interface ProfNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
function summarizeProfile(p: { nodes: ProfNode[]; samples: number[]; timeDeltas: number[] }): Array<{ fn: string; self_s: number }> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|connectors|node_modules|bench)\//, '$1/');
    const k = `${n.callFrame.functionName || '(anon)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    self.set(k, (self.get(k) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([fn, us]) => ({ fn, self_s: secs(us / 1000) }));
}

// ---- server log: duration lines of the work database ----
function serverSlow(from: number): Array<{ ms: number; text: string; plan: boolean }> {
  const out: Array<{ ms: number; text: string; plan: boolean }> = [];
  // Read in chunks: a run that logs big parameter arrays writes more than one string can hold
  // (a 1M run's log part passed 512 MB). One entry = a prefixed line plus its continuation lines
  // (tab-indented); the last, possibly incomplete entry of a chunk waits for the next one.
  const fd = openSync(PG_LOG, 'r');
  const chunk = Buffer.alloc(32 << 20);
  let pos = from;
  let pending = '';
  const decoder = new StringDecoder('utf8'); // a character split across two chunks stays whole
  const entries: string[] = [];
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      pos += n;
      const parts = (pending + (n === 0 ? decoder.end() : decoder.write(chunk.subarray(0, n)))).split(/\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/);
      pending = n === 0 ? '' : parts.pop()!.slice(0, 16 << 20);
      for (const e of parts) if (e.includes(`@${workDb} `) && e.includes('duration: ')) entries.push(e.slice(0, 16_000));
      if (n === 0) break;
    }
  } finally {
    closeSync(fd);
  }
  for (const e of entries) {
    const m = /duration: ([\d.]+) ms/.exec(e);
    if (!m) continue;
    // auto_explain's entries ("duration: … ms  plan:") repeat a statement already logged: kept apart.
    out.push({ ms: Number(m[1]), text: e.replace(/^\S+ \S+ \S+ \[\d+\] \S+ /, '').slice(0, 8000), plan: /duration: [\d.]+ ms {2}plan:/.test(e) });
  }
  return out.sort((a, b) => b.ms - a.ms);
}

// ---- main ----
Error.stackTraceLimit = 40;
// --expose-gc: the fakes collect a load's garbage before the timed run (bench/fakes-process.ts).
const fakes = forkChild('fakes-process.ts', 'fakes', { heapMb: size >= 500_000 ? 12_288 : undefined, execArgv: ['--expose-gc'] });
try {
  say(`generating ${size} payments (seed ${SEED}) in the fakes process … (load ${await loadavg()})`);
  const ready = await fakes.request<Ready>({ type: 'start', size, seed: SEED, asOf: NOW.toISOString() });
  say(`world: ${ready.payments} payments, ${ready.network_reports} network reports (generate ${ready.generate_s} s, load fakes ${ready.load_fakes_s} s)`);
  // Several people profile at once: the kept database is checked, built and cloned under an advisory
  // lock (held on a connection to the admin database), so a second run waits for a build in progress
  // and then reuses it instead of dropping it half-built.
  const lock = await openDb({ url: pgUrl, poolMax: 1 });
  try {
    await lock.raw(`SELECT pg_advisory_lock(hashtext(?))`, [keepDb]);
    const why = has('rebuild') ? '--rebuild' : await keptMatches(ready);
    if (why) {
      say(`kept database not usable (${why})`);
      await buildKept(ready);
    } else say(`reusing ${keepDb} (marker and row counts match)`);

    await withAdmin(async (a) => {
      await a.raw(`DROP DATABASE IF EXISTS "${workDb}" WITH (FORCE)`);
      const t = performance.now();
      await a.raw(`CREATE DATABASE "${workDb}" TEMPLATE "${keepDb}" STRATEGY FILE_COPY`);
      say(`cloned ${keepDb} → ${workDb} in ${secs(performance.now() - t)} s`);
      await a.raw(`ALTER DATABASE "${workDb}" SET log_min_duration_statement = ${Math.max(0, Math.floor(minMs))}`);
      if (explainMs > 0) {
        await a.raw(`ALTER DATABASE "${workDb}" SET session_preload_libraries = 'auto_explain'`);
        for (const [k, v] of [['log_min_duration', String(Math.floor(explainMs))], ['log_analyze', 'on'], ['log_buffers', 'on'], ['log_nested_statements', 'on'], ['log_timing', 'on']]) await a.raw(`ALTER DATABASE "${workDb}" SET auto_explain.${k} = '${v}'`);
      }
    });
  } finally {
    await lock.destroy();
  }

  const db = await openDb({ url: urlFor(workDb), poolMax: 10 });
  // The kept database was built by an earlier checkout: migrate the copy first (as `run` does on
  // start), outside the timed run and before the statement timing.
  const applied = await migrateUp(db);
  if (applied.length) say(`migrated the copy: ${applied.join(', ')}`);
  // As bench/pipeline-process.ts `incremental` (PartnerStack's normal 60-day look-back).
  const { config, env } = jobConfig({ endpoints: ready.endpoints, firstIssuedAt: ready.firstIssuedAt });
  const cfg = has('sweep') ? withForcedSweep(config) : config;
  if (warmFirst) {
    // The service's case (bench/pipeline-process.ts `service`): this process has run the job once,
    // with nothing new, before the timed run.
    const t = performance.now();
    const first = await runMainJob({ db, config, log, env }, { now: NOW });
    say(`--warm: a first job (nothing new) in ${secs(performance.now() - t)} s${first.ok ? '' : `, failed: ${first.errors.join('; ')}`}`);
  }

  const loaded = await fakes.request<{ payments: number; new_payments: number; load_s: number; warm_s: number }>({ type: 'incremental', n: N });
  say(`fakes: +${loaded.new_payments} payments (now ${loaded.payments}; load ${loaded.load_s} s, indexes warmed in ${loaded.warm_s} s before the run)`);
  const statsBefore = await fakes.request<{ cpu_s: number; requests: Record<string, number> }>({ type: 'stats' });
  instrument(db);

  let logFrom = 0;
  try {
    logFrom = statSync(PG_LOG).size;
  } catch {
    say(`(cannot read ${PG_LOG}: no server-side slow statements)`);
  }
  const session = has('cpu-prof') ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
  }
  const load0 = await loadavg();
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  fakesStats = () => fakes.request<{ cpu_s: number; requests: Record<string, number> }>({ type: 'stats' });
  const compute: ComputeFn = async (d, c, asOf) => {
    phase = 'compute';
    const r = await computeAndStore(d, c, asOf);
    phase = 'reconcile (+ alerts)';
    return r;
  };
  const summary = await runMainJob({ db, config: cfg, log, env, compute, syncConnections: has('job-sync') ? jobSync : perStreamSync }, { now: NOW });
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const load1 = await loadavg();
  let profile: Array<{ fn: string; self_s: number }> | undefined;
  if (session) {
    const { profile: p } = await session.post('Profiler.stop');
    const file = path.join(os.tmpdir(), `incremental-profile-${size}-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(p));
    profile = summarizeProfile(p as unknown as { nodes: ProfNode[]; samples: number[]; timeDeltas: number[] });
    say(`cpu profile: ${file}`);
    session.disconnect();
  }
  const statsAfter = await fakes.request<{ cpu_s: number; requests: Record<string, number> }>({ type: 'stats' });
  await db.destroy();
  // The server writes its log asynchronously: give it a moment.
  await new Promise((r) => setTimeout(r, 500));
  const logged = logFrom || statSync(PG_LOG, { throwIfNoEntry: false }) ? serverSlow(logFrom) : [];
  const slow = logged.filter((x) => !x.plan);
  const plans = logged.filter((x) => x.plan);

  const top = [...stmts.values()].sort((a, b) => b.ms - a.ms).slice(0, TOP);
  const totalSqlMs = [...stmts.values()].reduce((a, s) => a + s.ms, 0);
  const out = {
    size, payments: ready.payments, new_payments: loaded.new_payments, mode: has('sweep') ? 'sweep' : 'tails', process: warmFirst ? 'warm (one job before)' : 'cold', sync: has('job-sync') ? 'job (concurrent)' : 'per stream (serial)',
    load_before: load0, load_after: load1,
    seconds: secs(ms), pipeline_cpu_s: secs((cpu.user + cpu.system) / 1000), fakes_cpu_s: Math.round((statsAfter.cpu_s - statsBefore.cpu_s) * 1000) / 1000,
    fakes_requests: Object.fromEntries(Object.entries(statsAfter.requests).map(([k, v]) => [k, v - (statsBefore.requests[k] ?? 0)])),
    ok: summary.ok, errors: summary.errors,
    step_s: Object.fromEntries(Object.entries(summary.stepMs).map(([k, v]) => [k, secs(v)])),
    compute: summary.compute, reconcile: { found: summary.reconcile.found, new: summary.reconcile.new, resolved: summary.reconcile.resolved },
  };
  console.log(JSON.stringify(out, null, 1));
  console.log('\n== streams: s, pages, records, written, unchanged | SQL s (client-side, n) | fakes CPU s, requests');
  for (const r of streamRows) {
    const q = byPhase.get(`${r.connection}/${r.stream}`);
    console.log(`${`${r.connection}/${r.stream}`.padEnd(34)} ${Number.isNaN(r.s) ? '      ' : r.s.toFixed(2).padStart(6)}  ${String(r.pages).padStart(4)} ${String(r.records).padStart(6)} ${String(r.written).padStart(6)} ${String(r.unchanged).padStart(6)} | ${q ? `${secs(q.ms).toFixed(2).padStart(5)} (${q.n})` : '-'} | ${r.fakesCpu !== undefined ? `${r.fakesCpu.toFixed(2)} ${r.requests}` : ''} ${r.status === 'succeeded' ? '' : r.status}`);
  }
  console.log('\n== SQL summed per phase (client-side)');
  for (const [k, v] of [...byPhase].sort((a, b) => b[1].ms - a[1].ms)) console.log(`${k.padEnd(34)} ${secs(v.ms).toFixed(3).padStart(7)} s  n=${v.n}`);
  console.log(`\n== SQL, client-side (incl. pool wait): ${stmts.size} shapes, ${[...stmts.values()].reduce((a, s) => a + s.n, 0)} statements, ${secs(totalSqlMs)} s summed; top ${TOP} by total`);
  for (const s of top) console.log(`${secs(s.ms).toFixed(3).padStart(7)} s  n=${String(s.n).padEnd(5)} max ${secs(s.max).toFixed(3)} s rows ${s.rows}  ${s.site}\n           ${s.sql.slice(0, 260)}`);
  console.log(`\n== server log, statements ≥ ${minMs} ms on ${workDb}: ${slow.length}, ${secs(slow.reduce((a, s) => a + s.ms, 0))} s summed; top ${TOP}`);
  for (const s of slow.slice(0, TOP)) console.log(`${(s.ms / 1000).toFixed(3).padStart(7)} s  ${s.text.replace(/\s+/g, ' ').slice(0, 400)}`);
  if (explainMs > 0) {
    console.log(`\n== auto_explain (ANALYZE, BUFFERS), statements ≥ ${explainMs} ms: ${plans.length}`);
    for (const s of plans.slice(0, TOP)) console.log(`${(s.ms / 1000).toFixed(3).padStart(7)} s  ${s.text.slice(0, 4000)}\n`);
  }
  if (profile) {
    console.log(`\n== CPU profile of this process (pipeline), self time, top ${TOP}`);
    for (const p of profile) console.log(`${p.self_s.toFixed(3).padStart(7)} s  ${p.fn}`);
  }
  if (flag('json')) {
    writeFileSync(flag('json')!, `${JSON.stringify({ ...out, streams: streamRows, sql_by_phase: Object.fromEntries(byPhase), sql: [...stmts.values()].sort((a, b) => b.ms - a.ms), server_slow: slow, server_plans: plans, cpu_profile: profile }, null, 1)}\n`);
    say(`details: ${flag('json')!}`);
  }
  if (!has('keep-work')) await withAdmin((a) => a.raw(`DROP DATABASE IF EXISTS "${workDb}" WITH (FORCE)`));
  else say(`kept ${workDb} (drop it: psql -c 'DROP DATABASE "${workDb}"')`);
} finally {
  fakes.proc.send({ type: 'close' });
  await fakes.exited.catch(() => undefined);
}
