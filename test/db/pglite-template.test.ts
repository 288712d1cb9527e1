// New PGlite directories made from the cached, migrated template (src/db/pglite-template.ts): the
// template is keyed by PGlite's version and the migrations, so a change to either makes (and uses) a
// new one; a template-made database is the same as one migrated from scratch.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Knex } from 'knex';
import { initPgliteDir, openDb, PGLITE_SHARED_BUFFERS } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import { cacheDir, currentTemplateKey, pgliteVersion, templateKey, templatePath, type TemplateInputs } from '../../src/db/pglite-template.ts';
import { migrations } from '../../migrations/index.ts';

const root = mkdtempSync(path.join(tmpdir(), 'cs-pglite-template-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
});
const fresh = (name: string): string => {
  const d = path.join(root, name);
  mkdirSync(d);
  return d;
};

/** The schema as the catalog describes it: columns, indexes, constraints, triggers, functions. */
async function schemaOf(db: Knex): Promise<unknown> {
  const q = async (sql: string): Promise<unknown[]> => ((await db.raw(sql)) as { rows: unknown[] }).rows;
  return {
    columns: await q(`SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2`),
    indexes: await q(`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1`),
    constraints: await q(`SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`),
    triggers: await q(`SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`),
    functions: await q(`SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc WHERE pronamespace = current_schema()::regnamespace ORDER BY 1, 2`),
    migrations: await q(`SELECT name FROM knex_migrations ORDER BY id`),
  };
}

describe('the PGlite template key', () => {
  const base: TemplateInputs = { pgliteVersion: '0.5.16', migrationNames: ['001_a', '002_b'], sources: [['001_a.ts', 'up 1'], ['002_b.ts', 'up 2'], ['index.ts', 'list']] };

  it('is stable for the same inputs (whatever the order the files were listed in)', () => {
    expect(templateKey(base)).toBe(templateKey({ ...base, sources: [...base.sources].reverse() }));
  });

  it('changes with the PGlite version, the migration list or any migration source', () => {
    const k = templateKey(base);
    expect(templateKey({ ...base, pgliteVersion: '0.5.17' })).not.toBe(k);
    expect(templateKey({ ...base, migrationNames: [...base.migrationNames, '003_c'] })).not.toBe(k);
    expect(templateKey({ ...base, migrationNames: ['001_a'] })).not.toBe(k);
    expect(templateKey({ ...base, sources: [['001_a.ts', 'up 1'], ['002_b.ts', 'up 2, edited'], ['index.ts', 'list']] })).not.toBe(k);
  });

  it('for this build, names the installed PGlite version and these migrations', async () => {
    expect(pgliteVersion()).toMatch(/^\d+\.\d+\.\d+/);
    const k = await currentTemplateKey();
    expect(k).toMatch(/^[0-9a-f]{24}$/);
    expect(await currentTemplateKey()).toBe(k);
  });

  it('lives in COMMISSION_SYNC_CACHE_DIR, else the OS cache directory; `off` disables it', () => {
    expect(cacheDir({ COMMISSION_SYNC_CACHE_DIR: '/some/where' })).toBe('/some/where');
    expect(cacheDir({ COMMISSION_SYNC_CACHE_DIR: 'off' })).toBeUndefined();
    if (process.platform === 'linux') expect(cacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/commission-sync');
  });
});

describe('new PGlite directories from the template', () => {
  const cache = path.join(root, 'cache');
  const k1 = 'a'.repeat(24);
  const k2 = templateKey({ pgliteVersion: 'another', migrationNames: migrations.map((m) => m.name), sources: [] });

  it('without a template: initialised and migrated in the child, then saved; with it: copied, already migrated, same schema', async () => {
    const first = fresh('first');
    expect(await initPgliteDir(first, { migrated: true, cacheDir: cache, key: k1 })).toBe('child');
    expect(existsSync(path.join(templatePath(cache, k1), 'PG_VERSION'))).toBe(true);

    const second = fresh('second');
    expect(await initPgliteDir(second, { migrated: true, cacheDir: cache, key: k1 })).toBe('template');
    expect(readdirSync(root).filter((f) => f.includes('.init-'))).toEqual([]); // temp directories renamed away

    const db = await openDb({ dataDir: second });
    expect(await migrateUp(db)).toEqual([]); // nothing left to apply
    expect((await db.raw('SHOW shared_buffers')).rows).toEqual([{ shared_buffers: PGLITE_SHARED_BUFFERS }]);
    await db('connections').insert({ name: 'ps', type: 'partnerstack' });
    expect(await db('connections').pluck('name')).toEqual(['ps']);
    const fromTemplate = await schemaOf(db);
    await db.destroy();

    // The same schema as migrating a database from scratch, in this process.
    const scratch = await openDb({ url: 'memory://' });
    expect((await migrateUp(scratch)).length).toBe(migrations.length);
    expect(await schemaOf(scratch)).toEqual(fromTemplate);
    await scratch.destroy();

    // The template itself was not touched by the copy's writes.
    const third = fresh('third');
    expect(await initPgliteDir(third, { migrated: true, cacheDir: cache, key: k1 })).toBe('template');
    const again = await openDb({ dataDir: third });
    expect(await again('connections').count({ n: '*' })).toEqual([{ n: 0 }]);
    await again.destroy();
  }, 180_000);

  it('another key (a new PGlite version or migration list) does not use the old template and makes its own', async () => {
    const d = fresh('other-key');
    expect(await initPgliteDir(d, { migrated: true, cacheDir: cache, key: k2 })).toBe('child');
    expect(readdirSync(cache).sort()).toEqual([`pglite-template-${k1}`, `pglite-template-${k2}`].sort());
  }, 180_000);

  it('a template directory without its completion marker (a save cut short) is not used, and is replaced', async () => {
    const k3 = 'c'.repeat(24);
    const half = templatePath(cache, k3);
    mkdirSync(half, { recursive: true });
    writeFileSync(path.join(half, 'PG_VERSION'), '17\n');
    const d = fresh('after-half');
    expect(await initPgliteDir(d, { migrated: true, cacheDir: cache, key: k3 })).toBe('child');
    const db = await openDb({ dataDir: d });
    expect(await migrateUp(db)).toEqual([]);
    await db.destroy();
    expect(await initPgliteDir(fresh('after-half-2'), { migrated: true, cacheDir: cache, key: k3 })).toBe('template');
  }, 180_000);

  it('openDb uses the key of this build, from COMMISSION_SYNC_CACHE_DIR', async () => {
    const own = path.join(root, 'own-cache');
    vi.stubEnv('COMMISSION_SYNC_CACHE_DIR', own);
    const db = await openDb({ dataDir: path.join(root, 'via-open'), migrated: true });
    expect(await migrateUp(db)).toEqual([]);
    await db.destroy();
    expect(readdirSync(own)).toEqual([`pglite-template-${await currentTemplateKey()}`]);
  }, 180_000);

  it('not migrated, or with the cache off: no template is read or written', async () => {
    const plain = fresh('plain');
    expect(await initPgliteDir(plain, { cacheDir: cache, key: k1 })).toBe('child');
    const db = await openDb({ dataDir: plain });
    expect((await migrateUp(db)).length).toBe(migrations.length);
    await db.destroy();

    const off = fresh('off');
    const before = readdirSync(cache).sort();
    expect(await initPgliteDir(off, { migrated: true, cacheDir: undefined, key: 'b'.repeat(24) })).toBe('child');
    expect(readdirSync(cache).sort()).toEqual(before);
  }, 180_000);
});
