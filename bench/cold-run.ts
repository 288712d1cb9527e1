// A cold `commission-sync run` end to end: the real CLI in a fresh process, as cron or an operator
// would start it, against the fakes (bench/fakes-process.ts) after a full run filled the database.
// Where its fixed costs go: node start-up, module loading, config, database open and migration
// check, the job (sync, compute, reconcile, alerts — from the job's own summary), and exit.
//
//   node bench/cold-run.ts [size] [--db postgres|pglite] [--reps 3] [--n 0] [--cpu-prof] [--cli src,DIR…]
//
// size: payments (default 10000). The full run goes into a fresh PostgreSQL schema (DATABASE_URL's
// server, default postgres@127.0.0.1) or PGlite directory, dropped at the end. Then `--reps` cold
// runs: the first with --n new payments added to the fakes beforehand (default 0: nothing new, the
// floor of a run), the rest with nothing new (each after one first run after the full run); plus one `--help` (module loading + exit alone) and
// one `run --no-sync`. Each run's figures come from bench/cold-probe.js (preloaded): wall time from
// process start, CPU, peak RSS, when the imports had loaded and when the summary was printed.
// --cpu-prof writes each run's CPU profile to <tmpdir>/cold-run-<i>-*.cpuprofile. --cli lists the CLIs
// to run, interleaved run by run (A/B pairs on one database under the same load): `src` = the sources
// through Node's type stripping (`npm run cli`, the default), a directory = a compiled build
// (DIR/src/cli/main.js, e.g. `npx tsc -p tsconfig.build.json --outDir DIR` with DIR/node_modules
// linked), as the installed binary and the Docker image run.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoConfigFor, type FakeEndpoints } from '../src/world/fakes.ts';
import { forkChild } from './child.ts';
import { freshDb } from './fresh-db.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const valued = new Set(['--db', '--reps', '--n', '--cli']);
const positional = args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1] ?? ''));
const size = Number(positional[0] ?? 10_000);
const kind = (flag('db') ?? 'postgres') as 'postgres' | 'pglite';
const reps = Number(flag('reps') ?? 3);
const n = Number(flag('n') ?? 0);
const cpuProf = args.includes('--cpu-prof');
const clis = (flag('cli') ?? 'src').split(',');
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const NOW = new Date(Date.UTC(2025, 6, 1));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const secs = (ms: number): number => Math.round(ms) / 1000;
const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Ready { endpoints: FakeEndpoints; firstIssuedAt: string; payments: number }
interface Probe { probe_ms: number; imports_done_ms?: number; first_stdout_ms?: number; exit_ms: number; cpu_ms: number; max_rss_mb: number }

