// Shared set-up for ShareASale tests: a config with one connection pointed at a fake server.
import pino from 'pino';
import { configSchema, type Config, type ConnectionConfig } from '../../../src/config/schema.ts';

export const silentLog = pino({ level: 'silent' });

export const SAS_ENV = { SAS_TOKEN: 'fake-sas-token', SAS_SECRET: 'fake-sas-secret-0123456789' };

/** `top` adds top-level config, e.g. `{ sync: { lookback: { everyHours: 0 } } }` to sweep on every run. */
export function sasConfig(baseUrl: string, options: Record<string, unknown> = {}, name = 'shareasale', top: Record<string, unknown> = {}): { config: Config; connection: ConnectionConfig } {
  const config = configSchema.parse({
    ...top,
    connections: [
      {
        name,
        type: 'shareasale',
        baseUrl,
        credentials: { token: 'SAS_TOKEN', secret: 'SAS_SECRET' },
        options: { merchantId: '12345', retries: 2, minBackoffMs: 1, ...options },
      },
    ],
  });
  return { config, connection: config.connections[0]! };
}
