import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { migrateDown, migrateUp, pendingMigrations } from '../../src/db/migrate.ts';
import { migrations } from '../../migrations/index.ts';

describe('migrations', () => {
  let t: TestDb | undefined;
  afterEach(async () => {
    await t?.destroy();
    t = undefined;
  });

  it('go up, down and up again, and are idempotent', async () => {
    t = await createTestDb({ migrate: false });
    const tables = async () =>
      (await t!.db.raw(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> 'knex_migrations' AND table_name <> 'knex_migrations_lock'`)).rows[0].n as number;
    expect(await migrateUp(t.db)).toEqual(migrations.map((m) => m.name));
    const n = await tables();
    expect(n).toBeGreaterThan(25);
    expect(await migrateUp(t.db)).toEqual([]);
    expect(await pendingMigrations(t.db)).toEqual([]);
    await migrateDown(t.db, true);
    expect(await tables()).toBe(0);
    await migrateUp(t.db);
    expect(await tables()).toBe(n);
  });

  it('an up-to-date database is checked with one read; one recorded migration this build does not know still stops the start', async () => {
    t = await createTestDb({ migrate: false });
    expect(await migrateUp(t.db)).toEqual(migrations.map((m) => m.name));
    const sql: string[] = [];
    const onQuery = (q: { sql: string }): void => {
      sql.push(q.sql);
    };
    t.db.on('query', onQuery);
    expect(await migrateUp(t.db)).toEqual([]);
    t.db.off('query', onQuery);
    expect(sql).toHaveLength(1);
    // A newer build's migration recorded (a downgrade): knex's own check refuses it, as before.
    await t.db('knex_migrations').insert({ name: '999_from_a_newer_build', batch: 99, migration_time: new Date() });
    await expect(migrateUp(t.db)).rejects.toThrow(/999_from_a_newer_build/);
    // One recorded migration missing (a start interrupted between two): it is applied again.
    await t.db('knex_migrations').where({ name: '999_from_a_newer_build' }).delete();
    const last = migrations[migrations.length - 1]!;
    await last.down(t.db);
    await t.db('knex_migrations').where({ name: last.name }).delete();
    expect(await migrateUp(t.db)).toEqual([last.name]);
    expect(await pendingMigrations(t.db)).toEqual([]);
  });

  it('stores money as bigint and refuses unsafe integers on read', async () => {
    t = await createTestDb();
    const big = 9_007_199_254_740_991; // Number.MAX_SAFE_INTEGER
    const r = await t.db.raw(`SELECT ?::bigint AS ok`, [String(big)]);
    expect(r.rows[0].ok).toBe(big);
    await expect(t.db.raw(`SELECT (?::bigint + 1) AS bad`, [String(big)])).rejects.toThrow(/safe integer/);
  });
});
