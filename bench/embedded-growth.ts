// Does an embedded (PGlite) database grow run after run? The demo world (2k payments, seed 42) is
// synced once, then the main job runs N more times in this one process, as `serve` would, each a
// forced look-back sweep by default (every key re-stamped: the worst case). After each run: the data
// directory's size, the largest tables' sizes and their live/dead rows, and stepMs.maintenance
// (src/db/embedded-maintenance.ts).
//
//   node bench/embedded-growth.ts [runs=40] [--tails]      # --tails: normal runs (48 h tail) instead of sweeps
//
// bench/README (eighth round) has the measurement before and after the maintenance step.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateWorld } from '../src/world/generate.ts';
import { demoConfig, loadWorld, startFakes } from '../src/world/fakes.ts';
import { runMainJob } from '../src/jobs/main-job.ts';
import { createLogger } from '../src/log/logger.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { withForcedSweep } from '../src/sync/lookback.ts';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => !a.startsWith('--')) ?? 40);
const sweep = !args.includes('--tails');
const NOW = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) - 86_400_000);
const TABLES = ['stream_keys', 'raw_records', 'billing_events', 'network_commissions', 'computed_commissions', 'discrepancies'];
const log = createLogger({ level: 'silent', format: 'json' });

const world = generateWorld({ size: 2000, seed: 42, asOf: NOW });
const fakes = await startFakes();
loadWorld(fakes, world);
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-growth-'));
const dataDir = path.join(dir, 'pglite');
const db = await openDb({ dataDir });
try {
  await migrateUp(db);
  const setup = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
  const dirMb = (): number => Number(execFileSync('du', ['-sk', dataDir]).toString().split('\t')[0]) / 1024;
  for (let i = 0; i <= runs; i++) {
    // Run 0 is the first import; the later ones re-read what is there.
    const config = sweep && i > 0 ? withForcedSweep(setup.config) : setup.config;
    const t = Date.now();
    const s = await runMainJob({ db, config, log, env: setup.env }, { now: NOW });
    const res = await db.raw(
      `SELECT s.relname, pg_total_relation_size(s.relid) AS bytes, s.n_live_tup, s.n_dead_tup
         FROM pg_stat_user_tables s WHERE s.relname = ANY(?::text[]) ORDER BY s.relname`,
      [TABLES],
    );
    const tables = (res.rows as Array<{ relname: string; bytes: string; n_live_tup: string; n_dead_tup: string }>).map((r) => `${r.relname} ${(Number(r.bytes) / 1048576).toFixed(1)} MB ${r.n_live_tup}/${r.n_dead_tup}`);
    console.log(`run ${i} ${s.ok ? 'ok' : 'FAILED'} ${Date.now() - t} ms, maintenance ${s.stepMs.maintenance ?? 0} ms, directory ${dirMb().toFixed(1)} MB | ${tables.join(' | ')}`);
  }
} finally {
  await db.destroy();
  await fakes.close();
  rmSync(dir, { recursive: true, force: true });
}
