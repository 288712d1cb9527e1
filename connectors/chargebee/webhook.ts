// Chargebee webhook handler, called by the HTTP layer with the raw body and the request headers.
// Chargebee signs nothing: protection is HTTP Basic auth (webhookUsername / webhookPassword),
// compared in constant time → 401 otherwise. Then: store in webhook_events (deduped on event id),
// process by re-fetching every object the event carries (customer, subscription, invoice,
// credit note, transaction) so out-of-order deliveries write the current state, mark processed;
// a failure leaves the row `failed` and answers 500 so Chargebee redelivers.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig } from '../../src/config/schema.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { header, reprocessStoredEvents, storeAndProcess, type WebhookResult } from '../billing/webhook-store.ts';
import { subscriptionFacts } from '../billing/common.ts';
import { createChargebeeApi, type ChargebeeApi } from './client.ts';
import { creditNoteSchema, customerSchema, eventSchema, invoiceSchema, subscriptionSchema, transactionSchema, type CbEvent, type CbInvoice, type CbSubscription } from './schemas.ts';
import { invoiceSubscriptionIds } from './mapping.ts';
import { writeCreditNotes, writeCustomers, writeInvoices, writeSubscriptions, writeTransactions } from './streams.ts';

export interface ChargebeeWebhookDeps {
  db: Knex;
  connection: ConnectionConfig;
  config?: Config;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  api?: ChargebeeApi;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time Basic-auth check (both fields always compared; digests hide the lengths). */
export function checkBasicAuth(authorization: string | undefined, user: string, password: string): boolean {
  let gotUser = '';
  let gotPass = '';
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i >= 0) {
      gotUser = decoded.slice(0, i);
      gotPass = decoded.slice(i + 1);
    }
  }
  const u = timingSafeEqual(digest(gotUser), digest(user));
  const p = timingSafeEqual(digest(gotPass), digest(password));
  return u && p && !!authorization;
}

export async function handleChargebeeWebhook(deps: ChargebeeWebhookDeps, rawBody: Buffer | string, headers: Record<string, string | string[] | undefined>): Promise<WebhookResult> {
  const env = deps.env ?? process.env;
  const user = resolveSecret(deps.connection, 'webhookUsername', env)!;
  const password = resolveSecret(deps.connection, 'webhookPassword', env)!;
  if (!checkBasicAuth(header(headers, 'authorization'), user, password)) {
    deps.log?.warn({ connection: deps.connection.name }, 'chargebee webhook rejected: bad or missing Basic auth');
    return { status: 401, body: { error: 'Chargebee webhook rejected: missing or wrong Basic auth credentials', code: 'unauthorized' } };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.isBuffer(rawBody) ? rawBody.toString('utf8') : rawBody);
  } catch {
    return { status: 400, body: { error: 'Chargebee webhook rejected: body is not JSON', code: 'invalid_event' } };
  }
  const parsed = eventSchema.safeParse(json);
  if (!parsed.success) return { status: 400, body: { error: 'Chargebee webhook rejected: body is not a Chargebee event (id, event_type, content expected)', code: 'invalid_event' } };
  const event = parsed.data;
  if (event.api_version && event.api_version !== 'v2') deps.log?.warn({ apiVersion: event.api_version }, 'chargebee webhook api_version differs from the client (v2)');
  const api = deps.api ?? createChargebeeApi(deps.connection, env, deps.log);
  return storeAndProcess(deps.db, { source: 'chargebee', connection: deps.connection.name, eventId: event.id, eventType: event.event_type, payload: json }, () =>
    processChargebeeEvent(api, deps.db, deps.connection.name, event),
  );
}

export async function reprocessChargebeeWebhooks(deps: ChargebeeWebhookDeps, limit = 100): Promise<{ processed: number; failed: number }> {
  const api = deps.api ?? createChargebeeApi(deps.connection, deps.env ?? process.env, deps.log);
  return reprocessStoredEvents(deps.db, 'chargebee', deps.connection.name, limit, (payload) => processChargebeeEvent(api, deps.db, deps.connection.name, eventSchema.parse(payload)));
}

const idIn = (content: Record<string, unknown>, key: string): string | null => {
  const o = content[key] as { id?: unknown } | undefined;
  return o && typeof o.id === 'string' ? o.id : null;
};

type Retrieved = Record<string, unknown>;

/** Re-fetches each object the event carries and writes its current state, dependencies first. */
export async function processChargebeeEvent(api: ChargebeeApi, db: Knex, connection: string, event: CbEvent): Promise<Record<string, unknown>> {
  const c = event.content;
  const cur = api.options.baseCurrency;
  const done: string[] = [];
  const customerId = idIn(c, 'customer');
  if (customerId) {
    const r = (await api.call((cb) => cb.customer.retrieve(customerId))) as unknown as Retrieved;
    const cust = customerSchema.parse(r.customer);
    await db.transaction((trx) => writeCustomers(trx, connection, [cust]));
    done.push(`customer:${customerId}`);
  }
  const subIds = new Set<string>();
  const subId = idIn(c, 'subscription');
  if (subId) subIds.add(subId);
  let invoiceIds: string[] = [];
  const invoiceId = idIn(c, 'invoice');
  if (invoiceId) invoiceIds.push(invoiceId);
  const cnId = idIn(c, 'credit_note');
  const txId = idIn(c, 'transaction');
  const cn = cnId ? creditNoteSchema.parse(((await api.call((cb) => cb.creditNote.retrieve(cnId))) as unknown as Retrieved).credit_note) : null;
  const tx = txId ? transactionSchema.parse(((await api.call((cb) => cb.transaction.retrieve(txId))) as unknown as Retrieved).transaction) : null;
  if (cn?.reference_invoice_id) invoiceIds.push(cn.reference_invoice_id);
  for (const l of tx?.linked_invoices ?? []) invoiceIds.push(l.invoice_id);
  invoiceIds = [...new Set(invoiceIds)];
  const invoices: CbInvoice[] = [];
  for (const id of invoiceIds) {
    const inv = invoiceSchema.parse(((await api.call((cb) => cb.invoice.retrieve(id))) as unknown as Retrieved).invoice);
    invoices.push(inv);
    for (const s of invoiceSubscriptionIds(inv)) subIds.add(s);
  }
  // Subscriptions the event names are re-fetched; ones an invoice needs only when not stored yet.
  const known = await subscriptionFacts(db, connection, [...subIds]);
  const subs: CbSubscription[] = [];
  for (const id of subIds) {
    if (id !== subId && known.has(id)) continue;
    const r = (await api.call((cb) => cb.subscription.retrieve(id))) as unknown as Retrieved;
    subs.push(subscriptionSchema.parse(r.subscription));
    const sc = customerSchema.safeParse(r.customer);
    if (sc.success && sc.data.id !== customerId) await db.transaction((trx) => writeCustomers(trx, connection, [sc.data]));
  }
  await db.transaction(async (trx) => {
    if (subs.length) await writeSubscriptions(trx, connection, subs);
    if (invoices.length) await writeInvoices(trx, connection, invoices, cur);
    if (cn) await writeCreditNotes(trx, connection, [cn], cur);
    if (tx) await writeTransactions(trx, connection, [tx], cur);
  });
  done.push(...subs.map((s) => `subscription:${s.id}`), ...invoices.map((i) => `invoice:${i.id}`), ...(cn ? [`credit_note:${cn.id}`] : []), ...(tx ? [`transaction:${tx.id}`] : []));
  return { objects: done };
}

export type { WebhookResult };
