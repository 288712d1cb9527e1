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

export async function migrateUp(db: Knex): Promise<string[]> {
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
