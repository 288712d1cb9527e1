import pino from 'pino';
import { configSchema, type Config, type ConnectionConfig } from '../../../src/config/schema.ts';

export const silentLog = pino({ level: 'silent' });
export const AWIN_ENV = { AWIN_TOKEN: 'fake-awin-token' };

export function awinConfig(baseUrl: string, options: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): { config: Config; connection: ConnectionConfig } {
  const config = configSchema.parse({
    connections: [
      {
        name: 'awin',
        type: 'awin',
        baseUrl,
        credentials: { token: 'AWIN_TOKEN' },
        options: { advertiserId: 1001, retries: 3, minBackoffMs: 1, limitWaitMs: 20, push: { pollIntervalMs: 5, pollTimeoutMs: 2000 }, ...options },
        ...extra,
      },
    ],
  });
  return { config, connection: config.connections[0]! };
}
