// The benchmark's fake-API process: generates the world, serves it from the five fakes on loopback
// ports, and answers the benchmark over IPC, so the pipeline process's memory and CPU are its own.
// Forked by bench/fakes-client.ts; not meant to be run by hand.
//
//   → { type: 'start', size, seed, asOf }     ← { type: 'ready', endpoints, firstIssuedAt, payments, …, warm_fakes_s }
//   → { type: 'incremental', n }              ← { type: 'loaded', payments, new_payments, load_s, warm_s }  (n new payments on top of the world)
//
// After every load the fakes' list indexes are built (warm_s, its own figure) before replying, so
// the timed runs do not pay for the fakes sorting their collections on the first list calls (a real
// API does not re-sort its tables because we asked); the fakes' CPU during a run is still reported.
// BENCH_FAKES_WARM=0 skips it (the old behaviour, for A/B comparisons).
//   → { type: 'reset' }                       ← { type: 'loaded', … }  (back to the generated world)
//   → { type: 'stats' }                       ← { type: 'stats', rss_mb, max_rss_mb, cpu_s, gc_s, requests, stripe_paths }
//
// After a load and its warm-up the fakes also run a full garbage collection (gc_s, untimed; forked
// with --expose-gc; BENCH_FAKES_GC=0 skips it): at 1M the fakes hold a ~9 GB heap, and a major GC of
// the load's garbage landing inside a timed run took one of the machine's two cores from it (the
// sixth round's 1M incremental run: 24 s of fakes CPU in a 45 s window). gc_s in `stats` is the
// fakes' cumulative GC pause time, so a window's share of it is reported beside its CPU.
//   → { type: 'close' }                       (closes the fakes and exits)
import { PerformanceObserver } from 'node:perf_hooks';
import { generateScenario } from '../src/world/generate.ts';
import { buildWorld, type World } from '../src/world/build.ts';
import { fakeEndpoints, loadWorld, startFakes, warmFakes, worldFirstIssuedAt, type Fakes } from '../src/world/fakes.ts';
import type { Scenario } from '../src/world/schema.ts';

export type FakesRequest =
  | { type: 'start'; size: number; seed: number; asOf: string }
  | { type: 'incremental'; n: number }
  | { type: 'reset' }
  | { type: 'stats' }
  | { type: 'close' };

const send = (m: unknown): void => {
  process.send!(m);
};
const mb = (bytes: number): number => Math.round(bytes / 1048576);
const secs = (ms: number): number => Math.round(ms) / 1000;

/** n new events: new customers of existing affiliates, one payment each, 6 h before the world's as-of. */
function withNewEvents(s: Scenario, n: number, asOf: Date): Scenario {
  const aff = s.affiliates.filter((a) => !!(a.accounts.partnerstack ?? a.accounts.shareasale ?? a.accounts.awin));
  const at = new Date(asOf.getTime() - 6 * 3_600_000);
  const customers = [...s.customers];
  const subscriptions = [...s.subscriptions];
  for (let i = 0; i < n; i++) {
    const a = aff[i % aff.length]!;
    const network = (Object.keys(a.accounts)[0] ?? 'partnerstack') as 'partnerstack';
    customers.push({ id: `inc${i}`, email: `inc${i}@example.org`, currency: 'USD', billing: i % 4 === 0 ? 'chargebee' : 'stripe', referredBy: { affiliate: a.id, network }, test: false, createdAt: at });
    subscriptions.push({ id: `sinc${i}`, customer: `inc${i}`, interval: 'month', priceMinor: 9900, taxMinor: 0, start: at, cycles: 1 });
  }
  return { ...s, customers, subscriptions };
}

let fakes: Fakes | undefined;
let scenario: Scenario | undefined;
let world: World | undefined;
let asOf = new Date();
const warm = (f: Fakes): void => {
  if (process.env.BENCH_FAKES_WARM !== '0') warmFakes(f);
};
/** A full GC after a load (see the header); resolves with its wall seconds. */
const collect = async (): Promise<number> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || process.env.BENCH_FAKES_GC === '0') return 0;
  const t = Date.now();
  gc();
  const s = secs(Date.now() - t);
  // GC entries reach the observer asynchronously: let them land before the reply, so this pause is
  // not counted in the next timed window.
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
  return s;
};
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

function requestCounts(): Record<string, number> {
  if (!fakes) return {};
  return { stripe: fakes.stripe.requests.length, chargebee: fakes.chargebee.requests.length, partnerstack: fakes.partnerstack.requests.length, shareasale: fakes.shareasale.requests.length, awin: fakes.awin.requests.length };
}

async function onMessage(m: FakesRequest): Promise<void> {
  switch (m.type) {
    case 'start': {
      asOf = new Date(m.asOf);
      let t = Date.now();
      scenario = generateScenario({ size: m.size, seed: m.seed, asOf });
      const generateScenarioMs = Date.now() - t;
      t = Date.now();
      world = buildWorld(scenario, { asOf });
      const buildMs = Date.now() - t;
      t = Date.now();
      fakes = await startFakes();
      loadWorld(fakes, world);
      const loadMs = Date.now() - t;
      t = Date.now();
      warm(fakes);
      const warmMs = Date.now() - t;
      const gcS = await collect();
      send({
        type: 'ready',
        endpoints: fakeEndpoints(fakes),
        firstIssuedAt: worldFirstIssuedAt(world).toISOString(),
        payments: world.payments.length,
        network_reports: world.reports.length,
        generate_s: secs(generateScenarioMs + buildMs),
        generate_scenario_s: secs(generateScenarioMs),
        build_world_s: secs(buildMs),
        load_fakes_s: secs(loadMs),
        warm_fakes_s: secs(warmMs),
        gc_after_load_s: gcS,
        rss_mb: mb(process.memoryUsage().rss),
        max_rss_mb: mb(process.resourceUsage().maxRSS * 1024),
      });
      return;
    }
    case 'incremental':
    case 'reset': {
      const t = Date.now();
      const w = m.type === 'reset' ? world! : buildWorld(withNewEvents(scenario!, m.n, asOf), { asOf });
      loadWorld(fakes!, w);
      const loadS = secs(Date.now() - t);
      const t2 = Date.now();
      warm(fakes!);
      const warmS = secs(Date.now() - t2);
      send({ type: 'loaded', payments: w.payments.length, new_payments: w.payments.length - world!.payments.length, load_s: loadS, warm_s: warmS, gc_s: await collect() });
      return;
    }
    case 'stats': {
      const cpu = process.cpuUsage();
      const stripePaths: Record<string, number> = {};
      for (const r of fakes?.stripe.requests ?? []) {
        const k = r.path.replace(/\/v1\/([a-z_]+)\/.*/, '/v1/$1/:id');
        stripePaths[k] = (stripePaths[k] ?? 0) + 1;
      }
      send({ type: 'stats', rss_mb: mb(process.memoryUsage().rss), max_rss_mb: mb(process.resourceUsage().maxRSS * 1024), cpu_s: secs((cpu.user + cpu.system) / 1000), gc_s: secs(gcMs), requests: requestCounts(), stripe_paths: stripePaths });
      return;
    }
    case 'close':
      await fakes?.close();
      process.exit(0);
  }
}

if (process.send && process.env.BENCH_CHILD === 'fakes') {
  process.on('message', (m: FakesRequest) => {
    onMessage(m).catch((err: unknown) => {
      send({ type: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  });
  // The benchmark went away: do not linger.
  process.on('disconnect', () => {
    void (fakes?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  });
}
