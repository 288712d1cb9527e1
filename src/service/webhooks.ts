// Webhook handling for Stripe, Chargebee and PartnerStack.
//
// The HTTP layer (routes/webhooks.ts) keeps the raw body and resolves the connection; the handler
// verifies, stores and processes. The connectors own the real handlers: when
// connectors/<source>/webhook.ts exports handle<Source>Webhook(deps, rawBody, headers) →
// { status, body } (deps = { db, connection, config, log, env }) it is used. Otherwise the built-in
// handler below verifies the delivery and stores it in webhook_events (deduplicated on the provider's
// event id, status `received`) so nothing is lost; the next sync picks the change up.
//
// Verification (built-in): Stripe `Stripe-Signature` (HMAC-SHA256 over `${t}.${rawBody}`, every v1
// accepted, webhookSecret may list several comma-separated secrets while rotating, 300 s tolerance);
// Chargebee Basic auth (webhookUsername / webhookPassword credentials); PartnerStack has no signature,
// so the route carries a secret path token (webhookToken credential), checked by the route whichever
// handler runs. All comparisons are constant time.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig } from '../config/schema.ts';
import { resolveSecret } from '../config/load.ts';
import { loadOptionalModule, pickFunction } from './optional-module.ts';

export type WebhookSource = 'stripe' | 'chargebee' | 'partnerstack';
export const WEBHOOK_SOURCES: WebhookSource[] = ['stripe', 'chargebee', 'partnerstack'];

export interface WebhookContext {
  db: Knex;
  config: Config;
  connection: ConnectionConfig;
  log: Logger;
  env: NodeJS.ProcessEnv;
}

export interface WebhookInput {
  rawBody: Buffer;
  headers: IncomingHttpHeaders;
  /** PartnerStack: the token from the URL path (already checked by the route when built in). */
  pathToken?: string | undefined;
}

/** What a handler answers: the HTTP status and a JSON body (the connectors' WebhookResult shape). */
export interface WebhookReply {
  status: number;
  body: Record<string, unknown>;
}

export type WebhookHandler = (ctx: WebhookContext, input: WebhookInput) => Promise<WebhookReply>;

/** The connectors' handler signature. */
type ConnectorWebhookFn = (
  deps: { db: Knex; connection: ConnectionConfig; config: Config; log: Logger; env: NodeJS.ProcessEnv },
  rawBody: Buffer,
  headers: Record<string, string | string[] | undefined>,
) => Promise<WebhookReply>;

/** A delivery that fails verification: 400 (bad signature) or 401 (bad credentials). */
export class WebhookRejected extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: 400 | 401, code: string, message: string) {
    super(message);
    this.name = 'WebhookRejected';
    this.statusCode = statusCode;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Verification helpers

const safeEqual = (a: string, b: string): boolean => {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
};

export const STRIPE_TOLERANCE_SECONDS = 300;

export function verifyStripeSignature(rawBody: Buffer, header: string | undefined, secrets: string[], nowSeconds = Math.floor(Date.now() / 1000), toleranceSeconds = STRIPE_TOLERANCE_SECONDS): void {
  if (!header) throw new WebhookRejected(400, 'signature_missing', 'missing Stripe-Signature header');
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.split('=', 2).map((s) => s.trim());
    if (k === 't' && v && /^\d+$/.test(v)) t = Number(v);
    if (k === 'v1' && v) v1.push(v);
  }
  if (t === undefined || v1.length === 0) throw new WebhookRejected(400, 'signature_invalid', 'malformed Stripe-Signature header');
  const payload = Buffer.concat([Buffer.from(`${t}.`, 'utf8'), rawBody]);
  let ok = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(payload).digest('hex');
    for (const sig of v1) if (safeEqual(expected, sig)) ok = true;
  }
  if (!ok) throw new WebhookRejected(400, 'signature_invalid', 'Stripe-Signature does not match the payload');
  if (toleranceSeconds > 0 && Math.abs(nowSeconds - t) > toleranceSeconds) throw new WebhookRejected(400, 'signature_expired', `Stripe-Signature timestamp is outside the ${toleranceSeconds} s tolerance`);
}

/** Test helper and documentation of the scheme: the header Stripe would send. */
export function stripeSignatureHeader(rawBody: string | Buffer, secret: string, t = Math.floor(Date.now() / 1000)): string {
  const sig = createHmac('sha256', secret).update(Buffer.concat([Buffer.from(`${t}.`), Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody)])).digest('hex');
  return `t=${t},v1=${sig}`;
}

export function verifyBasicAuth(header: string | string[] | undefined, username: string, password: string): void {
  const h = Array.isArray(header) ? header[0] : header;
  const m = h ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h) : null;
  if (!m) throw new WebhookRejected(401, 'unauthorized', 'missing Basic credentials');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const idx = decoded.indexOf(':');
  const u = idx >= 0 ? decoded.slice(0, idx) : decoded;
  const p = idx >= 0 ? decoded.slice(idx + 1) : '';
  const okU = safeEqual(u, username);
  const okP = safeEqual(p, password);
  if (!(okU && okP)) throw new WebhookRejected(401, 'unauthorized', 'invalid Basic credentials');
}

