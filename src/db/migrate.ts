// Runs the static migration list through knex's migrator (its lock table keeps two starting
// replicas from migrating at once).
import type { Knex } from 'knex';
import { migrations, type Migration } from '../../migrations/index.ts';

class StaticSource implements Knex.MigrationSource<Migration> {
  getMigrations(): Promise<Migration[]> {
    return Promise.resolve(migrations);
  }
  getMigrationName(m: Migration): string {
    return m.name;
  }
  getMigration(m: Migration): Promise<Knex.Migration> {
    return Promise.resolve({ up: m.up, down: m.down });
  }
}

const config = (): Knex.MigratorConfig => ({ migrationSource: new StaticSource(), tableName: 'knex_migrations' });

/** Names recorded in knex_migrations, or undefined when the table is not there yet (a new database). */
async function recordedNames(db: Knex): Promise<string[] | undefined> {
  try {
    return ((await db('knex_migrations').select('name')) as Array<{ name: string }>).map((r) => r.name);
  } catch {
    return undefined;
  }
}

export async function migrateUp(db: Knex): Promise<string[]> {
  // Every start migrates (a cron `run`, each CLI command, `serve`). When exactly this build's
  // migrations are recorded, one read answers it instead of knex's lock-and-check sequence (13
  // statements, a row lock in a transaction). Anything else — a new database, pending migrations,
  // names this build does not know — goes through knex as before (lock, apply, or refuse).
  const recorded = await recordedNames(db);
  if (recorded && recorded.length === migrations.length && migrations.every((m) => recorded.includes(m.name))) return [];
  const [, applied] = (await db.migrate.latest(config())) as [number, string[]];
  return applied;
}

/** Rolls back the last batch, or everything with `all`. */
export async function migrateDown(db: Knex, all = false): Promise<string[]> {
  const [, reverted] = (await db.migrate.rollback(config(), all)) as [number, string[]];
  return reverted;
}

export async function pendingMigrations(db: Knex): Promise<string[]> {
  const [, pending] = (await db.migrate.list(config())) as [unknown[], Array<{ file?: string; name?: string } | Migration>];
  return pending.map((p) => ('name' in p && typeof p.name === 'string' ? p.name : String((p as { file?: string }).file)));
}
