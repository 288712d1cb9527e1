// Benchmark: generated worlds through the real pipeline (fakes over HTTP → sync → compute →
// reconcile), per stage and end to end, with peak RSS, on PGlite and PostgreSQL; raw COPY of the same
// canonical rows as the physical-limit baseline (ratio reported in the same run); an incremental run
// after 1k new events on top of the largest world (tails + change feeds, as runs between sweeps do),
// then the same run as a forced look-back sweep, then 1k more new events run by a process that has
// already run the job once (the service's case: `serve` keeps one process). Results:
// bench/results/<timestamp>.json.
//
// Processes (so each figure is the pipeline's own): one fakes process per size (bench/fakes-process.ts:
// world generation + the five fake APIs); per database kind a fresh pipeline process for the full run,
// one for the COPY baseline, one for each cold incremental run and one for the service's two runs
// (bench/pipeline-process.ts). This process
// only orchestrates. Peak RSS = the pipeline processes' maxRSS; the fakes' is reported beside it.
//
//   npm run bench                                  # 10k payments, both databases
//   npm run bench -- --sizes 10000,100000          # more sizes
//   npm run bench -- --full                        # 10k, 100k and 1M
//   npm run bench -- --db pglite|postgres|both     # PostgreSQL: DATABASE_URL, else postgres@127.0.0.1
//   npm run bench -- --fakes-heap-mb 12288         # heap limit of the fakes process (default 12 GB from 500k payments)
//   npm run bench -- --pipeline-heap-mb 320        # V8 old-space cap of the pipeline processes
//   BENCH_PIPELINE_NODE_ARGS="" npm run bench      # pipeline on Node's default heap (default: the CLI's flags)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FakeEndpoints } from '../src/world/fakes.ts';
import { forkChild, type Child } from './child.ts';
import { DEFAULT_NODE_FLAGS } from '../src/cli/heap.ts';
import type { PipelineRequest } from './pipeline-process.ts';
import { freshDb } from './fresh-db.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (flag('sizes') ?? (args.includes('--full') ? '10000,100000,1000000' : '10000')).split(',').map(Number);
const which = flag('db') ?? 'both';
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const NOW = new Date(Date.UTC(2025, 6, 1));

const secs = (ms: number): number => Math.round(ms) / 1000;
/** b − a in seconds, to the millisecond. */
const delta = (a: number, b: number): number => Math.round((b - a) * 1000) / 1000;
const fakesHeapMb = flag('fakes-heap-mb') ? Number(flag('fakes-heap-mb')) : undefined;
// Node flags of the pipeline processes: by default the CLI's own heap flags (src/cli/heap.ts), so the
// figures are what a `commission-sync run` gets; BENCH_PIPELINE_NODE_ARGS replaces them ("" = Node's
// defaults, e.g. "--trace-gc" to look at the GC).
const pipelineNodeArgs = process.env.BENCH_PIPELINE_NODE_ARGS !== undefined ? process.env.BENCH_PIPELINE_NODE_ARGS.split(/\s+/).filter(Boolean) : DEFAULT_NODE_FLAGS;
/** V8 old-space cap of the pipeline processes (`--max-old-space-size`); default: none. */
const pipelineHeapMb = flag('pipeline-heap-mb') ? Number(flag('pipeline-heap-mb')) : undefined;
if (pipelineHeapMb !== undefined && !(Number.isInteger(pipelineHeapMb) && pipelineHeapMb > 0)) {
  console.error(`bench: --pipeline-heap-mb: expected a positive whole number of MB (got "${flag('pipeline-heap-mb')}")`);
  process.exit(2);
}

interface Ready {
  endpoints: FakeEndpoints;
  firstIssuedAt: string;
  payments: number;
  network_reports: number;
  generate_s: number;
  generate_scenario_s: number;
  build_world_s: number;
  load_fakes_s: number;
  warm_fakes_s: number;
  rss_mb: number;
  max_rss_mb: number;
}
interface FakesStats { rss_mb: number; max_rss_mb: number; cpu_s: number; gc_s: number; requests: Record<string, number> }

