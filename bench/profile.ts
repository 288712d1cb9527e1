// Per-stream timing of one sync (+ compute, reconcile) on a generated world: where the time goes.
//   node bench/profile.ts [size] [pglite|postgres]
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { generateScenario } from '../src/world/generate.ts';
import { buildWorld } from '../src/world/build.ts';
import { demoConfig, loadWorld, startFakes } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { syncConnections } from '../src/sync/run-connections.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { runReconciliation } from '../src/reconcile/run.ts';
import { createLogger } from '../src/log/logger.ts';

const size = Number(process.argv[2] ?? 10000);
const kind = process.argv[3] ?? 'pglite';
const NOW = new Date(Date.UTC(2025, 6, 1));
const log = createLogger({ level: 'silent', format: 'json' });
const rss = (): number => Math.round(process.memoryUsage().rss / 1048576);
const world = buildWorld(generateScenario({ size, seed: 1, asOf: NOW }), { asOf: NOW });
const fakes = await startFakes();
loadWorld(fakes, world);
console.error(`world+fakes loaded: rss ${rss()} MB, maxrss ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
let schema = '';
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
let db;
if (kind === 'pglite') db = await openDb({ dataDir: mkdtempSync(path.join(os.tmpdir(), 'cs-prof-')) });
else {
  schema = `prof_${randomBytes(4).toString('hex')}`;
  const a = await openDb({ url: pgUrl, poolMax: 1 });
  await a.raw(`CREATE SCHEMA "${schema}"`);
  await a.destroy();
  const u = new URL(pgUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  db = await openDb({ url: u.toString(), poolMax: 10 });
}
await migrateUp(db);
const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
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
const byPath = new Map<string, number>();
for (const r of fakes.stripe.requests) byPath.set(r.path.replace(/\/v1\/([a-z_]+)\/.*/, '/v1/$1/:id'), (byPath.get(r.path.replace(/\/v1\/([a-z_]+)\/.*/, '/v1/$1/:id')) ?? 0) + 1);
console.error('stripe requests', JSON.stringify(Object.fromEntries(byPath)));
for (const [k, v] of times) console.error(`${k.padEnd(40)} ${((v.last - v.start) / 1000).toFixed(2).padStart(7)} s  pages ${v.pages}  records ${v.records}`);
console.error(`sync ${(syncMs / 1000).toFixed(2)} s, rss ${rss()} MB`);
let t = Date.now();
await computeAndStore(db, config, NOW);
console.error(`compute ${((Date.now() - t) / 1000).toFixed(2)} s, rss ${rss()} MB`);
t = Date.now();
await runReconciliation({ db, config, log }, { now: NOW });
console.error(`reconcile ${((Date.now() - t) / 1000).toFixed(2)} s, rss ${rss()} MB, maxrss ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
await db.destroy();
if (schema) { const a = await openDb({ url: pgUrl, poolMax: 1 }); await a.raw(`DROP SCHEMA "${schema}" CASCADE`); await a.destroy(); }
await fakes.close();
