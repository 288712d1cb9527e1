// Where the embedded database's memory goes while it migrates: a fresh on-disk PGlite directory
// (initialised as openDb does), then every migration statement in order, with the process RSS and
// PGlite's WASM heap after each. The statements that grow them are printed.
//
//   [COMMISSION_SYNC_PGLITE_OPTIMIZE=1] node bench/pglite-memory.ts [--top 15] [--all]
//
// The WASM tiering is chosen as openDb chooses it (src/db/connection.ts, chooseWasmTiering).
// Finding (Node 24, PGlite 0.5): the WASM heap stays at 189 MB. With V8's default tiering
// (COMMISSION_SYNC_PGLITE_OPTIMIZE=1) the process peak (~870 MB, RSS ~390 MB after) comes from V8
// compiling PGlite's hot WASM functions with its optimizing compiler during the first migration's DDL;
// on the baseline compiler alone (the default since the flags are set at runtime) the peak is ~290 MB.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import { chooseWasmTiering, initPgliteDir } from '../src/db/connection.ts';
import { migrations } from '../migrations/index.ts';

const args = process.argv.slice(2);
const top = Number(args[args.indexOf('--top') + 1] || 15);
const mb = (b: number): number => Math.round(b / 1048576);
const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-pglite-mem-')), 'pglite');
const rss = (): number => mb(process.memoryUsage().rss);
try {
  const r0 = rss();
  mkdirSync(dir);
  await initPgliteDir(dir);
  const tiering = chooseWasmTiering();
  const pglite = new PGlite({ dataDir: dir });
  await pglite.waitReady;
  const heap = (): number => mb((pglite as unknown as { Module: { HEAPU8: Uint8Array } }).Module.HEAPU8.length);
  console.log(`wasm tiering: ${tiering}; start rss ${r0} MB; after open: rss ${rss()} MB, wasm heap ${heap()} MB, maxRSS ${mb(process.resourceUsage().maxRSS * 1024)} MB`);
  const db: Knex = knexFactory({ client: ClientPgLite as unknown as typeof knexFactory.Client, dialect: 'postgres', connection: () => ({ pglite }) as object } as Knex.Config);
  const maxRss = (): number => mb(process.resourceUsage().maxRSS * 1024);
  const rows: Array<{ migration: string; sql: string; ms: number; rss: number; drss: number; heap: number; dheap: number; max: number; dmax: number }> = [];
  let lastMax = maxRss();
  let current = '';
  let t = 0;
  let lastRss = rss();
  let lastHeap = heap();
  db.on('query', () => {
    t = performance.now();
  });
  db.on('query-response', (_r: unknown, q: { sql: string }) => {
    const r = rss();
    const h = heap();
    const m = maxRss();
    rows.push({ migration: current, sql: q.sql.replace(/\s+/g, ' ').slice(0, 110), ms: Math.round(performance.now() - t), rss: r, drss: r - lastRss, heap: h, dheap: h - lastHeap, max: m, dmax: m - lastMax });
    lastMax = m;
    lastRss = r;
    lastHeap = h;
  });
  for (const m of migrations) {
    current = m.name;
    await m.up(db);
    console.log(`${m.name.padEnd(34)} rss ${rss()} MB, wasm heap ${heap()} MB, maxRSS ${mb(process.resourceUsage().maxRSS * 1024)} MB`);
  }
  console.log(`\ntop ${top} statements by peak RSS growth (then wasm heap, RSS):`);
  for (const r of [...rows].sort((a, b) => b.dmax - a.dmax || b.dheap - a.dheap || b.drss - a.drss).slice(0, top)) console.log(`${String(r.dmax).padStart(5)} MB peak ${String(r.dheap).padStart(5)} MB heap ${String(r.drss).padStart(5)} MB rss ${String(r.ms).padStart(5)} ms  ${r.migration}: ${r.sql}`);
  if (args.includes('--all')) for (const r of rows) console.log(JSON.stringify(r));
  await db.destroy(); // closes the PGlite instance too
} finally {
  rmSync(path.dirname(dir), { recursive: true, force: true });
}
