// A fresh, migrated database per test: in-memory PGlite by default; a private schema on the
// PostgreSQL server named by TEST_DATABASE_URL when set (so parallel test files never collide).
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { afterEach, beforeEach } from 'vitest';
import { openDb, pgliteOf } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import { currentTemplateKey } from '../../src/db/pglite-template.ts';

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
  if (opts.migrate === false) {
    const db = await openDb({ url: 'memory://' });
    return { db, kind: 'pglite', url: undefined, schema: undefined, destroy: () => db.destroy() };
  }
  const db = await openDb({ url: 'memory://', loadDataDir: await migratedDump() });
  await migrateUp(db); // a no-op on the dump; kept so a stale dump could never hide a migration
  return { db, kind: 'pglite', url: undefined, schema: undefined, destroy: () => db.destroy() };
}

/**
 * A fresh database per test of the calling describe (or file): registers the beforeEach/afterEach
 * there. The returned handle reads the current test's database, so it can be kept in a `const` and
 * used by helpers declared beside the tests.
 */
export function useTestDb(opts: { migrate?: boolean } = {}): TestDb {
  let current: TestDb | undefined;
  beforeEach(async () => {
    current = await createTestDb(opts);
  });
  afterEach(async () => {
    const t = current;
    current = undefined; // a later read fails loudly instead of reaching a destroyed database
    await t?.destroy();
  });
  const now = (): TestDb => {
    if (!current) throw new Error('useTestDb(): no database outside a test; read it in an it(), beforeEach or afterEach of the describe that called useTestDb()');
    return current;
  };
  return {
    get db() {
      return now().db;
    },
    get kind() {
      return now().kind;
    },
    get url() {
      return now().url;
    },
    get schema() {
      return now().schema;
    },
    destroy: () => now().destroy(),
  };
}

/**
 * A migrated in-memory PGlite database, dumped once per migrations key (src/db/pglite-template.ts)
 * into the temp directory and shared by every test file (each has its own module graph): loading it
 * costs ~0.45 s of CPU, initdb plus every migration in WASM ~2 s, paid by hundreds of tests. The
 * migrations themselves still run from scratch whenever the key changes, and on PostgreSQL always.
 */
let dump: Promise<Blob> | undefined;
function migratedDump(): Promise<Blob> {
  dump ??= (async () => {
    const file = path.join(os.tmpdir(), `commission-sync-test-pglite-${await currentTemplateKey()}.tar`);
    try {
      if (existsSync(file)) return new Blob([readFileSync(file)]);
    } catch {
      // removed by a checkout with other migrations between the check and the read: make our own
    }
    const db = await openDb({ url: 'memory://' });
    await migrateUp(db);
    const blob = await pgliteOf(db)!.dumpDataDir('none');
    await db.destroy();
    // Written aside and renamed: a concurrent test file never reads half a dump.
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, new Uint8Array(await blob.arrayBuffer()));
    renameSync(tmp, file);
    // Older migrations' dumps are of no further use (43 MB each).
    for (const f of readdirSync(os.tmpdir())) {
      if (!/^commission-sync-test-pglite-[0-9a-f]+\.tar$/.test(f) || f === path.basename(file)) continue;
      try {
        rmSync(path.join(os.tmpdir(), f), { force: true });
      } catch {
        // another user's, in a shared temp dir
      }
    }
    return blob;
  })();
  return dump;
}

/** libpq `options=-c search_path=…` so every pooled connection lands in the test schema. */
function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}
