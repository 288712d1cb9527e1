// A fresh, migrated database per test: in-memory PGlite by default; a private schema on the
// PostgreSQL server named by TEST_DATABASE_URL when set (so parallel test files never collide).
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { openDb } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';

export interface TestDb {
  db: Knex;
  kind: 'postgres' | 'pglite';
  /** Re-opens a second handle on the same database (PostgreSQL only; PGlite returns the same). */
  url: string | undefined;
  schema: string | undefined;
  destroy(): Promise<void>;
}

export const usingPostgres = (): boolean => !!process.env.TEST_DATABASE_URL;

export async function createTestDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = await openDb({ url, poolMax: 1 });
    await admin.raw(`CREATE SCHEMA "${schema}"`);
    await admin.destroy();
    const db = await openDb({ url: withSearchPath(url, schema), poolMax: 5 });
    if (opts.migrate !== false) await migrateUp(db);
    return {
      db,
      kind: 'postgres',
      url: withSearchPath(url, schema),
      schema,
      destroy: async () => {
        await db.destroy();
        const a = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
        await a.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await a.destroy();
      },
    };
  }
  const db = await openDb({ url: 'memory://' });
  if (opts.migrate !== false) await migrateUp(db);
  return { db, kind: 'pglite', url: undefined, schema: undefined, destroy: () => db.destroy() };
}

/** libpq `options=-c search_path=…` so every pooled connection lands in the test schema. */
function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}
