// Connections side by side: a network connection starts reading while billing still syncs, but none
// of its batches commits before every billing connection has finished, and the database ends the
// same as a sync of one connection at a time (sync.concurrency 1, no overlap at all).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { generateWorld } from '../../src/world/generate.ts';
import { demoConfig, loadWorld, startFakes, type Fakes } from '../../src/world/fakes.ts';
import { canonicalDump } from '../../src/world/canonical.ts';
import { syncConnections } from '../../src/sync/run-connections.ts';
import type { ProgressEvent } from '../../src/sync/engine.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { World } from '../../src/world/build.ts';

// A world up to yesterday, synced on the wall clock: sync_runs.started_at is then the real start time.
const NOW = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) - 86_400_000);
const log = createLogger({ level: 'silent', format: 'json' });
const BILLING = new Set(['stripe', 'chargebee']);

let world: World;
let fakes: Fakes;
const dbs: TestDb[] = [];

beforeAll(async () => {
  world = generateWorld({ size: 120, seed: 7, asOf: NOW });
  fakes = await startFakes();
  loadWorld(fakes, world);
});
afterAll(async () => {
  for (const d of dbs) await d.destroy();
  await fakes?.close();
});

async function syncWith(concurrency: number): Promise<{ db: TestDb; progress: ProgressEvent[] }> {
  const db = await createTestDb();
  dbs.push(db);
  const { config, env } = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] }, sync: { concurrency } } });
  const progress: ProgressEvent[] = [];
  const results = await syncConnections({ db: db.db, config, log, env, onProgress: (e) => progress.push(e) });
  expect(results.map((r) => [r.connection, r.status])).toEqual(config.connections.map((c) => [c.name, 'succeeded']));
  return { db, progress };
}

describe('syncConnections', () => {
  it('overlaps network reads with billing, commits networks after billing, and stores what a serial sync stores', async () => {
    const serial = await syncWith(1);
    const side = await syncWith(5);
    // Progress is reported after each commit: every billing commit comes before any network one.
    const firstNetwork = side.progress.findIndex((e) => !BILLING.has(e.connection));
    const lastBilling = side.progress.findLastIndex((e) => BILLING.has(e.connection));
    expect(firstNetwork).toBeGreaterThan(lastBilling);
    // The network connections started (their sync_runs rows) before billing had finished.
    const runs = await side.db.db('sync_runs').select<Array<{ connection: string; started_at: Date; finished_at: Date }>>('connection', 'started_at', 'finished_at');
    const billingEnd = Math.max(...runs.filter((r) => BILLING.has(r.connection)).map((r) => new Date(r.finished_at).getTime()));
    const networkStarts = runs.filter((r) => !BILLING.has(r.connection)).map((r) => new Date(r.started_at).getTime());
    expect(networkStarts).toHaveLength(3);
    for (const s of networkStarts) expect(s).toBeLessThan(billingEnd);
    expect(await canonicalDump(side.db.db)).toEqual(await canonicalDump(serial.db.db));
  }, 120_000);
});