export function verifyPathToken(presented: string | undefined, expected: string): void {
  if (!presented || !safeEqual(presented, expected)) throw new WebhookRejected(401, 'unauthorized', 'invalid webhook token');
}

// ---------------------------------------------------------------------------------------------
// Built-in store-first handlers

function parseJson(raw: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new WebhookRejected(400, 'invalid_payload', 'webhook body must be a JSON object');
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined);

async function storeEvent(ctx: WebhookContext, source: WebhookSource, eventId: string, eventType: string, payload: Record<string, unknown>): Promise<WebhookReply> {
  const inserted = await ctx.db('webhook_events')
    .insert({ source, connection: ctx.connection.name, event_id: eventId, event_type: eventType, payload: JSON.stringify(payload), status: 'received' })
    .onConflict(['connection', 'event_id'])
    .ignore()
    .returning('id');
  return { status: 200, body: { received: true, stored: inserted.length > 0, duplicate: inserted.length === 0, eventId, eventType } };
}

/** Built-in handlers: verify, then store (processing is left to the next sync). Rejections → 400/401. */
const builtinVerifyAndStore: Record<WebhookSource, WebhookHandler> = {
  async stripe(ctx, input) {
    const secrets = resolveSecret(ctx.connection, 'webhookSecret', ctx.env)!.split(',').map((x) => x.trim()).filter(Boolean);
    const sig = input.headers['stripe-signature'];
    verifyStripeSignature(input.rawBody, Array.isArray(sig) ? sig[0] : sig, secrets);
    const event = parseJson(input.rawBody);
    const id = str(event.id);
    const type = str(event.type);
    if (!id || !type) throw new WebhookRejected(400, 'invalid_payload', 'Stripe event without id or type');
    return storeEvent(ctx, 'stripe', id, type, event);
  },
  async chargebee(ctx, input) {
    const user = resolveSecret(ctx.connection, 'webhookUsername', ctx.env)!;
    const pass = resolveSecret(ctx.connection, 'webhookPassword', ctx.env)!;
    verifyBasicAuth(input.headers.authorization, user, pass);
    const event = parseJson(input.rawBody);
    const id = str(event.id);
    const type = str(event.event_type);
    if (!id || !type) throw new WebhookRejected(400, 'invalid_payload', 'Chargebee event without id or event_type');
    return storeEvent(ctx, 'chargebee', id, type, event);
  },
  async partnerstack(ctx, input) {
    verifyPathToken(input.pathToken, resolveSecret(ctx.connection, 'webhookToken', ctx.env)!);
    const event = parseJson(input.rawBody);
    const data = (event.data && typeof event.data === 'object' ? event.data : {}) as Record<string, unknown>;
    const type = str(event.event) ?? str(event.type) ?? str(event.event_type) ?? 'unknown';
    // PartnerStack documents no event id: the object key + type, else a digest of the body.
    const id = str(event.id) ?? (str(data.key) ? `${type}:${str(data.key)}${str(data.updated_at) ? `:${str(data.updated_at)}` : ''}` : `sha256:${createHash('sha256').update(input.rawBody).digest('hex')}`);
    return storeEvent(ctx, 'partnerstack', id, type, event);
  },
};

const rejectionReply = (err: unknown): WebhookReply => {
  if (err instanceof WebhookRejected) return { status: err.statusCode, body: { error: err.message, code: err.code } };
  throw err;
};

export const builtinHandlers: Record<WebhookSource, WebhookHandler> = {
  stripe: (ctx, input) => builtinVerifyAndStore.stripe(ctx, input).catch(rejectionReply),
  chargebee: (ctx, input) => builtinVerifyAndStore.chargebee(ctx, input).catch(rejectionReply),
  partnerstack: (ctx, input) => builtinVerifyAndStore.partnerstack(ctx, input).catch(rejectionReply),
};

/** The connectors' handlers when present, else the built-in ones (overrides first: tests). */
export async function resolveWebhookHandlers(overrides: Partial<Record<WebhookSource, WebhookHandler>> = {}): Promise<{ handlers: Record<WebhookSource, WebhookHandler>; origin: Record<WebhookSource, 'override' | 'connector' | 'builtin'> }> {
  const handlers = { ...builtinHandlers };
  const origin: Record<WebhookSource, 'override' | 'connector' | 'builtin'> = { stripe: 'builtin', chargebee: 'builtin', partnerstack: 'builtin' };
  for (const source of WEBHOOK_SOURCES) {
    const o = overrides[source];
    if (o) {
      handlers[source] = o;
      origin[source] = 'override';
      continue;
    }
    const mod = await loadOptionalModule(`connectors/${source}/webhook`);
    const cap = source[0]!.toUpperCase() + source.slice(1);
    const fn = pickFunction<ConnectorWebhookFn>(mod, [`handle${cap}Webhook`, 'handleWebhook']);
    if (fn) {
      handlers[source] = (ctx, input) => fn({ db: ctx.db, connection: ctx.connection, config: ctx.config, log: ctx.log, env: ctx.env }, input.rawBody, input.headers);
      origin[source] = 'connector';
    }
  }
  return { handlers, origin };
}
