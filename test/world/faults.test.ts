// Fault harness. A world synced through fault-injecting proxies (~10% of requests: 503, 429 with
// Retry-After, latency, truncated bodies, reset connections) ends with the same canonical tables as
// a clean run; so does a `run` killed with SIGKILL at random points and re-run; two concurrent
// `run`s never push a correction twice (PostgreSQL only).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, usingPostgres, type TestDb } from '../helpers/db.ts';
import { generateWorld } from '../../src/world/generate.ts';
import { demoConfig, loadWorld, startFakes, type Fakes } from '../../src/world/fakes.ts';
import { startFaultProxy, type FaultProxy } from '../../src/world/faults.ts';
import { canonicalDump } from '../../src/world/canonical.ts';
import { runMainJob } from '../../src/jobs/main-job.ts';
import { createLogger } from '../../src/log/logger.ts';
import { openDb } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import type { World } from '../../src/world/build.ts';

const NOW = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) - 86_400_000);
const NAMES = ['stripe', 'chargebee', 'partnerstack', 'shareasale', 'awin'] as const;
const log = createLogger({ level: 'silent', format: 'json' });

let world: World;
let fakes: Fakes;
let clean: Record<string, string[]>;
let cleanDb: TestDb;

const baseUrl = (f: Fakes, n: (typeof NAMES)[number]): string => (n === 'chargebee' ? f.chargebee.baseUrl : f[n].url);

beforeAll(async () => {
  world = generateWorld({ size: 250, seed: 99, asOf: NOW });
  fakes = await startFakes();
  loadWorld(fakes, world);
  cleanDb = await createTestDb();
  const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
  const s = await runMainJob({ db: cleanDb.db, config, log, env }, { now: NOW });
  expect(s.errors).toEqual([]);
  clean = await canonicalDump(cleanDb.db);
}, 180_000);
afterAll(async () => {
  await cleanDb?.destroy();
  await fakes?.close();
});

describe('fault harness', () => {
  it('a run at ~10% faults (5xx, 429 + Retry-After, latency, truncated, reset) ends with the same database', async () => {
    const proxies: FaultProxy[] = [];
    const urls: Record<string, string> = {};
    for (const [i, n] of NAMES.entries()) {
      const p = await startFaultProxy(baseUrl(fakes, n), { rate: 0.1, seed: 1000 + i, retryAfterSeconds: 1, latencyMs: 100 });
      proxies.push(p);
      urls[n] = p.url;
    }
    const t = await createTestDb();
    try {
      const { config, env } = demoConfig(fakes, world, { urls, base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
      // A sync that still fails after its retries resumes from its checkpoints on the next run.
      let runs = 0;
      let ok = false;
      while (!ok && runs < 8) {
        runs++;
        const s = await runMainJob({ db: t.db, config, log, env }, { now: NOW });
        ok = s.ok;
        if (process.env.FAULT_DEBUG) console.log(runs, s.errors);
      }
      expect(ok).toBe(true);
      const faults = proxies.reduce((a, p) => a + Object.entries(p.counts).filter(([k]) => k !== 'requests').reduce((x, [, v]) => x + v, 0), 0);
      const requests = proxies.reduce((a, p) => a + (p.counts.requests ?? 0), 0);
      expect(faults / requests).toBeGreaterThan(0.05);
      expect(await canonicalDump(t.db)).toEqual(clean);
    } finally {
      await t.destroy();
      for (const p of proxies) await p.close();
    }
  }, 240_000);

  it('a `run` killed with SIGKILL at random points and re-run ends with the same database', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-kill-'));
    const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
    const cfgFile = path.join(dir, 'config.json');
    writeFileSync(cfgFile, JSON.stringify(config));
    let dbArg: string;
    let pgSchema: TestDb | undefined;
    if (usingPostgres()) {
      pgSchema = await createTestDb();
      dbArg = pgSchema.url!;
    } else dbArg = path.join(dir, 'pglite');
    const run = (killAfterMs?: number): Promise<number | null> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', '--config', cfgFile, '--db', dbArg, '--log-level', 'silent', 'run', '--format', 'json'], {
          env: { ...process.env, ...env, DATABASE_URL: '' },
          stdio: 'ignore',
        });
        const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        child.on('exit', (code) => {
          if (timer) clearTimeout(timer);
          resolve(code);
        });
      });
    try {
      // Deterministic "random" kill points: early (migrations/sync), mid sync, later (compute/reconcile).
      for (const ms of [900, 2500, 4500]) await run(ms);
      let code = await run();
      if (code !== 0) code = await run();
      expect(code).toBe(0);
      const db = pgSchema ? pgSchema.db : await openDb({ dataDir: dbArg });
      try {
        await migrateUp(db);
        const dump = await canonicalDump(db);
        // The child runs on the real clock (statuses reserve → due depend on it): bring the clean
        // database to the same clock (compute + reconcile, no sync) before comparing.
        const { config: c2, env: e2 } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
        await runMainJob({ db: cleanDb.db, config: c2, log, env: e2 }, { now: new Date(), sync: false });
        expect(dump).toEqual(await canonicalDump(cleanDb.db));
      } finally {
        if (!pgSchema) await db.destroy();
      }
    } finally {
      await pgSchema?.destroy();
    }
  }, 240_000);

  // Found by this harness, fixed in src/push/executor.ts: a PostgreSQL advisory lock serializes
  // applying runs and each planned row is claimed conditionally before it is sent.
  (usingPostgres() ? it : it.skip)('two concurrent `run`s never double-push', async () => {
    const t = await createTestDb();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-push-'));
    try {
      const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] }, push: { autoPushKinds: ['missing_in_network', 'amount_mismatch', 'duplicate_in_network', 'status_mismatch'], maxActionsPerRun: 500, maxUsdMinorPerRun: 100_000_000 } } });
      const cfgFile = path.join(dir, 'config.json');
      writeFileSync(cfgFile, JSON.stringify(config));
      const before = fakes.partnerstack.requests.length;
      const sasBefore = fakes.shareasale.store.applied.length;
      const run = (): Promise<number | null> =>
        new Promise((resolve) => {
          const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', '--config', cfgFile, '--db', t.url!, '--log-level', 'silent', 'run'], { env: { ...process.env, ...env }, stdio: 'ignore' });
          child.on('exit', (code) => resolve(code));
        });
      await Promise.all([run(), run()]);
      const posts = fakes.partnerstack.requests.slice(before).filter((r) => r.method === 'POST');
      const bodies = posts.map((p) => `${p.path} ${JSON.stringify(p.body)}`);
      if (process.env.FAULT_DEBUG) console.log(bodies.filter((b, i) => bodies.indexOf(b) !== i).slice(0, 5), posts.length);
      expect(new Set(bodies).size).toBe(bodies.length);
      const applied = fakes.shareasale.store.applied.slice(sasBefore).map((a) => `${a.action}|${a.orderNumber}|${JSON.stringify(a.params)}`);
      expect(new Set(applied).size).toBe(applied.length);
      const sent = (await t.db('corrections').whereIn('status', ['sent', 'confirmed']).select('idempotency_key')) as Array<{ idempotency_key: string }>;
      expect(new Set(sent.map((s) => s.idempotency_key)).size).toBe(sent.length);
      expect(posts.length + applied.length).toBeGreaterThan(0);
    } finally {
      await t.destroy();
    }
  }, 240_000);
});