/** One cold CLI process; resolves with the probe's figures and its stdout. */
function cli(label: string, variant: string, argv: string[], env: NodeJS.ProcessEnv): Promise<{ probe: Probe; stdout: string; wall_ms: number; code: number | null }> {
  const out = path.join(os.tmpdir(), `cold-probe-${process.pid}-${label}.json`);
  const execArgv = ['--disable-warning=ExperimentalWarning', '--import', path.join(root, 'bench/cold-probe.js'), ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${os.tmpdir()}`, `--cpu-prof-name=cold-run-${label}-${Date.now()}.cpuprofile`] : [])];
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const main = variant === 'src' ? path.join(root, 'src/cli/main.ts') : path.resolve(variant, 'src/cli/main.js');
    const p = spawn(process.execPath, [...execArgv, main, ...argv], { cwd: root, env: { ...env, COLD_PROBE_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const wall = performance.now() - t;
      try {
        const probe = JSON.parse(readFileSync(out, 'utf8')) as Probe;
        rmSync(out, { force: true });
        if (code !== 0 && label !== 'help') say(`${label}: exit ${code}\n${stderr.slice(0, 2000)}`);
        resolve({ probe, stdout, wall_ms: wall, code });
      } catch (err) {
        reject(new Error(`${label}: no probe output (exit ${code}): ${stderr.slice(0, 2000)} ${String(err)}`));
      }
    });
  });
}

const fakes = forkChild('fakes-process.ts', 'fakes', { heapMb: size >= 500_000 ? 12_288 : undefined });
const d = await freshDb(kind, pgUrl, 'bench_cold');
const cfgDir = mkdtempSync(path.join(os.tmpdir(), 'cs-cold-cfg-'));
try {
  say(`cold-run: ${size} payments on ${kind} (load ${load()})`);
  const ready = await fakes.request<Ready>({ type: 'start', size, seed: 1, asOf: NOW.toISOString() });
  const base = { type: 'run' as const, kind, ...d.ref, endpoints: ready.endpoints, firstIssuedAt: ready.firstIssuedAt, now: NOW.toISOString(), payments: ready.payments };
  const full = forkChild('pipeline-process.ts', 'pipeline');
  const f = await full.request<Record<string, unknown>>({ ...base, mode: 'full' });
  await full.exited;
  say(`full run: ${JSON.stringify(f.stages)} (load ${load()})`);

  // The configuration a deployment would have, pointing at the fakes; credentials in the env.
  const { config, env: creds } = demoConfigFor(ready.endpoints, new Date(ready.firstIssuedAt), { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
  // As the benchmark's incremental run: PartnerStack's normal 60-day look-back after the first run.
  for (const c of config.connections) if (c.type === 'partnerstack') c.options = { ...c.options, lookbackDays: 60 };
  const cfgFile = path.join(cfgDir, 'commission-sync.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  // A PostgreSQL URL goes in the env, not argv, where process listings would show its password.
  const env: NodeJS.ProcessEnv = { ...process.env, ...creds, DATABASE_URL: kind === 'postgres' ? d.cli : '', LOG_LEVEL: 'silent' };
  const common = ['--config', cfgFile, ...(kind === 'pglite' ? ['--db', d.cli] : [])];

  const rows: Array<Record<string, unknown>> = [];
  const record = (label: string, variant: string, r: Awaited<ReturnType<typeof cli>>, job?: { durationMs: number; stepMs: Record<string, number>; ok: boolean }, extra: Record<string, unknown> = {}): void => {
    const p = r.probe;
    const row: Record<string, unknown> = {
      run: label,
      cli: variant,
      load: load(),
      wall_s: secs(r.wall_ms),
      process_s: secs(p.exit_ms),
      cpu_s: secs(p.cpu_ms),
      max_rss_mb: p.max_rss_mb,
      node_start_s: secs(p.probe_ms),
      imports_s: p.imports_done_ms !== undefined ? secs(p.imports_done_ms - p.probe_ms) : null,
      ...(job
        ? {
            job_s: secs(job.durationMs),
            step_s: Object.fromEntries(Object.entries(job.stepMs).map(([k, v]) => [k, secs(v)])),
            // From the imports to the job's start: config, database open, migration check.
            before_job_s: p.first_stdout_ms !== undefined && p.imports_done_ms !== undefined ? secs(p.first_stdout_ms - job.durationMs - p.imports_done_ms) : null,
            // From the printed summary to the process's end: pool close, handles left open.
            after_job_s: p.first_stdout_ms !== undefined ? secs(p.exit_ms - p.first_stdout_ms) : null,
            ok: job.ok,
          }
        : {}),
      ...extra,
    };
    rows.push(row);
    say(JSON.stringify(row));
  };

  type Job = { durationMs: number; stepMs: Record<string, number>; ok: boolean };
  for (const v of clis) record('--help', v, await cli('help', v, ['--help'], env));
  // The first run after a full run does a little more (first tails, first incremental compute): run
  // once untimed-for-comparison so the interleaved pairs all start from the same kind of state.
  const first = await cli('first', clis[0]!, [...common, 'run', '--now', NOW.toISOString(), '--format', 'json'], env);
  record('first run after the full run', clis[0]!, first, JSON.parse(first.stdout) as Job);
  for (let i = 0; i < reps; i++) {
    for (const [k, v] of clis.entries()) {
      const extra: Record<string, unknown> = {};
      if (i === 0 && k === 0 && n > 0) {
        const loaded = await fakes.request<{ new_payments: number; warm_s: number }>({ type: 'incremental', n });
        extra.new_payments = loaded.new_payments;
      }
      const before = await fakes.request<{ cpu_s: number }>({ type: 'stats' });
      const r = await cli(`run${i}-${k}`, v, [...common, 'run', '--now', NOW.toISOString(), '--format', 'json'], env);
      const after = await fakes.request<{ cpu_s: number }>({ type: 'stats' });
      extra.fakes_cpu_s = Math.round((after.cpu_s - before.cpu_s) * 1000) / 1000;
      record(`run #${i + 1}`, v, r, JSON.parse(r.stdout) as Job, extra);
    }
  }
  for (const [k, v] of clis.entries()) {
    const ns = await cli(`nosync-${k}`, v, [...common, 'run', '--no-sync', '--now', NOW.toISOString(), '--format', 'json'], env);
    record('run --no-sync', v, ns, JSON.parse(ns.stdout) as Job);
  }

  const result = { started: new Date().toISOString(), size, database: kind, clis, payments: ready.payments, node: process.version, full_run: f.stages, runs: rows };
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  const file = path.join(root, 'bench/results', `cold-run-${kind}-${size}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${file}\n`);
} finally {
  fakes.proc.send({ type: 'close' });
  await fakes.exited.catch(() => undefined);
  await d.drop();
  rmSync(cfgDir, { recursive: true, force: true });
}
