// Shared start-up for CLI commands: config (validated, stops with a clear message), logger, database.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../log/logger.ts';
import { openDb } from '../db/connection.ts';
import { migrateUp } from '../db/migrate.ts';

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

/** Opens config, logger and database; migrates up unless told not to (migrations are idempotent). */
export async function openApp(opts: GlobalOptions, init: { migrate?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<AppContext> {
  const env = init.env ?? process.env;
  const config = loadAppConfig(opts, env);
  const log = createLogger({ level: config.log.level, format: config.log.format });
  const url = opts.db ? (opts.db.startsWith('postgres') || opts.db === 'memory://' ? opts.db : undefined) : config.database.url;
  const dataDir = opts.db && !opts.db.startsWith('postgres') && opts.db !== 'memory://' ? opts.db : config.database.dataDir;
  const db = await openDb({ url, dataDir, poolMax: config.database.poolMax });
  if (init.migrate !== false) await migrateUp(db);
  return {
    config,
    log,
    db,
    env,
    close: async () => {
      await db.destroy();
    },
  };
}
