// Shared start-up for CLI commands: config (validated, stops with a clear message), logger, database.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { loadConfig, registerSecretsInUrl } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../log/logger.ts';
import { describeDb, openDb } from '../db/connection.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';
import { migrateUp } from '../db/migrate.ts';
import { maintainEmbedded } from '../db/embedded-maintenance.ts';

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
  db?: string;
}

export interface AppContext {
  config: Config;
  log: Logger;
  db: Knex;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export function loadAppConfig(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfig({ file: opts.config, env, overrides: { 'log.level': opts.logLevel } });
}

/**
 * Opens config, logger and database; migrates up unless told not to (migrations are idempotent).
 * `maintain`: the command writes, so on the embedded database close() first does what autovacuum and
 * the checkpointer would (src/db/embedded-maintenance.ts). Without it a cron-driven `sync` on PGlite
 * would pile up the dead rows of every row it updates; the main job and the scheduler do it themselves.
 */
export async function openApp(opts: GlobalOptions, init: { migrate?: boolean; env?: NodeJS.ProcessEnv; maintain?: boolean } = {}): Promise<AppContext> {
  const env = init.env ?? process.env;
  const config = loadAppConfig(opts, env);
  const log = createLogger({ level: config.log.level, format: config.log.format });
  const url = opts.db ? (opts.db.startsWith('postgres') || opts.db === 'memory://' ? opts.db : undefined) : config.database.url;
  const dataDir = opts.db && !opts.db.startsWith('postgres') && opts.db !== 'memory://' ? opts.db : config.database.dataDir;
  if (url) registerSecretsInUrl(url);
  // The flag wins over the configuration: commands that describe "the database" describe this one.
  config.database = { ...config.database, url, dataDir };
  let opened: Knex | undefined;
  try {
    // A new PGlite directory is created already migrated when this start migrates anyway.
    opened = await openDb({ url, dataDir, poolMax: config.database.poolMax, migrated: init.migrate !== false });
    await opened.raw('SELECT 1');
  } catch (err) {
    // Unreachable server, wrong credentials, unusable directory: a start-up error naming the setting.
    await opened?.destroy().catch(() => undefined);
    const field = opts.db ? '--db' : url ? 'database.url (DATABASE_URL)' : 'database.dataDir (COMMISSION_SYNC_DATA_DIR)';
    throw new UserError(`${field}: cannot open the database ${describeDb({ url, dataDir })}: ${scrubSecrets(errorMessage(err))}`);
  }
  const db = opened;
  if (init.migrate !== false) await migrateUp(db);
  return {
    config,
    log,
    db,
    env,
    close: async () => {
      if (init.maintain) await maintainEmbedded(db, { log });
      await db.destroy();
    },
  };
}
