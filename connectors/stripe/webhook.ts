// Stripe webhook handler, called by the HTTP layer with the RAW body and the request headers.
// 1. Verify Stripe-Signature (HMAC-SHA256 over `${t}.${rawBody}`, timestamp tolerance) against
//    every configured secret (webhookSecret may be "whsec_new,whsec_old" while rotating) → 400.
// 2. Store the event in webhook_events (deduped on event id) BEFORE processing.
// 3. Process by re-fetching the object from the API (so out-of-order or stale deliveries write the
//    current state), through the same writers as the sync streams. A failure leaves the row
//    `failed` and answers 500 so Stripe redelivers; reprocessStripeWebhooks retries stored rows.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import Stripe from 'stripe';
import type { Config, ConnectionConfig } from '../../src/config/schema.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { errorMessage } from '../../src/util/errors.ts';
import { header, reprocessStoredEvents, storeAndProcess, type WebhookResult } from '../billing/webhook-store.ts';
import { createStripeApi, type StripeApi } from './client.ts';
import { customerSchema, disputeSchema, eventSchema, invoiceSchema, refId, refundSchema, subscriptionSchema, type StripeEvent, type StripeRefund } from './schemas.ts';
import { fetchInvoiceLinks, paymentRefOf, resolvePayments, writeCustomers, writeDisputes, writeInvoices, writeRefunds, writeSubscriptions } from './streams.ts';
import { invoiceSubscriptionId } from './mapping.ts';
import { subscriptionFacts } from '../billing/common.ts';

export interface StripeWebhookDeps {
  db: Knex;
  connection: ConnectionConfig;
  config?: Config;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Injected API (tests); built from the connection otherwise. */
  api?: StripeApi;
}

export type { WebhookResult };

/** Verifies the signature with each secret in turn; returns the event or a clear reason. */
export function verifyStripeSignature(rawBody: Buffer | string, signature: string | undefined, secrets: string[], toleranceSeconds: number): { ok: true; event: unknown } | { ok: false; error: string } {
  if (!signature) return { ok: false, error: 'missing Stripe-Signature header' };
  if (secrets.length === 0) return { ok: false, error: 'no webhook secret configured' };
  let last = '';
  for (const secret of secrets) {
    try {
      return { ok: true, event: Stripe.webhooks.constructEvent(rawBody, signature, secret, toleranceSeconds) };
    } catch (err) {
      const msg = errorMessage(err);
      // A stale timestamp is the same for every secret: report it rather than "no match".
      if (/tolerance/i.test(msg)) return { ok: false, error: 'timestamp outside the tolerance window (replayed or delayed delivery)' };
      last = msg;
    }
  }
  return { ok: false, error: `signature does not match any configured webhook secret${last ? ` (${last.split('\n')[0]})` : ''}` };
}

