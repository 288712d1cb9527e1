// Errors from network APIs. They carry method, URL path (never the query, which may hold tokens)
// and status — never credentials or headers.
export class HttpError extends Error {
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly bodySnippet: string | undefined;
  readonly connection: string;
  readonly code: string | undefined;
  constructor(init: {
    connection: string;
    method: string;
    path: string;
    status?: number | undefined;
    message: string;
    retryable: boolean;
    retryAfterMs?: number | undefined;
    bodySnippet?: string | undefined;
    code?: string | undefined;
  }) {
    super(init.message);
    this.name = 'HttpError';
    this.connection = init.connection;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
    this.bodySnippet = init.bodySnippet;
    this.code = init.code;
  }
}

/** Parses Retry-After (delta seconds or HTTP date) into milliseconds, capped. */
export function parseRetryAfter(value: unknown, capMs: number, now = Date.now()): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const s = String(value).trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(s)) ms = Number(s) * 1000;
  else {
    const t = Date.parse(s);
    if (!Number.isNaN(t)) ms = Math.max(0, t - now);
  }
  return ms === undefined ? undefined : Math.min(ms, capMs);
}
