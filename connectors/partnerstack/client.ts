// Thin PartnerStack vendor API v2 client over the shared HTTP client (retries, backoff,
// Retry-After, rate limit). Auth is HTTP Basic with the vendor key pair (public:secret); the encoded
// token is registered as a secret so logs and errors are scrubbed of it.
import type { AxiosResponse } from 'axios';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { createHttpClient, type HttpClient } from '../../src/http/client.ts';
import { HttpError } from '../../src/http/errors.ts';
import { registerSecret } from '../../src/util/secrets.ts';
import { formatZodIssues } from '../../src/util/zod-format.ts';
import { listEnvelope, objectEnvelope } from './schemas.ts';

export const DEFAULT_BASE_URL = 'https://api.partnerstack.com/api/v2';
/** Largest accepted page size (1–250). */
export const MAX_LIMIT = 250;

export interface RetryOptions {
  retries?: number | undefined;
  minBackoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  maxRetryAfterMs?: number | undefined;
}

export interface PartnerStackClient {
  /** One page of a list endpoint. */
  list(path: string, params: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<{ items: unknown[]; hasMore: boolean }>;
  /** An object endpoint; returns `data`. */
  call(method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown): Promise<{ status: number; data: Record<string, unknown>; message: string | undefined }>;
  readonly http: HttpClient;
}

type Params = Record<string, string | number | boolean | undefined>;

function messageOf(body: unknown): string | undefined {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message.slice(0, 200);
  return undefined;
}

export function createPartnerStackClient(opts: { connection: ConnectionConfig; env: NodeJS.ProcessEnv; log?: Logger | undefined; retry?: RetryOptions | undefined }): PartnerStackClient {
  const { connection, env } = opts;
  const publicKey = resolveSecret(connection, 'publicKey', env)!;
  const secretKey = resolveSecret(connection, 'secretKey', env)!;
  const token = Buffer.from(`${publicKey}:${secretKey}`).toString('base64');
  registerSecret(token);
  const pubVar = connection.credentials.publicKey;
  const secVar = connection.credentials.secretKey;

  const http = createHttpClient({
    connection: connection.name,
    baseURL: connection.baseUrl ?? DEFAULT_BASE_URL,
    timeoutMs: connection.timeoutMs,
    headers: { authorization: `Basic ${token}`, accept: 'application/json' },
    rateLimit: connection.rateLimit,
    retries: opts.retry?.retries,
    minBackoffMs: opts.retry?.minBackoffMs,
    maxBackoffMs: opts.retry?.maxBackoffMs,
    maxRetryAfterMs: opts.retry?.maxRetryAfterMs,
    logger: opts.log,
    // "Every response is JSON": a body that does not parse (cut off mid-way) is transient.
    inspect: (res: AxiosResponse, c) => {
      if (res.status === 204 || res.data === '' || res.data === undefined) return undefined;
      if (typeof res.data !== 'string') return undefined;
      return new HttpError({
        connection: connection.name,
        method: c.method,
        path: c.path,
        status: res.status,
        retryable: true,
        message: `${connection.name}: ${c.method} ${c.path} returned a body that is not JSON (truncated?)`,
      });
    },
    describeStatus: (status, body) => {
      if (status === 401 || status === 403) {
        return (
          `PartnerStack rejected the credentials (HTTP Basic auth with the vendor key pair from ${pubVar} as the public key and ${secVar} as the secret key). ` +
          'The vendor API wants Basic auth with public:secret, not a partner API Bearer key: check that these variables hold the vendor keys ' +
          '(Settings → Integrations → PartnerStack API Keys) and that both come from the same environment (test or production).'
        );
      }
      const m = messageOf(body);
      return m ? `PartnerStack says: ${m}` : undefined;
    },
  });

  function clean(params: Params): Params {
    const out: Params = {};
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') out[k] = v;
    return out;
  }

  return {
    http,
    async list(path, params, signal) {
      const res = await http.get(path, { params: clean(params), ...(signal ? { signal } : {}) });
      const env = listEnvelope.safeParse(res.data);
      if (!env.success) {
        // The envelope itself is wrong: not one bad record but a broken page; fail the run loudly.
        throw new Error(`${connection.name}: GET ${path} returned an unexpected list envelope:\n${formatZodIssues(env.error)}`);
      }
      return { items: env.data.data.items, hasMore: env.data.data.has_more };
    },
    async call(method, path, body) {
      const res = await http.request({ method, url: path, ...(body !== undefined ? { data: body } : {}) });
      const parsed = objectEnvelope.safeParse(res.data);
      return {
        status: res.status,
        data: parsed.success ? (parsed.data.data as Record<string, unknown>) : {},
        message: parsed.success ? (parsed.data.message ?? undefined) : undefined,
      };
    },
  };
}
