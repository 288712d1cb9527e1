// Benchmark: generated worlds through the real pipeline (fakes over HTTP → sync → compute →
// reconcile), per stage and end to end, with peak RSS, on PGlite and PostgreSQL; raw COPY of the same
// canonical rows as the physical-limit baseline (ratio reported in the same run); an incremental run
// after 1k new events on top of the largest world. Results: bench/results/<timestamp>.json.
//
//   npm run bench                                  # 10k payments, both databases
//   npm run bench -- --sizes 10000,100000          # more sizes
//   npm run bench -- --full                        # 10k, 100k and 1M
//   npm run bench -- --db pglite|postgres|both     # PostgreSQL: DATABASE_URL, else postgres@127.0.0.1
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import { generateScenario } from '../src/world/generate.ts';
import { buildWorld, type World } from '../src/world/build.ts';
import { demoConfig, loadWorld, startFakes, type Fakes } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { migrateUp } from '../src/db/migrate.ts';
import { syncConnections } from '../src/sync/run-connections.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { runReconciliation } from '../src/reconcile/run.ts';
import { runMainJob } from '../src/jobs/main-job.ts';
import { createLogger } from '../src/log/logger.ts';
import type { Scenario } from '../src/world/schema.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (flag('sizes') ?? (args.includes('--full') ? '10000,100000,1000000' : '10000')).split(',').map(Number);
const which = flag('db') ?? 'both';
const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const log = createLogger({ level: 'silent', format: 'json' });
const NOW = new Date(Date.UTC(2025, 6, 1));

const rssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const secs = (ms: number): number => Math.round(ms) / 1000;

async function freshDb(kind: 'pglite' | 'postgres'): Promise<{ db: Knex; url?: string; drop(): Promise<void> }> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-bench-'));
    const db = await openDb({ dataDir: dir });
    return { db, drop: () => db.destroy() };
  }
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const admin = await openDb({ url: pgUrl, poolMax: 1 });
  await admin.raw(`CREATE SCHEMA "${schema}"`);
  await admin.destroy();
  const u = new URL(pgUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  const db = await openDb({ url: u.toString(), poolMax: 10 });
  return {
    db,
    url: u.toString(),
    drop: async () => {
      await db.destroy();
      const a = await openDb({ url: pgUrl, poolMax: 1 });
      await a.raw(`DROP SCHEMA "${schema}" CASCADE`);
      await a.destroy();
    },
  };
}

/** Raw COPY of the same canonical rows (billing_events + network_commissions) into empty tables. */
async function copyBaseline(db: Knex, kind: 'pglite' | 'postgres', url: string | undefined): Promise<{ rows: number; ms: number }> {
  const be = (await db.raw(`SELECT connection, billing_system, kind, external_id, document_id, occurred_at, amount_minor, currency, amount_usd_minor, classification FROM billing_events`)).rows as Array<Record<string, unknown>>;
  const nc = (await db.raw(`SELECT connection, network, external_id, amount_minor, currency, status, occurred_at, transaction_key FROM network_commissions`)).rows as Array<Record<string, unknown>>;
  const csv = (rows: Array<Record<string, unknown>>): string => rows.map((r) => Object.values(r).map((v) => (v === null ? '' : v instanceof Date ? v.toISOString() : `"${String(v).replace(/"/g, '""')}"`)).join(',')).join('\n') + '\n';
  const beCsv = csv(be);
  const ncCsv = csv(nc);
  const ddl = `CREATE TABLE be_copy (connection text, billing_system text, kind text, external_id text, document_id text, occurred_at timestamptz, amount_minor bigint, currency char(3), amount_usd_minor bigint, classification text);
               CREATE TABLE nc_copy (connection text, network text, external_id text, amount_minor bigint, currency char(3), status text, occurred_at timestamptz, transaction_key text);`;
  if (kind === 'postgres') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-copy-'));
    writeFileSync(path.join(dir, 'be.csv'), beCsv);
    writeFileSync(path.join(dir, 'nc.csv'), ncCsv);
    const schema = new URL(url!).searchParams.get('options')!.replace('-c search_path=', '');
    const script = `SET search_path=${schema}; DROP TABLE IF EXISTS be_copy, nc_copy; ${ddl}\n\\copy be_copy FROM '${dir}/be.csv' CSV\n\\copy nc_copy FROM '${dir}/nc.csv' CSV\n`;
    const t = Date.now();
    const p = spawnSync('psql', [pgUrl, '-q', '-v', 'ON_ERROR_STOP=1'], { input: script, encoding: 'utf8' });
    const ms = Date.now() - t;
    if (p.status !== 0) throw new Error(`psql COPY failed: ${p.stderr}`);
    return { rows: be.length + nc.length, ms };
  }
  const pg = await PGlite.create();
  await pg.exec(ddl);
  const t = Date.now();
  await pg.query(`COPY be_copy FROM '/dev/blob' CSV`, [], { blob: new Blob([beCsv]) });
  await pg.query(`COPY nc_copy FROM '/dev/blob' CSV`, [], { blob: new Blob([ncCsv]) });
  const ms = Date.now() - t;
  await pg.close();
  return { rows: be.length + nc.length, ms };
}

