// The embedded database has no autovacuum and no checkpointer: after a job, tables past autovacuum's
// default threshold are vacuumed (a table re-stamped run after run stops growing) and WAL is
// checkpointed once 64 MB were written (so it is recycled instead of piling up). PostgreSQL is left
// to its own autovacuum and checkpointer.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDb, usingPostgres } from '../helpers/db.ts';
import { maintainEmbedded } from '../../src/db/embedded-maintenance.ts';
import { openDb } from '../../src/db/connection.ts';
import { main } from '../../src/cli/main.ts';
import { generateWorld } from '../../src/world/generate.ts';
import { demoConfig, loadWorld, startFakes, type Fakes } from '../../src/world/fakes.ts';
import { captureCliOutput } from '../helpers/cli-output.ts';

const KEYS = 2000;

describe('maintainEmbedded', () => {
  const t = useTestDb();

  async function seed(): Promise<void> {
    await t.db.raw(
      `INSERT INTO stream_keys (connection, stream, external_id, record_at, last_seen_at, hash)
       SELECT 'toy', 'items', 'k' || g, now(), now(), md5(g::text) FROM generate_series(1, ?) g`,
      [KEYS],
    );
  }
  /** A re-stamp of every key, as a look-back sweep makes. */
  const stamp = (): Promise<unknown> => t.db.raw(`UPDATE stream_keys SET last_seen_at = clock_timestamp() WHERE connection = 'toy'`);
  /** Pending table statistics reach the shared counters (they are otherwise flushed at most every second). */
  const flushStats = async (): Promise<void> => {
    await t.db.raw('SELECT pg_stat_force_next_flush()');
    await t.db.raw('SELECT 1');
  };
  const size = async (): Promise<number> => Number((await t.db.raw(`SELECT pg_total_relation_size('stream_keys') AS b`)).rows[0].b);
  const vacuumed = async (): Promise<string[]> => {
    await flushStats();
    return (await maintainEmbedded(t.db)).vacuumed;
  };
  const walSinceCheckpoint = async (): Promise<number> => Number((await t.db.raw(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::bigint AS b FROM pg_control_checkpoint()`)).rows[0].b);

  it.skipIf(usingPostgres())('vacuums a table past the threshold only, and a re-stamped table stops growing', async () => {
    await seed();
    // Inserts leave no dead rows: nothing to do.
    expect(await vacuumed()).not.toContain('stream_keys');
    await stamp();
    expect(await vacuumed()).toContain('stream_keys');
    expect(await vacuumed()).not.toContain('stream_keys');

    // Ten more re-stamps: with a VACUUM after each, the space of the old versions is reused.
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      await stamp();
      await vacuumed();
      sizes.push(await size());
    }
    // Without it, each re-stamp adds a new version of every row (and index entry): measured here
    // for comparison, on the same table.
    const before = await size();
    for (let i = 0; i < 5; i++) await stamp();
    expect(await size()).toBeGreaterThan(before * 1.5);
    // With it, the table settles within a few pages of its size after the first re-stamp (measured:
    // one 8 kB page more, from the third round on).
    expect(sizes[9]).toBeLessThanOrEqual(sizes[0]! * 1.05);
    expect(sizes[9]).toBe(sizes[5]);
  });

  it.skipIf(usingPostgres())('checkpoints once 64 MB of WAL were written, and not before', async () => {
    await t.db.raw(`CREATE TABLE wal_filler (id int PRIMARY KEY, v text)`);
    await t.db.raw(`INSERT INTO wal_filler SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`);
    await t.db.raw('CHECKPOINT');
    await t.db.raw(`UPDATE wal_filler SET v = v`);
    expect(await walSinceCheckpoint()).toBeLessThan(64 * 1024 * 1024);
    expect((await maintainEmbedded(t.db)).checkpoint).toBe(false);
    while ((await walSinceCheckpoint()) < 64 * 1024 * 1024) await t.db.raw(`UPDATE wal_filler SET v = v`);
    expect((await maintainEmbedded(t.db)).checkpoint).toBe(true);
    expect(await walSinceCheckpoint()).toBeLessThan(1024 * 1024);
    // The WAL kept for reuse is bounded by max_wal_size (96 MB, src/db/connection.ts) plus a segment.
    const kept = Number((await t.db.raw(`SELECT sum(size)::bigint AS b FROM pg_ls_waldir()`)).rows[0].b);
    expect(kept).toBeLessThanOrEqual(112 * 1024 * 1024);
  });

  it.runIf(usingPostgres())('leaves PostgreSQL to its autovacuum and checkpointer', async () => {
    await seed();
    await stamp();
    await flushStats();
    expect(await maintainEmbedded(t.db)).toEqual({ vacuumed: [], checkpoint: false });
  });
});

// A cron-driven CLI command (say `commission-sync sync` every hour) on a PGlite directory runs neither
// the main job nor the scheduler, so the command itself must leave the database maintained. PGlite
// keeps no table statistics across a close, so what is checked is what VACUUM leaves in the catalog:
// pages marked all-visible (pg_class.relallvisible), which only VACUUM sets.
describe.skipIf(usingPostgres())('CLI commands on the embedded database', () => {
  let fakes: Fakes;
  let dir: string;
  let cfgFile: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    const world = generateWorld({ size: 200, seed: 11, asOf: new Date(Date.now() - 86_400_000) });
    fakes = await startFakes();
    loadWorld(fakes, world);
    dir = mkdtempSync(path.join(tmpdir(), 'cs-maint-cli-'));
    const setup = demoConfig(fakes, world, { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
    env = setup.env as Record<string, string>;
    cfgFile = path.join(dir, 'config.json');
    writeFileSync(cfgFile, JSON.stringify(setup.config));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    process.exitCode = undefined;
    await fakes?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const cli = (db: string, ...args: string[]): Promise<number> => main(['node', 'commission-sync', '--config', cfgFile, '--db', db, '--log-level', 'silent', ...args]);
  const allVisiblePages = async (db: string, table: string): Promise<number> => {
    const h = await openDb({ dataDir: db });
    try {
      return Number((await h.raw(`SELECT relallvisible FROM pg_class WHERE relname = ?`, [table])).rows[0].relallvisible);
    } finally {
      await h.destroy();
    }
  };

  it('`sync` vacuums what it left dead before it closes', async () => {
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    captureCliOutput();
    const db = path.join(dir, 'pglite');
    expect(await cli(db, 'sync', '--no-progress')).toBe(0);
    // Every PartnerStack reward vanishes from the API: the next sweep marks each deleted, one row
    // update (and one dead row version) per key in stream_keys and in network_commissions.
    const rewards = [...fakes.partnerstack.store.rewards.keys()];
    expect(rewards.length).toBeGreaterThan(60);
    for (const key of rewards) fakes.partnerstack.store.remove('rewards', key);
    expect(await cli(db, 'sync', '--no-progress', '--sweep')).toBe(0);
    const h = await openDb({ dataDir: db });
    try {
      expect(Number((await h.raw(`SELECT count(*) AS n FROM stream_keys WHERE stream = 'rewards' AND deleted_at IS NOT NULL`)).rows[0].n)).toBe(rewards.length);
    } finally {
      await h.destroy();
    }
    expect(await allVisiblePages(db, 'stream_keys')).toBeGreaterThan(0);
  }, 120_000);
});
