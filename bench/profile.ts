// Per-stream timing of one sync (+ compute, reconcile) on a generated world: where the time goes.
//   node bench/profile.ts [size] [pglite|postgres] [--fakes-process]
// With --fakes-process the world and the fakes live in a child process (bench/fakes-process.ts), so
// the RSS printed here and a `node --cpu-prof` profile of this process are the pipeline's alone; the
// fakes' own CPU time and RSS are printed at the end. Without it everything runs in this process.
import { generateScenario } from '../src/world/generate.ts';
import { buildWorld } from '../src/world/build.ts';
import { demoConfigFor, fakeEndpoints, loadWorld, startFakes, worldFirstIssuedAt, type FakeEndpoints, type Fakes } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { syncConnections } from '../src/sync/run-connections.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { runReconciliation } from '../src/reconcile/run.ts';
import { createLogger } from '../src/log/logger.ts';
import { forkChild, type Child } from './child.ts';
import { freshDb } from './fresh-db.ts';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const outOfProcess = process.argv.includes('--fakes-process');
const size = Number(positional[0] ?? 10000);
const kind = positional[1] ?? 'pglite';
const NOW = new Date(Date.UTC(2025, 6, 1));
const log = createLogger({ level: 'silent', format: 'json' });
const rss = (): number => Math.round(process.memoryUsage().rss / 1048576);
const maxRss = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
interface FakesStats { rss_mb: number; max_rss_mb: number; cpu_s: number; requests: Record<string, number>; stripe_paths: Record<string, number> }

let endpoints: FakeEndpoints;
let firstIssuedAt: Date;
let fakes: Fakes | undefined;
let child: Child | undefined;
if (outOfProcess) {
  child = forkChild('fakes-process.ts', 'fakes', { heapMb: size >= 500_000 ? 12_288 : undefined });
  const ready = await child.request<{ endpoints: FakeEndpoints; firstIssuedAt: string; rss_mb: number }>({ type: 'start', size, seed: 1, asOf: NOW.toISOString() });
  endpoints = ready.endpoints;
  firstIssuedAt = new Date(ready.firstIssuedAt);
  console.error(`fakes process loaded: its rss ${ready.rss_mb} MB; this process rss ${rss()} MB, maxrss ${maxRss()} MB`);
} else {
  const world = buildWorld(generateScenario({ size, seed: 1, asOf: NOW }), { asOf: NOW });
  fakes = await startFakes();
  loadWorld(fakes, world);
  endpoints = fakeEndpoints(fakes);
  firstIssuedAt = worldFirstIssuedAt(world);
  console.error(`world+fakes loaded: rss ${rss()} MB, maxrss ${maxRss()} MB`);
}
const fakesBefore = child ? await child.request<FakesStats>({ type: 'stats' }) : undefined;
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const scratch = await freshDb(kind === 'pglite' ? 'pglite' : 'postgres', pgUrl, 'prof');
const db = scratch.ref.dataDir !== undefined ? await openDb({ dataDir: scratch.ref.dataDir }) : await openDb({ url: scratch.ref.url!, poolMax: 10 });
await migrateUp(db);
const { config, env } = demoConfigFor(endpoints, firstIssuedAt, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
const times = new Map<string, { start: number; last: number; pages: number; records: number }>();
let prev = Date.now();
const t0 = Date.now();
await syncConnections({
  db, config, log, env,
  onProgress: (e) => {
    const k = `${e.connection}/${e.stream}`;
    const now = Date.now();
    const cur = times.get(k) ?? { start: prev, last: prev, pages: 0, records: 0 };
    cur.last = now; cur.pages = e.pages; cur.records = e.records;
    times.set(k, cur);
    prev = now;
  },
});
const syncMs = Date.now() - t0;
const fakesAfterSync = child ? await child.request<FakesStats>({ type: 'stats' }) : undefined;
const byPath = new Map<string, number>();
if (fakes) for (const r of fakes.stripe.requests) byPath.set(r.path.replace(/\/v1\/([a-z_]+)\/.*/, '/v1/$1/:id'), (byPath.get(r.path.replace(/\/v1\/([a-z_]+)\/.*/, '/v1/$1/:id')) ?? 0) + 1);
console.error('stripe requests', JSON.stringify(fakes ? Object.fromEntries(byPath) : fakesAfterSync!.stripe_paths));
for (const [k, v] of times) console.error(`${k.padEnd(40)} ${((v.last - v.start) / 1000).toFixed(2).padStart(7)} s  pages ${v.pages}  records ${v.records}`);
console.error(`sync ${(syncMs / 1000).toFixed(2)} s, rss ${rss()} MB, maxrss ${maxRss()} MB`);
let t = Date.now();
await computeAndStore(db, config, NOW);
console.error(`compute ${((Date.now() - t) / 1000).toFixed(2)} s, rss ${rss()} MB, maxrss ${maxRss()} MB`);
t = Date.now();
await runReconciliation({ db, config, log }, { now: NOW });
console.error(`reconcile ${((Date.now() - t) / 1000).toFixed(2)} s, rss ${rss()} MB, maxrss ${maxRss()} MB${outOfProcess ? ' (pipeline only)' : ' (pipeline + world + fakes)'}`);
await db.destroy();
await scratch.drop();
if (child) {
  const s = fakesAfterSync!;
  console.error(`fakes process: cpu ${(s.cpu_s - fakesBefore!.cpu_s).toFixed(2)} s during the sync for ${Object.values(s.requests).reduce((a, b) => a + b, 0)} requests ${JSON.stringify(s.requests)}, maxrss ${s.max_rss_mb} MB`);
  child.proc.send({ type: 'close' });
  await child.exited.catch(() => undefined);
}
await fakes?.close();
