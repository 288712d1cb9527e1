// The demo's work (commission-sync demo): a generated or scenario world served by the five fake APIs
// on loopback ports, the main job into a fresh database, the report; optionally the dashboard on it.
// Loaded by the demo command only, so other commands start without the generator and the fakes.
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { GlobalOptions } from './context.ts';
import type { DemoOptions } from './commands/demo.ts';
import { createProgress } from './progress.ts';
import { createLogger } from '../log/logger.ts';
import { describeDb, openDb } from '../db/connection.ts';
import { migrateUp } from '../db/migrate.ts';
import { runMainJob } from '../jobs/main-job.ts';
import { syncConnections } from '../sync/run-connections.ts';
import { registerSecret } from '../util/secrets.ts';
import { buildWorld, type World } from '../world/build.ts';
import { generateWorld } from '../world/generate.ts';
import { readScenarioFile } from '../world/schema.ts';
import { demoConfig, loadWorld, startFakes } from '../world/fakes.ts';
import { buildReport, renderReport } from '../world/report.ts';

interface DemoDb {
  db: Knex;
  description: string;
  url: string | undefined;
}

/** --db (URL or PGlite dir), else DATABASE_URL (a fresh schema), else a fresh PGlite in a temp dir. */
async function openDemoDb(globals: GlobalOptions, env: NodeJS.ProcessEnv): Promise<DemoDb> {
  const target = globals.db ?? env.DATABASE_URL;
  if (target && /^postgres(ql)?:\/\//.test(target)) {
    const schema = `demo_${new Date().toISOString().slice(0, 10).replace(/-/g, '')}_${randomBytes(3).toString('hex')}`;
    const admin = await openDb({ url: target, poolMax: 1 });
    try {
      await admin.raw(`CREATE SCHEMA "${schema}"`);
    } finally {
      await admin.destroy();
    }
    const u = new URL(target);
    u.searchParams.set('options', `-c search_path=${schema}`);
    const url = u.toString();
    return { db: await openDb({ url, poolMax: 5 }), description: `${describeDb({ url: target })} schema ${schema}`, url };
  }
  if (target === 'memory://') return { db: await openDb({ url: 'memory://' }), description: describeDb({ url: 'memory://' }), url: target };
  const dir = target ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'commission-sync-demo-')), 'pglite');
  return { db: await openDb({ dataDir: dir, migrated: true }), description: describeDb({ dataDir: dir }), url: undefined };
}

export async function runDemo(opts: DemoOptions, globals: GlobalOptions): Promise<void> {
  const env = process.env;
  const say = (msg: string): void => {
    if (opts.progress) process.stderr.write(`${msg}\n`);
  };
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const lap = (name: string, since: number): void => {
    timings[name] = Date.now() - since;
  };
  const now = new Date();

  let t = Date.now();
  const world: World = opts.scenario ? buildWorld(readScenarioFile(opts.scenario), { asOf: now }) : generateWorld({ size: opts.size, seed: opts.seed, asOf: now });
  lap('world', t);
  say(`world: ${world.scenario.name}: ${world.affiliates.size} affiliates, ${world.customers.size} customers, ${world.payments.length} payments, ${world.reports.length} network commissions (${world.injected.length} injected errors)`);

  t = Date.now();
  const fakes = await startFakes();
  const close: Array<() => Promise<void>> = [() => fakes.close()];
  try {
    loadWorld(fakes, world);
    lap('fakes', t);
    say(`fakes: stripe ${fakes.stripe.url}, chargebee ${fakes.chargebee.url}, partnerstack ${fakes.partnerstack.url}, shareasale ${fakes.shareasale.url}, awin ${fakes.awin.url}`);

    t = Date.now();
    const demoDb = await openDemoDb(globals, env);
    close.unshift(() => demoDb.db.destroy());
    await migrateUp(demoDb.db);
    lap('database', t);
    say(`database: ${demoDb.description}`);

    const operatorToken = randomBytes(24).toString('base64url');
    const setup = demoConfig(fakes, world, {
      base: {
        log: { level: (globals.logLevel as 'error' | undefined) ?? 'error', format: 'json' },
        alerts: { sinks: [] },
        server: { host: '127.0.0.1', port: opts.port, tokens: [{ env: 'DEMO_OPERATOR_TOKEN', role: 'operator' }] },
      },
    });
    const privateEnv: NodeJS.ProcessEnv = { ...setup.env, DEMO_OPERATOR_TOKEN: operatorToken };
    for (const v of Object.values(privateEnv)) if (v) registerSecret(v);
    const log = createLogger({ level: setup.config.log.level, format: 'json' });

    const progress = createProgress(opts.progress);
    t = Date.now();
    say('main job: sync → compute → reconcile → alerts …');
    const summary = await runMainJob(
      {
        db: demoDb.db,
        config: setup.config,
        log,
        env: privateEnv,
        syncConnections: (deps, sel) => syncConnections({ ...deps, onProgress: (e) => progress.update(e) }, sel),
      },
      { now },
    );
    progress.stop();
    lap('main_job', t);
    const report = await buildReport(demoDb.db, setup.config, world, summary, { database: demoDb.description, timings, now });
    timings.total = Date.now() - t0;
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : renderReport(report)}\n`);
    if (!summary.ok) process.exitCode = 1;

    if (opts.serve) {
      const { buildServer } = await import('../service/server.ts');
      const { ServiceMetrics } = await import('../service/metrics.ts');
      const { app } = await buildServer({ db: demoDb.db, config: setup.config, log, env: privateEnv, metrics: new ServiceMetrics(demoDb.db) });
      let address: string;
      try {
        address = await app.listen({ host: '127.0.0.1', port: opts.port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        address = await app.listen({ host: '127.0.0.1', port: 0 });
      }
      close.unshift(() => app.close());
      process.stderr.write(`\ndashboard: ${address}/  (operator token: ${operatorToken})\nCtrl-C to stop.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
  } finally {
    for (const c of close) await c().catch(() => undefined);
  }
}