export async function handleStripeWebhook(deps: StripeWebhookDeps, rawBody: Buffer | string, headers: Record<string, string | string[] | undefined>): Promise<WebhookResult> {
  const env = deps.env ?? process.env;
  const api = deps.api ?? createStripeApi(deps.connection, env, deps.log);
  const secrets = (resolveSecret(deps.connection, 'webhookSecret', env) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const verified = verifyStripeSignature(rawBody, header(headers, 'stripe-signature'), secrets, api.options.webhookToleranceSeconds);
  if (!verified.ok) {
    deps.log?.warn({ connection: deps.connection.name, reason: verified.error }, 'stripe webhook rejected');
    const code = /missing/.test(verified.error) ? 'signature_missing' : /tolerance/.test(verified.error) ? 'timestamp_outside_tolerance' : 'signature_invalid';
    return { status: 400, body: { error: `Stripe webhook rejected: ${verified.error}`, code } };
  }
  const parsed = eventSchema.safeParse(verified.event);
  if (!parsed.success) return { status: 400, body: { error: 'Stripe webhook rejected: body is not a Stripe event', code: 'invalid_event' } };
  const event = parsed.data;
  return storeAndProcess(deps.db, { source: 'stripe', connection: deps.connection.name, eventId: event.id, eventType: event.type, payload: verified.event }, () =>
    processStripeEvent(api, deps.db, deps.connection.name, event),
  );
}

/** Retries stored events that are still `received` or `failed` (e.g. after an outage). */
export async function reprocessStripeWebhooks(deps: StripeWebhookDeps, limit = 100): Promise<{ processed: number; failed: number }> {
  const api = deps.api ?? createStripeApi(deps.connection, deps.env ?? process.env, deps.log);
  return reprocessStoredEvents(deps.db, 'stripe', deps.connection.name, limit, (payload) => processStripeEvent(api, deps.db, deps.connection.name, eventSchema.parse(payload)));
}

async function ensureSubscription(api: StripeApi, db: Knex, connection: string, subId: string | null): Promise<void> {
  if (!subId) return;
  const known = await subscriptionFacts(db, connection, [subId]);
  if (known.has(subId)) return;
  const sub = subscriptionSchema.parse(await api.call((s) => s.subscriptions.retrieve(subId)));
  await db.transaction((trx) => writeSubscriptions(trx, connection, [sub]));
}

/** Re-fetches the object an event points at and writes its current state. */
export async function processStripeEvent(api: StripeApi, db: Knex, connection: string, event: StripeEvent): Promise<Record<string, unknown>> {
  const obj = event.data.object;
  const id = obj.id ?? '';
  const type = event.type;
  if (type.startsWith('customer.subscription.')) {
    const sub = subscriptionSchema.parse(await api.call((s) => s.subscriptions.retrieve(id)));
    const custId = refId(sub.customer);
    const cust = custId ? customerSchema.safeParse(await api.call((s) => s.customers.retrieve(custId))) : null;
    await db.transaction(async (trx) => {
      if (cust?.success) await writeCustomers(trx, connection, [cust.data]);
      await writeSubscriptions(trx, connection, [sub]);
    });
    return { object: 'subscription', id, status: sub.status };
  }
  if (type === 'customer.created' || type === 'customer.updated') {
    const cust = customerSchema.parse(await api.call((s) => s.customers.retrieve(id)));
    await db.transaction((trx) => writeCustomers(trx, connection, [cust]));
    return { object: 'customer', id };
  }
  if (type.startsWith('invoice.') || type.startsWith('invoice_payment.')) {
    const invoiceId = type.startsWith('invoice_payment.') ? refId((obj as { invoice?: string | { id: string } }).invoice ?? null) : id;
    if (!invoiceId) return { ignored: true };
    const inv = invoiceSchema.parse(await api.call((s) => s.invoices.retrieve(invoiceId)));
    await ensureSubscription(api, db, connection, invoiceSubscriptionId(inv));
    const links = new Map([[inv.id, await fetchInvoiceLinks(api, inv)]]);
    const written = await db.transaction((trx) => writeInvoices(trx, connection, [inv], links));
    return { object: 'invoice', id: inv.id, status: inv.status ?? null, written };
  }
  if (type.startsWith('charge.dispute.')) {
    const d = disputeSchema.parse(await api.call((s) => s.disputes.retrieve(id, { expand: ['charge'] })));
    const resolved = await resolvePayments(api, db, connection, [paymentRefOf(d)]);
    const closedAt = type === 'charge.dispute.closed' ? new Map([[d.id, new Date(event.created * 1000)]]) : undefined;
    const written = await db.transaction((trx) => writeDisputes(trx, connection, [d], resolved, closedAt));
    return { object: 'dispute', id, status: d.status, written };
  }
  if (type === 'charge.refunded' || type.startsWith('charge.refund.') || type.startsWith('refund.')) {
    let refunds: StripeRefund[];
    if (obj.object === 'charge' || type === 'charge.refunded') {
      // One charge, possibly several partial refunds: each is its own event (never amount_refunded).
      const res = await api.call((s) => s.refunds.list({ charge: id, limit: 100, expand: ['data.charge', 'data.balance_transaction'] }));
      refunds = (res.data as unknown[]).map((r) => refundSchema.parse(r));
    } else {
      refunds = [refundSchema.parse(await api.call((s) => s.refunds.retrieve(id, { expand: ['charge', 'balance_transaction'] })))];
    }
    const resolved = await resolvePayments(api, db, connection, refunds.map(paymentRefOf));
    const written = await db.transaction((trx) => writeRefunds(trx, connection, refunds, resolved));
    return { object: 'refund', ids: refunds.map((r) => r.id), written };
  }
  return { ignored: true, type };
}
