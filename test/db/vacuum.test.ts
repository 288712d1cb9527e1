import { describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { openDb } from '../../src/db/connection.ts';
import { usingPostgres, useTestDb, waitForOlderTransactions } from '../helpers/db.ts';
import { tablesToVacuum, vacuumFreshTables } from '../../src/db/vacuum.ts';

const names = async (db: Knex, minPages = 64): Promise<string[]> => (await tablesToVacuum(db, minPages)).map((c) => c.name);

/** Pages of the table's file, and how many of them the visibility map marks all-visible (per pg_class). */
async function visibility(db: Knex, table: string): Promise<{ pages: number; allVisible: number }> {
  const r = await db.raw(
    `SELECT (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::int AS pages, c.relallvisible AS all_visible
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() AND c.relname = ?`,
    [table],
  );
  const row = (r.rows as Array<{ pages: number; all_visible: number }>)[0]!;
  return { pages: Number(row.pages), allVisible: Number(row.all_visible) };
}

/** ~250 pages filled in one go and never vacuumed (no autovacuum race on a server). `name` is an SQL identifier. */
async function filledTable(db: Knex, name: string, from = 1, to = 20_000): Promise<void> {
  await db.raw(`CREATE TABLE IF NOT EXISTS ${name} (id bigint PRIMARY KEY, filler text NOT NULL) WITH (autovacuum_enabled = false)`);
  await db.raw(`INSERT INTO ${name} SELECT g, repeat('x', 60) FROM generate_series(?::int, ?::int) g`, [from, to]);
  await waitForOlderTransactions(db);
}

describe('VACUUM of tables a run filled in bulk (vacuum.ts)', () => {
  const t = useTestDb();

  it('vacuums a freshly filled table once: its pages become all-visible and it is not chosen again until about half of it is new', async () => {
    await filledTable(t.db, 'filled');
    const before = await visibility(t.db, 'filled');
    expect(before.pages).toBeGreaterThan(200);
    expect(before.allVisible).toBe(0);
    // Analyzing does not make a table all-visible (the planner-stats check runs first in a stage).
    await t.db.raw('ANALYZE filled');
    expect(await names(t.db)).toEqual(['filled']);

    const res = await vacuumFreshTables(t.db, { minPages: 64 });
    expect(res).toEqual({ vacuumed: ['filled'], incomplete: [], failed: [] });
    const after = await visibility(t.db, 'filled');
    expect(after.allVisible).toBeGreaterThanOrEqual(after.pages - 1);
    expect(await names(t.db)).toEqual([]);

    // Grown by a third: still mostly all-visible, left alone.
    await filledTable(t.db, 'filled', 20_001, 30_000);
    expect(await names(t.db)).toEqual([]);
    // More than doubled since: chosen again.
    await filledTable(t.db, 'filled', 30_001, 50_000);
    expect(await names(t.db)).toEqual(['filled']);
  });

  it('leaves small tables and raw_records (written, never read by the pipeline) to autovacuum', async () => {
    await filledTable(t.db, 'small', 1, 2_000);
    await t.db.raw(`INSERT INTO raw_records (connection, stream, external_id, hash, payload) SELECT 'c', 's', g::text, md5(g::text), '{}'::jsonb FROM generate_series(1, 20000) g`);
    expect((await visibility(t.db, 'raw_records')).pages).toBeGreaterThan(64);
    expect(await names(t.db)).toEqual([]);
    expect(await vacuumFreshTables(t.db, { minPages: 64 })).toEqual({ vacuumed: [], incomplete: [], failed: [] });
  });

  it('quotes a table name that needs it, stops between tables once aborted, and does nothing with a transaction handle', async () => {
    await filledTable(t.db, '"Mixed Case"');
    await filledTable(t.db, 'plain');
    expect(await names(t.db)).toEqual(['Mixed Case', 'plain']);
    const ac = new AbortController();
    ac.abort();
    expect(await vacuumFreshTables(t.db, { minPages: 64, signal: ac.signal })).toEqual({ vacuumed: [], incomplete: [], failed: [] });
    // VACUUM cannot run inside a transaction block: best effort, so no throw and nothing done.
    expect(await t.db.transaction((trx) => vacuumFreshTables(trx, { minPages: 64 }))).toEqual({ vacuumed: [], incomplete: [], failed: [] });
    expect(await names(t.db)).toEqual(['Mixed Case', 'plain']);
    expect(await vacuumFreshTables(t.db, { minPages: 64 })).toEqual({ vacuumed: ['Mixed Case', 'plain'], incomplete: [], failed: [] });
    expect((await visibility(t.db, 'Mixed Case')).allVisible).toBeGreaterThan(200);
  });

  // A second session on the same database: PostgreSQL only (PGlite has one).
  (usingPostgres() ? it : it.skip)('reports a table an older open snapshot kept from becoming all-visible, and does not re-read it on the next run', async () => {
    const other = await openDb({ url: t.url!, poolMax: 1 });
    try {
      const trx = await other.transaction({ isolationLevel: 'repeatable read' });
      await trx.raw('SELECT 1'); // takes the snapshot: rows inserted after it are not yet visible to everyone
      await t.db.raw(`CREATE TABLE held (id bigint PRIMARY KEY, filler text NOT NULL) WITH (autovacuum_enabled = false)`);
      await t.db.raw(`INSERT INTO held SELECT g, repeat('x', 60) FROM generate_series(1, 20000) g`);
      expect(await vacuumFreshTables(t.db, { minPages: 64 })).toEqual({ vacuumed: [], incomplete: ['held'], failed: [] });
      expect((await visibility(t.db, 'held')).allVisible).toBe(0);
      // Still a candidate, but this handle waits before reading it again (the snapshot may be long-lived).
      expect(await names(t.db)).toEqual(['held']);
      expect(await vacuumFreshTables(t.db, { minPages: 64 })).toEqual({ vacuumed: [], incomplete: [], failed: [] });
      await trx.rollback();
    } finally {
      await other.destroy();
    }
  });
});
