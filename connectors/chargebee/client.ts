// The official Chargebee SDK (v3, global fetch), pointed at the configured site or base URL (a
// fake server in tests/demo). The SDK's own retries are off; `call()` retries 429 (honouring
// Retry-After, bounded — the SDK would retry 429 forever, and not at all without the header),
// 5xx and network failures with exponential backoff and jitter.
import Chargebee from 'chargebee';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { registerSecret } from '../../src/util/secrets.ts';
import { formatZodIssues } from '../../src/util/zod-format.ts';
import { parseRetryAfterMs, withBackoff } from '../billing/common.ts';

export const chargebeeOptionsSchema = z.looseObject({
  /** The Chargebee site (`<site>.chargebee.com`); required unless baseUrl is set. */
  site: z.string().regex(/^[a-z0-9][a-z0-9-]*$/i, 'expected the site name, e.g. "acme" for acme.chargebee.com').optional(),
  /** Currency that invoice exchange_rate converts into (the site's base currency). */
  baseCurrency: z.string().length(3).default('USD'),
  /** Re-read this many seconds before the last high-water mark (clock skew, late commits). */
  lookbackSeconds: z.number().int().nonnegative().default(3600),
  /** Earliest updated_at (ISO) on a first run; default: everything. */
  startDate: z.iso.date().or(z.iso.datetime()).optional(),
  pageSize: z.number().int().min(1).max(100).default(100),
  retries: z.number().int().min(0).max(20).default(6),
  backoffBaseMs: z.number().int().positive().default(1000),
  backoffMaxMs: z.number().int().positive().default(30_000),
});
export type ChargebeeOptions = z.infer<typeof chargebeeOptionsSchema>;

export function parseChargebeeOptions(connection: ConnectionConfig): ChargebeeOptions {
  const parsed = chargebeeOptionsSchema.safeParse(connection.options ?? {});
  if (!parsed.success) throw new ConfigError(`Invalid options for connection "${connection.name}":\n${formatZodIssues(parsed.error, `connections.${connection.name}.options.`)}`);
  if (!parsed.data.site && !connection.baseUrl) throw new ConfigError(`connections.${connection.name}.options.site: expected the Chargebee site name (or set connections.${connection.name}.baseUrl)`);
  return parsed.data;
}

export interface ChargebeeApi {
  cb: Chargebee;
  options: ChargebeeOptions;
  call<T>(fn: (cb: Chargebee) => Promise<T>): Promise<T>;
}

export function chargebeeStatusOf(err: unknown): number | undefined {
  const e = err as { http_status_code?: number; httpStatusCode?: number; statusCode?: number } | null;
  return e?.http_status_code ?? e?.httpStatusCode ?? e?.statusCode;
}

/** Chargebee errors are plain objects ({message, api_error_code, http_status_code}); make them Errors. */
export function chargebeeError(err: unknown, connection: string): Error {
  if (err instanceof Error && !('api_error_code' in err)) return err;
  const e = err as { message?: string; api_error_code?: string };
  const status = chargebeeStatusOf(err);
  return new Error(`${connection}: Chargebee API error${status ? ` HTTP ${status}` : ''}${e.api_error_code ? ` (${e.api_error_code})` : ''}: ${e.message ?? String(err)}`);
}

export function createChargebeeApi(connection: ConnectionConfig, env: NodeJS.ProcessEnv, log?: Logger): ChargebeeApi {
  const options = parseChargebeeOptions(connection);
  const apiKey = resolveSecret(connection, 'apiKey', env)!;
  // The SDK sends `Authorization: Basic base64(apiKey:)`: that token is as secret as the key.
  registerSecret(Buffer.from(`${apiKey}:`).toString('base64'));
  let cfg: ConstructorParameters<typeof Chargebee>[0] = { site: options.site ?? '', apiKey, timeout: connection.timeoutMs };
  if (connection.baseUrl) {
    const u = new URL(connection.baseUrl);
    cfg = { ...cfg, site: u.hostname, hostSuffix: '', protocol: u.protocol === 'http:' ? 'http' : 'https', port: u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443, apiPath: (u.pathname.replace(/\/$/, '') || '/api/v2') as '/api/v2' };
  }
  const cb = new Chargebee(cfg);
  return {
    cb,
    options,
    call: async (fn) => {
      try {
        return await withBackoff(
          () => fn(cb),
          (err) => {
            const status = chargebeeStatusOf(err);
            const headers = (err as { headers?: Record<string, string> }).headers;
            const network = status === undefined && err instanceof TypeError; // fetch failed
            return { retry: network || status === 429 || (status !== undefined && status >= 500), status, retryAfterMs: parseRetryAfterMs(headers?.['retry-after']) };
          },
          { retries: options.retries, baseMs: options.backoffBaseMs, maxMs: options.backoffMaxMs, onRetry: (i) => log?.warn({ connection: connection.name, ...i }, 'chargebee request failed; backing off') },
        );
      } catch (err) {
        throw chargebeeError(err, connection.name);
      }
    },
  };
}