/** One step in a fresh pipeline process; resolves with its result once the process has exited. */
/** The pipeline process's heap cap and Node flags (the CLI's own, see pipelineNodeArgs). */
const pipelineFork = (): { heapMb: number | undefined; execArgv: string[] } => ({ heapMb: pipelineHeapMb, execArgv: pipelineHeapMb ? pipelineNodeArgs.filter((a) => !a.startsWith('--max-old-space-size')) : pipelineNodeArgs });

async function step(req: PipelineRequest): Promise<Record<string, unknown>> {
  const child = forkChild('pipeline-process.ts', 'pipeline', pipelineFork());
  const out = await child.request<Record<string, unknown>>(req);
  await child.exited;
  return out;
}

async function benchOne(fakes: Child, ready: Ready, size: number, kind: 'pglite' | 'postgres', incremental: boolean): Promise<Record<string, unknown>> {
  const r: Record<string, unknown> = { size, database: kind, payments: ready.payments, network_reports: ready.network_reports, generate_s: ready.generate_s, load_fakes_s: ready.load_fakes_s, warm_fakes_s: ready.warm_fakes_s };
  const d = await freshDb(kind, pgUrl, 'bench');
  try {
    const base = { type: 'run' as const, kind, ...d.ref, endpoints: ready.endpoints, firstIssuedAt: ready.firstIssuedAt, now: NOW.toISOString(), payments: ready.payments };
    const before = await fakes.request<FakesStats>({ type: 'stats' });
    const f = await step({ ...base, mode: 'full' });
    const after = await fakes.request<FakesStats>({ type: 'stats' });
    const syncMs = f.sync_ms as number;
    const canonical = f.canonical_rows as number;
    r.sync_errors = f.sync_errors;
    r.stages = f.stages;
    r.end_to_end = f.end_to_end;
    const rss: Record<string, unknown> = { pipeline_full: (f.max_rss_mb as Record<string, number>).after_reconcile, pipeline_full_by_stage: f.max_rss_mb, pipeline_full_memory: f.memory_mb };
    r.pipeline_cpu_s = f.cpu_s;
    r.fakes = { cpu_s_during_run: delta(before.cpu_s, after.cpu_s), gc_s_during_run: delta(before.gc_s, after.gc_s), requests: Object.fromEntries(Object.entries(after.requests).map(([k, v]) => [k, v - (before.requests[k] ?? 0)])) };
    const copy = await step({ ...base, mode: 'copy' });
    const copyRate = (copy.rows as number) / ((copy.ms as number) / 1000);
    r.copy_baseline = { rows: copy.rows, seconds: secs(copy.ms as number), rows_per_s: Math.round(copyRate), ingest_to_copy_ratio: Math.round((canonical / (syncMs / 1000) / copyRate) * 10_000) / 10_000 };
    rss.copy_baseline = copy.max_rss_mb;
    if (incremental) {
      const loaded = await fakes.request<{ payments: number; new_payments: number; warm_s: number; gc_s: number }>({ type: 'incremental', n: 1000 });
      // The fakes build their list indexes after loading the new events, and collect the load's
      // garbage, before the run (warm_s, gc_s: untimed); their CPU and GC pauses during each run are
      // still reported beside it.
      /** One incremental run (by default in a fresh pipeline process), with what the fakes spent serving it. */
      const timedRun = async (sweep: boolean, run: (req: PipelineRequest) => Promise<Record<string, unknown>> = step): Promise<Record<string, unknown>> => {
        const a = await fakes.request<FakesStats>({ type: 'stats' });
        const x = await run({ ...base, mode: 'incremental', sweep });
        const b = await fakes.request<FakesStats>({ type: 'stats' });
        return { seconds: x.seconds, sync_s: x.sync_s, after_sync_s: x.after_sync_s, step_s: x.step_s, records_read: x.records_read, ok: x.ok, errors: x.errors, cpu_s: x.cpu_s, run_cpu_s: x.run_cpu_s, fakes_cpu_s: delta(a.cpu_s, b.cpu_s), fakes_gc_s: delta(a.gc_s, b.gc_s), tables: x.tables, max_rss_mb: x.max_rss_mb, ...(x.first_run_s !== undefined ? { first_run_s: x.first_run_s } : {}) };
      };
      const { max_rss_mb: incRss, ...inc } = await timedRun(false);
      r.incremental_1k = { ...inc, new_payments: loaded.new_payments, fakes_warm_s: loaded.warm_s, fakes_gc_before_s: loaded.gc_s };
      // The same run as a look-back sweep (nothing new since): what the once-a-day deep re-read costs.
      const { max_rss_mb: sweepRss, ...sweep } = await timedRun(true);
      r.incremental_sweep = sweep;
      // The service's tick (`serve`: one long-lived process): a process that has run one job (nothing
      // new) gets 1k more new payments (2k on top of the world) and runs the job again, warm.
      const svc = forkChild('pipeline-process.ts', 'pipeline', pipelineFork());
      await svc.request({ ...base, mode: 'service' });
      const loaded2 = await fakes.request<{ new_payments: number }>({ type: 'incremental', n: 2000 });
      const { max_rss_mb: svcRss, ...warm } = await timedRun(false, () => svc.request<Record<string, unknown>>({ type: 'go' }));
      await svc.exited;
      r.incremental_1k_service = { ...warm, new_payments: loaded2.new_payments - loaded.new_payments };
      rss.pipeline_incremental = Math.max(incRss as number, sweepRss as number, svcRss as number);
      await fakes.request({ type: 'reset' });
    }
    const end = await fakes.request<FakesStats>({ type: 'stats' });
    rss.fakes = end.max_rss_mb;
    r.rss_mb = rss;
    // The pipeline's own peak: its full run and its incremental run (each a fresh process).
    r.peak_rss_mb = Math.max(rss.pipeline_full as number, (rss.pipeline_incremental as number | undefined) ?? 0);
    r.fakes_peak_rss_mb = end.max_rss_mb;
  } finally {
    await d.drop();
  }
  return r;
}

