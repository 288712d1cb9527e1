// HTTP client factory for network APIs: axios for transport, p-retry for exponential backoff with
// jitter on network errors, 429 and 5xx (honouring Retry-After, capped), p-throttle for a
// per-connection request rate. Other 4xx are never retried.
import axios, { type AxiosInstance, type AxiosRequestConfig, type AxiosResponse, isAxiosError } from 'axios';
import pRetry, { AbortError } from 'p-retry';
import pThrottle from 'p-throttle';
import type { Logger } from 'pino';
import { HttpError, parseRetryAfter } from './errors.ts';
import { scrubSecrets } from '../util/secrets.ts';

export interface HttpClientOptions {
  connection: string;
  baseURL: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Requests per interval for this connection. */
  rateLimit?: { requests: number; intervalMs: number } | undefined;
  retries?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longest Retry-After we are willing to sleep; longer waits are cut to this. */
  maxRetryAfterMs?: number;
  logger?: Logger;
  /** Turns a response that is an error in disguise (e.g. a 200 text error) into an HttpError. */
  inspect?: (res: AxiosResponse, ctx: { method: string; path: string }) => HttpError | undefined;
  /** Adds a human hint for some statuses (e.g. a 401 that names the credential pair used). */
  describeStatus?: (status: number, body: unknown) => string | undefined;
}

export interface HttpClient {
  request<T = unknown>(config: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  readonly axios: AxiosInstance;
  /** Count of HTTP attempts made (including retries): used for budgets and progress. */
  readonly attempts: () => number;
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ERR_BAD_RESPONSE', 'UND_ERR_SOCKET']);

function pathOf(config: AxiosRequestConfig | undefined): string {
  const url = config?.url ?? '';
  try {
    return new URL(url, config?.baseURL ?? 'http://x').pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

function snippet(data: unknown): string | undefined {
  if (data === undefined || data === null) return undefined;
  const s = typeof data === 'string' ? data : JSON.stringify(data);
  // Scrub before cutting: a secret cut in half by the limit would no longer match and leak its start.
  return scrubSecrets(s).slice(0, 300);
}

export function toHttpError(err: unknown, opts: Pick<HttpClientOptions, 'connection' | 'maxRetryAfterMs' | 'describeStatus'>): HttpError {
  if (err instanceof HttpError) return err;
  if (isAxiosError(err)) {
    const method = (err.config?.method ?? 'get').toUpperCase();
    const path = pathOf(err.config);
    const status = err.response?.status;
    if (status !== undefined) {
      const retryable = status === 429 || status >= 500;
      const retryAfterMs = parseRetryAfter(err.response?.headers?.['retry-after'], opts.maxRetryAfterMs ?? 60_000);
      const hint = opts.describeStatus?.(status, err.response?.data);
      return new HttpError({
        connection: opts.connection,
        method,
        path,
        status,
        retryable,
        retryAfterMs,
        bodySnippet: snippet(err.response?.data),
        message: `${opts.connection}: ${method} ${path} failed with HTTP ${status}${hint ? ` — ${hint}` : ''}`,
      });
    }
    const code = err.code;
    return new HttpError({
      connection: opts.connection,
      method,
      path,
      retryable: code === undefined || RETRYABLE_CODES.has(code) || /timeout|socket|aborted|reset/i.test(err.message),
      code,
      message: `${opts.connection}: ${method} ${path} failed: ${code ?? scrubSecrets(err.message)}`,
    });
  }
  const e = err as Error;
  return new HttpError({ connection: opts.connection, method: '?', path: '?', retryable: false, message: `${opts.connection}: ${scrubSecrets(e?.message ?? String(err))}` });
}

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const instance = axios.create({
    baseURL: opts.baseURL,
    timeout: opts.timeoutMs ?? 30_000,
    headers: { 'user-agent': 'commission-sync', ...(opts.headers ?? {}) },
    // Status handling is ours: every non-2xx becomes an HttpError with a retry decision.
    validateStatus: (s) => s >= 200 && s < 300,
    // Keep the raw text available for text-error APIs; JSON is parsed below when it parses.
    transitional: { silentJSONParsing: true, forcedJSONParsing: true, clarifyTimeoutError: true },
  });
  let attempts = 0;
  const throttle = opts.rateLimit ? pThrottle({ limit: opts.rateLimit.requests, interval: opts.rateLimit.intervalMs }) : undefined;
  const send = async (config: AxiosRequestConfig): Promise<AxiosResponse> => {
    attempts++;
    return instance.request(config);
  };
  const limited = throttle ? throttle(send) : send;

  async function request<T>(config: AxiosRequestConfig): Promise<AxiosResponse<T>> {
    const method = (config.method ?? 'get').toUpperCase();
    const path = pathOf({ ...config, baseURL: opts.baseURL });
    return pRetry(
      async () => {
        let res: AxiosResponse;
        try {
          res = await limited(config);
        } catch (err) {
          const he = toHttpError(err, opts);
          if (!he.retryable) throw new AbortError(he);
          throw he;
        }
        const disguised = opts.inspect?.(res, { method, path });
        if (disguised) {
          if (!disguised.retryable) throw new AbortError(disguised);
          throw disguised;
        }
        return res as AxiosResponse<T>;
      },
      {
        retries: opts.retries ?? 5,
        minTimeout: opts.minBackoffMs ?? 500,
        maxTimeout: opts.maxBackoffMs ?? 30_000,
        factor: 2,
        randomize: true,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft, retryDelay }) => {
          const he = error instanceof HttpError ? error : undefined;
          opts.logger?.warn(
            { connection: opts.connection, method, path, status: he?.status, attempt: attemptNumber, retriesLeft, retryAfterMs: he?.retryAfterMs },
            'request failed; retrying',
          );
          // Retry-After wins over our own backoff when it asks for longer.
          if (retriesLeft > 0 && he?.retryAfterMs !== undefined && he.retryAfterMs > retryDelay) {
            await new Promise((r) => setTimeout(r, he.retryAfterMs! - retryDelay));
          }
        },
      },
    );
  }

  return {
    request,
    get: (url, config) => request({ ...config, method: 'get', url }),
    post: (url, data, config) => request({ ...config, method: 'post', url, data }),
    axios: instance,
    attempts: () => attempts,
  };
}
