import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { migrateDown, migrateUp, pendingMigrations } from '../../db/migrate.ts';
import { describeDb } from '../../db/connection.ts';

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations (idempotent); --rollback reverts the last batch')
    .option('--rollback', 'revert the last batch of migrations')
    .option('--all', 'with --rollback: revert every migration')
    .action(async (opts: { rollback?: boolean; all?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const app = await openApp(g, { migrate: false });
      try {
        const where = describeDb({ url: app.config.database.url, dataDir: app.config.database.dataDir });
        if (opts.rollback) {
          const reverted = await migrateDown(app.db, opts.all ?? false);
          console.log(reverted.length ? `Rolled back on ${where}: ${reverted.join(', ')}` : `Nothing to roll back on ${where}.`);
        } else {
          const applied = await migrateUp(app.db);
          console.log(applied.length ? `Migrated ${where}: ${applied.join(', ')}` : `${where} is up to date.`);
          const pending = await pendingMigrations(app.db);
          if (pending.length) console.log(`Pending: ${pending.join(', ')}`);
        }
      } finally {
        await app.close();
      }
    });
}