/** 1k new events: new customers of existing affiliates, one payment each on the world's last day. */
function withNewEvents(s: Scenario, n: number): Scenario {
  const aff = s.affiliates.filter((a) => !!(a.accounts.partnerstack ?? a.accounts.shareasale ?? a.accounts.awin));
  const at = new Date(NOW.getTime() - 6 * 3_600_000);
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

async function benchOne(size: number, kind: 'pglite' | 'postgres', incremental: boolean): Promise<Record<string, unknown>> {
  const r: Record<string, unknown> = { size, database: kind };
  let t = Date.now();
  const scenario = generateScenario({ size, seed: 1, asOf: NOW });
  const world: World = buildWorld(scenario, { asOf: NOW });
  r.payments = world.payments.length;
  r.network_reports = world.reports.length;
  r.generate_s = secs(Date.now() - t);
  t = Date.now();
  const fakes: Fakes = await startFakes();
  loadWorld(fakes, world);
  r.load_fakes_s = secs(Date.now() - t);
  const d = await freshDb(kind);
  try {
    await migrateUp(d.db);
    const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
    const t0 = Date.now();
    t = Date.now();
    const results = await syncConnections({ db: d.db, config, log, env });
    const syncMs = Date.now() - t;
    const records = results.reduce((a, x) => a + Object.values(x.streams).reduce((b, s) => b + s.records, 0), 0);
    const failed = results.filter((x) => x.status !== 'succeeded').map((x) => `${x.connection}: ${x.error}`);
    t = Date.now();
    await computeAndStore(d.db, config, NOW);
    const computeMs = Date.now() - t;
    t = Date.now();
    await runReconciliation({ db: d.db, config, log }, { now: NOW });
    const reconcileMs = Date.now() - t;
    const e2eMs = Date.now() - t0;
    const canonical = Number(((await d.db.raw(`SELECT (SELECT count(*) FROM billing_events) + (SELECT count(*) FROM network_commissions) AS n`)).rows[0] as { n: string }).n);
    const computed = Number(((await d.db.raw(`SELECT count(*) AS n FROM computed_commissions`)).rows[0] as { n: string }).n);
    r.sync_errors = failed;
    r.stages = {
      sync: { seconds: secs(syncMs), api_records: records, canonical_rows: canonical, rows_per_s: Math.round(canonical / (syncMs / 1000)) },
      compute: { seconds: secs(computeMs), commissions: computed, payments_per_s: Math.round(world.payments.length / (computeMs / 1000)) },
      reconcile: { seconds: secs(reconcileMs), payments_per_s: Math.round(world.payments.length / (reconcileMs / 1000)) },
    };
    r.end_to_end = { seconds: secs(e2eMs), payments_per_s: Math.round(world.payments.length / (e2eMs / 1000)) };
    const copy = await copyBaseline(d.db, kind, d.url);
    const copyRate = copy.rows / (copy.ms / 1000);
    r.copy_baseline = { rows: copy.rows, seconds: secs(copy.ms), rows_per_s: Math.round(copyRate), ingest_to_copy_ratio: Math.round((canonical / (syncMs / 1000) / copyRate) * 10_000) / 10_000 };
    if (incremental) {
      const w2 = buildWorld(withNewEvents(scenario, 1000), { asOf: NOW });
      loadWorld(fakes, w2);
      // The incremental run uses PartnerStack's normal 60-day look-back (the first run read all history).
      for (const c of config.connections) if (c.type === 'partnerstack') c.options = { ...c.options, lookbackDays: 60 };
      t = Date.now();
      const s = await runMainJob({ db: d.db, config, log, env }, { now: NOW });
      r.incremental_1k = { seconds: secs(Date.now() - t), ok: s.ok, new_payments: w2.payments.length - world.payments.length, errors: s.errors };
    }
    r.peak_rss_mb = rssMb();
  } finally {
    await d.drop();
    await fakes.close();
  }
  return r;
}

const out: Record<string, unknown> = { started: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, sizes, runs: [] as unknown[] };
const kinds: Array<'pglite' | 'postgres'> = which === 'both' ? ['pglite', 'postgres'] : [which as 'pglite' | 'postgres'];
const largest = Math.max(...sizes);
for (const kind of kinds) {
  for (const size of sizes) {
    process.stderr.write(`bench: ${size} payments on ${kind} …\n`);
    const r = await benchOne(size, kind, size === largest);
    (out.runs as unknown[]).push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
}
mkdirSync('bench/results', { recursive: true });
const file = path.join('bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`${file}\n`);