const out: Record<string, unknown> = { started: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, sizes, pipeline_heap_mb: pipelineHeapMb ?? null, pipeline_node_args: pipelineNodeArgs, load_at_start: os.loadavg()[0], harness: 'out-of-process (fakes, pipeline full, COPY, incremental: one process each)', runs: [] as unknown[] };
const kinds: Array<'pglite' | 'postgres'> = which === 'both' ? ['pglite', 'postgres'] : [which as 'pglite' | 'postgres'];
const largest = Math.max(...sizes);
for (const size of sizes) {
  process.stderr.write(`bench: generating ${size} payments and starting the fakes …\n`);
  const fakes = forkChild('fakes-process.ts', 'fakes', { heapMb: fakesHeapMb ?? (size >= 500_000 ? 12_288 : undefined), execArgv: ['--expose-gc'] });
  try {
    const ready = await fakes.request<Ready>({ type: 'start', size, seed: 1, asOf: NOW.toISOString() });
    process.stderr.write(`bench: world ${ready.payments} payments (generate ${ready.generate_s} s, load fakes ${ready.load_fakes_s} s, fakes rss ${ready.rss_mb} MB)\n`);
    for (const kind of kinds) {
      process.stderr.write(`bench: ${size} payments on ${kind} …\n`);
      const r = await benchOne(fakes, ready, size, kind, size === largest);
      r.fakes_world = { generate_scenario_s: ready.generate_scenario_s, build_world_s: ready.build_world_s, rss_after_load_mb: ready.rss_mb };
      (out.runs as unknown[]).push(r);
      process.stderr.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    fakes.proc.send({ type: 'close' });
    await fakes.exited.catch(() => undefined);
  }
}
mkdirSync('bench/results', { recursive: true });
const file = path.join('bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`${file}\n`);
