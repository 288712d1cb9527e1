// On-disk PGlite: a new data directory is initialised in a child process and renamed into place.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initPgliteDir, openDb, PGLITE_SHARED_BUFFERS } from '../../src/db/connection.ts';

const root = mkdtempSync(path.join(tmpdir(), 'cs-pglite-open-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('openDb on a PGlite directory', () => {
  it('initPgliteDir builds the database files in a child process (nothing opened in this one)', async () => {
    const dir = path.join(root, 'child-made');
    mkdirSync(dir);
    await initPgliteDir(dir);
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(dir, 'global', 'pg_control'))).toBe(true);
  }, 120_000);

  it('creates a new directory, keeps what was written across re-opens, and leaves no temp directory', async () => {
    const dir = path.join(root, 'data');
    const db = await openDb({ dataDir: dir });
    await db.raw('CREATE TABLE kept (v int)');
    await db.raw('INSERT INTO kept VALUES (42)');
    await db.destroy();
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect(readdirSync(root).filter((f) => f.startsWith('data'))).toEqual(['data']); // the child's temp directory was renamed away

    const again = await openDb({ dataDir: dir });
    expect((await again.raw('SELECT v FROM kept')).rows).toEqual([{ v: 42 }]);
    // The embedded database's buffer pool is bounded (PGlite's own default is 128 MB).
    expect((await again.raw('SHOW shared_buffers')).rows).toEqual([{ shared_buffers: PGLITE_SHARED_BUFFERS }]);
    await again.destroy();
  }, 120_000);

  it('a non-empty directory that is not a database yet is initialised in-process, as before', async () => {
    // A stray file: the directory is not empty, so it cannot be replaced by a rename.
    const stray = path.join(root, 'stray');
    mkdirSync(stray);
    writeFileSync(path.join(stray, 'README'), 'x');
    const db = await openDb({ dataDir: stray });
    expect((await db.raw('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await db.destroy();
    expect(existsSync(path.join(stray, 'README'))).toBe(true);
  }, 120_000);
});
