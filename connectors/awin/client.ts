// Awin advertiser API client (https://api.awin.com). A user-level token goes in
// `Authorization: Bearer <token>`. Awin allows 20 calls per minute per user: the client throttles
// itself to that (configurable), and a 429 `request.limit.exceeded` waits and retries. JSON errors
// `{error, description}` are named in the HttpError message; other 4xx are not retried.
import type { Logger } from 'pino';
import { isAxiosError } from 'axios';
import { createHttpClient, type HttpClient } from '../../src/http/client.ts';
import { registerSecret } from '../../src/util/secrets.ts';

export const AWIN_BASE_URL = 'https://api.awin.com';

export interface AwinClientOptions {
  connection: string;
  baseURL?: string | undefined;
  token: string;
  rateLimit: { requests: number; intervalMs: number };
  /** Wait before retrying a 429 that has no Retry-After. */
  limitWaitMs: number;
  retries?: number;
  minBackoffMs?: number;
  timeoutMs?: number;
  logger?: Logger;
}

export interface AwinJob {
  jobId: string;
  status: string;
  transactions?: number;
  errors?: number;
  failedTransactions: Array<{ transactionId?: string | number; orderRef?: string; code?: string; message?: string; [k: string]: unknown }>;
  creationDate?: string;
  completionDate?: string;
  [k: string]: unknown;
}

export interface AwinClient {
  listTransactions(advertiserId: string, params: Record<string, string>): Promise<unknown[]>;
  submitBatch(advertiserId: string, items: unknown[]): Promise<string>;
  getJob(advertiserId: string, jobId: string): Promise<AwinJob>;
  readonly http: HttpClient;
}

export function describeAwinError(status: number, body: unknown): string | undefined {
  let error: string | undefined;
  let description: string | undefined;
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.error === 'string') error = b.error;
    if (typeof b.description === 'string') description = b.description;
    else if (typeof b.message === 'string') description = b.message;
  } else if (typeof body === 'string' && body.trim().startsWith('{')) {
    try {
      return describeAwinError(status, JSON.parse(body));
    } catch {
      /* not JSON */
    }
  }
  const said = [error, description].filter(Boolean).join(': ');
  const hint =
    status === 401
      ? 'the API token is invalid or revoked: create one in the Awin UI (API Credentials) and set credentials.token'
      : status === 403
        ? 'the token\'s user cannot access this advertiser (check options.advertiserId; Advertiser API access needs the Accelerate or Advanced plan)'
        : status === 429
          ? 'Awin rate limit (20 calls/minute per user) exceeded'
          : undefined;
  return [said, hint].filter(Boolean).join(' — ') || undefined;
}

export function createAwinClient(o: AwinClientOptions): AwinClient {
  registerSecret(o.token);
  const http = createHttpClient({
    connection: o.connection,
    baseURL: o.baseURL ?? AWIN_BASE_URL,
    timeoutMs: o.timeoutMs ?? 60_000,
    headers: { authorization: `Bearer ${o.token}`, accept: 'application/json' },
    rateLimit: o.rateLimit,
    retries: o.retries ?? 4,
    minBackoffMs: o.minBackoffMs ?? 1000,
    maxBackoffMs: 60_000,
    maxRetryAfterMs: Math.max(o.limitWaitMs, 60_000),
    ...(o.logger ? { logger: o.logger } : {}),
    describeStatus: describeAwinError,
  });
  // Awin's 429 carries `request.limit.exceeded` and (as far as known) no Retry-After: give it one, so
  // the shared retry loop waits out the minute instead of hammering with short backoffs.
  http.axios.interceptors.response.use(undefined, (err: unknown) => {
    if (isAxiosError(err) && err.response?.status === 429 && err.response.headers['retry-after'] === undefined) {
      err.response.headers['retry-after'] = String(o.limitWaitMs / 1000);
    }
    throw err;
  });

  return {
    http,
    async listTransactions(advertiserId, params) {
      let res = await http.get<unknown>(`/advertisers/${encodeURIComponent(advertiserId)}/transactions/`, { params });
      // A body cut off in transit arrives as unparsable text: ask again (a few times) before failing.
      for (let i = 0; i < 3 && typeof res.data === 'string' && /^\s*[[{]/.test(res.data); i++) {
        res = await http.get<unknown>(`/advertisers/${encodeURIComponent(advertiserId)}/transactions/`, { params });
      }
      const data = res.data;
      if (Array.isArray(data)) return data;
      // Tolerant: a wrapper object with the list inside (not documented, seen in neither tap).
      if (data && typeof data === 'object') for (const v of Object.values(data)) if (Array.isArray(v)) return v as unknown[];
      if (data === '' || data === null || data === undefined) return [];
      throw new Error(`${o.connection}: GET transactions returned ${typeof data}, expected a JSON array`);
    },
    async submitBatch(advertiserId, items) {
      const res = await http.post<unknown>(`/advertisers/${encodeURIComponent(advertiserId)}/transactions/batch`, items, { headers: { 'content-type': 'application/json' } });
      const d = res.data;
      // The reply shape is only described as "returns a jobId": accept {jobId}, {id}, {job:{jobId}} or a bare string.
      const jobId =
        typeof d === 'string' || typeof d === 'number'
          ? String(d)
          : d && typeof d === 'object'
            ? ((d as Record<string, unknown>).jobId ?? (d as Record<string, unknown>).id ?? ((d as Record<string, unknown>).job as Record<string, unknown> | undefined)?.jobId)
            : undefined;
      if (jobId === undefined || jobId === null || String(jobId).trim() === '') throw new Error(`${o.connection}: batch validation accepted but no jobId in the reply`);
      return String(jobId).replace(/^"|"$/g, '');
    },
    async getJob(advertiserId, jobId) {
      const res = await http.get<Record<string, unknown>>(`/advertisers/${encodeURIComponent(advertiserId)}/transactions/jobs/${encodeURIComponent(jobId)}`, { params: { output: 'errors' } });
      const d = (res.data ?? {}) as Record<string, unknown>;
      return {
        ...d,
        jobId: String(d.jobId ?? jobId),
        status: String(d.status ?? 'UNKNOWN'),
        failedTransactions: Array.isArray(d.failedTransactions) ? (d.failedTransactions as AwinJob['failedTransactions']) : [],
      } as AwinJob;
    },
  };
}
