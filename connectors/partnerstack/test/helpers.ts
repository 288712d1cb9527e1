// Shared set-up for the PartnerStack tests: a connection, a context and a sync runner.
import type { Knex } from 'knex';
import { configSchema, type ConnectionConfig } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { runStreams, type SyncRunResult } from '../../../src/sync/engine.ts';
import { withForcedSweep } from '../../../src/sync/lookback.ts';
import type { SyncContext } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';

export const PUBLIC_KEY = 'pk_test_0123456789abcdef';
export const SECRET_KEY = 'sk_test_fedcba9876543210';
export const env: NodeJS.ProcessEnv = { PS_PUBLIC_KEY: PUBLIC_KEY, PS_SECRET_KEY: SECRET_KEY };
export const config = configSchema.parse({});
export const BASIC = `Basic ${Buffer.from(`${PUBLIC_KEY}:${SECRET_KEY}`).toString('base64')}`;

export function connection(baseUrl: string, options: Record<string, unknown> = {}, name = 'ps'): ConnectionConfig {
  return {
    name,
    type: 'partnerstack',
    enabled: true,
    baseUrl,
    credentials: { publicKey: 'PS_PUBLIC_KEY', secretKey: 'PS_SECRET_KEY' },
    timeoutMs: 5000,
    // Fast retries: tests must not sleep for real backoff.
    options: { retry: { retries: 3, minBackoffMs: 1, maxBackoffMs: 5, maxRetryAfterMs: 200 }, ...options },
  };
}

export function ctxFor(db: Knex, conn: ConnectionConfig, now = new Date(), cfg = config): SyncContext {
  return { db, config: cfg, connection: conn, log: silentLogger, now, runId: 0, env };
}

/** `sweep: true` forces a look-back sweep (what `sync --sweep` does); default cadence otherwise. */
export async function sync(db: Knex, conn: ConnectionConfig, opts: { now?: Date; only?: string[]; sweep?: boolean } = {}): Promise<SyncRunResult> {
  const now = opts.now ?? new Date();
  const cfg = opts.sweep ? withForcedSweep(config) : config;
  connector.validateOptions?.(conn);
  const streams = connector.streams(ctxFor(db, conn, now, cfg));
  return runStreams({ db, config: cfg, connection: conn, streams, log: silentLogger, env, now, only: opts.only });
}
