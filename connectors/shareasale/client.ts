// ShareASale merchant API client (https://api.shareasale.com/w.cfm). Every request is signed:
//   x-ShareASale-Date           = UTC time, RFC 1123 ("Thu, 14 Apr 2011 22:44:22 GMT"), fresh per request
//   x-ShareASale-Authentication = sha256_hex(token:date:action:secret)  (plain SHA-256, not HMAC)
// and the action in the hash equals the `action` query parameter. Errors come back as text in a
// 2xx body ("Error: Invalid Account - Error Code 4002 - x.x.x.x"); `inspect` turns them into typed
// ShareASaleError values, none of which is retried. Each HTTP attempt spends one monthly credit,
// so the client reports attempts to the credit budget (budget.ts).
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AxiosResponse } from 'axios';
import { createHttpClient, type HttpClient } from '../../src/http/client.ts';
import { HttpError } from '../../src/http/errors.ts';
import { scrubSecrets } from '../../src/util/secrets.ts';

export const SHAREASALE_BASE_URL = 'https://api.shareasale.com';

/** sha256_hex(token:date:action:secret), lower-case (PHP clients send lower case; the published example is upper). */
export function shareasaleSignature(token: string, date: string, action: string, secret: string): string {
  return createHash('sha256').update(`${token}:${date}:${action}:${secret}`).digest('hex');
}

/** RFC 1123 in UTC, as JavaScript and ShareASale's own example print it (… GMT). */
export function rfc1123(d: Date): string {
  return d.toUTCString();
}

export type ShareASaleErrorKind = 'ip_not_registered' | 'auth' | 'quota' | 'not_found' | 'ambiguous' | 'invalid_request' | 'unknown';

/** A text error from a 2xx ShareASale body. Never retryable: the same request gets the same answer. */
export class ShareASaleError extends HttpError {
  readonly kind: ShareASaleErrorKind;
  readonly errorCode: number | undefined;
  readonly serverText: string;
  constructor(init: { connection: string; method: string; path: string; status: number; kind: ShareASaleErrorKind; errorCode?: number | undefined; text: string; message: string }) {
    super({ connection: init.connection, method: init.method, path: init.path, status: init.status, retryable: false, message: init.message, bodySnippet: scrubSecrets(init.text).slice(0, 300) });
    this.name = 'ShareASaleError';
    this.kind = init.kind;
    this.errorCode = init.errorCode;
    this.serverText = init.text;
  }
}

const KNOWN_TEXT_ERRORS: Array<{ re: RegExp; kind: ShareASaleErrorKind }> = [
  { re: /Transaction Not Found/i, kind: 'not_found' },
  { re: /Multiple Transactions Found/i, kind: 'ambiguous' },
];

/**
 * Decides whether a body is a ShareASale text error. ShareASale does not publish its error codes;
 * clients test the body (reference §3): "Error Code NNNN" anywhere in a short body or in the first
 * line, a first line starting with "Error", or the known void/edit failures.
 */
export function parseShareASaleTextError(body: string, opts: { expectXml?: boolean } = {}): { kind: ShareASaleErrorKind; errorCode?: number; text: string; ip?: string } | undefined {
  const text = body.trim();
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  const head = text.length <= 2000 ? text : firstLine;
  for (const k of KNOWN_TEXT_ERRORS) if (k.re.test(head) && (text.length <= 2000 || k.re.test(firstLine))) return { kind: k.kind, text: head };
  const codeMatch = /Error Code\s*:?\s*(\d{3,5})/i.exec(head);
  const looksError = !!codeMatch || /^\s*error\b/i.test(firstLine) || /^Invalid Request\b/i.test(firstLine) || (opts.expectXml === true && text.length > 0 && !text.startsWith('<'));
  if (!looksError) return undefined;
  const errorCode = codeMatch ? Number(codeMatch[1]) : undefined;
  const ip = /Error Code\s*\d+\s*-\s*([0-9a-f.:]+)/i.exec(head)?.[1];
  let kind: ShareASaleErrorKind = 'unknown';
  if (errorCode === 4002) kind = 'ip_not_registered';
  else if (/limit|quota|credits?|exceeded|too many/i.test(head)) kind = 'quota';
  else if (/auth|signature|token|secret|invalid account|invalid merchant|permission|denied|not authori[sz]ed/i.test(head)) kind = 'auth';
  else if (/invalid request|invalid (action|parameter)|missing/i.test(head)) kind = 'invalid_request';
  return { kind, ...(errorCode !== undefined ? { errorCode } : {}), text: head, ...(ip ? { ip } : {}) };
}

export function describeShareASaleError(connection: string, e: { kind: ShareASaleErrorKind; errorCode?: number | undefined; text: string; ip?: string | undefined }, action: string): string {
  const code = e.errorCode !== undefined ? ` (Error Code ${e.errorCode})` : '';
  const server = ` Server said: "${scrubSecrets(e.text).slice(0, 200)}".`;
  switch (e.kind) {
    case 'ip_not_registered':
      return (
        `${connection}: ShareASale refused ${action}: this machine's IP address${e.ip ? ` (${e.ip})` : ''} is not registered for API access${code}. ` +
        'Fix: in ShareASale open Tools → Merchant API (account.shareasale.com/m-apiips.cfm) and add this IP (up to 5), ' +
        'or tick "Require IP address match only for version 1.1 and lower" and keep options.apiVersion above 1.1, ' +
        'or send requests through a fixed-IP proxy set as the connection baseUrl. Not retried.' + server
      );
    case 'auth':
      return `${connection}: ShareASale rejected the credentials for ${action}${code}: check credentials.token / credentials.secret and options.merchantId (Tools → Merchant API). Not retried.${server}`;
    case 'quota':
      return `${connection}: ShareASale monthly API request credits are exhausted${code}; the sync resumes when credits are available.${server}`;
    case 'not_found':
      return `${connection}: ShareASale ${action}: Transaction Not Found — no sale with that order number on that order date. Not retried.`;
    case 'ambiguous':
      return `${connection}: ShareASale ${action}: Multiple Transactions Found — the order number is ambiguous on that date; fix it in the ShareASale UI. Not retried.`;
    case 'invalid_request':
      return `${connection}: ShareASale ${action}: Invalid Request${code}. Not retried.${server}`;
    default:
      return `${connection}: ShareASale ${action} failed${code}. Not retried.${server}`;
  }
}

export interface ShareASaleClientOptions {
  connection: string;
  baseURL?: string | undefined;
  merchantId: string;
  token: string;
  secret: string;
  apiVersion?: string;
  timeoutMs?: number;
  rateLimit?: { requests: number; intervalMs: number } | undefined;
  retries?: number;
  minBackoffMs?: number;
  logger?: Logger;
  /** Clock for the signature date (tests). */
  now?: () => Date;
  /** Called with the number of HTTP attempts each call made (each attempt spends a credit). */
  onAttempts?: (n: number, action: string) => void | Promise<void>;
}

export interface ShareASaleClient {
  /** Calls one action and returns the body text (a text error throws ShareASaleError). */
  call(action: string, params?: Record<string, string | number | undefined>): Promise<string>;
  readonly http: HttpClient;
}

export function createShareASaleClient(o: ShareASaleClientOptions): ShareASaleClient {
  const http = createHttpClient({
    connection: o.connection,
    baseURL: o.baseURL ?? SHAREASALE_BASE_URL,
    timeoutMs: o.timeoutMs ?? 60_000,
    rateLimit: o.rateLimit,
    retries: o.retries ?? 3,
    minBackoffMs: o.minBackoffMs ?? 1000,
    maxBackoffMs: 30_000,
    ...(o.logger ? { logger: o.logger } : {}),
    inspect: (res: AxiosResponse, c) => {
      const body = typeof res.data === 'string' ? res.data : JSON.stringify(res.data ?? '');
      const action = String((res.config.params as Record<string, unknown> | undefined)?.action ?? '?');
      const xml = String((res.config.params as Record<string, unknown> | undefined)?.format ?? '') === 'xml';
      const e = parseShareASaleTextError(body, { expectXml: xml });
      if (!e) return undefined;
      return new ShareASaleError({ connection: o.connection, method: c.method, path: c.path, status: res.status, kind: e.kind, errorCode: e.errorCode, text: e.text, message: describeShareASaleError(o.connection, e, action) });
    },
  });

  // Signed per attempt (a retry gets a fresh date), from the action actually in the query.
  http.axios.interceptors.request.use((cfg) => {
    const action = String((cfg.params as Record<string, unknown> | undefined)?.action ?? '');
    for (const [k, v] of Object.entries(signedHeaders(o, action))) cfg.headers.set(k, v);
    return cfg;
  });

  async function call(action: string, params: Record<string, string | number | undefined> = {}): Promise<string> {
    const before = http.attempts();
    try {
      const res = await http.get<string>('/w.cfm', {
        params: { merchantId: o.merchantId, token: o.token, version: o.apiVersion ?? '3.0', action, ...params },
        // Keep the body as text: pipe/CSV reports and text errors are not JSON.
        responseType: 'text',
        transformResponse: [(d: unknown) => d],
      });
      return typeof res.data === 'string' ? res.data : String(res.data ?? '');
    } finally {
      const n = http.attempts() - before;
      if (n > 0) await o.onAttempts?.(n, action);
    }
  }
  return { call, http };
}

function signedHeaders(o: ShareASaleClientOptions, action: string): Record<string, string> {
  const date = rfc1123(o.now?.() ?? new Date());
  return {
    'x-ShareASale-Date': date,
    'x-ShareASale-Authentication': shareasaleSignature(o.token, date, action, o.secret),
  };
}
