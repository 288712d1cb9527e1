import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { configSchema, connectionSchema, type ConnectionConfig } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import { connector } from '../index.ts';
import { startStripeFake, type StripeFake } from '../fake-server.ts';
import { createStripeApi } from '../client.ts';
import { handleStripeWebhook } from '../webhook.ts';
import { mapInvoice } from '../mapping.ts';
import { invoiceSchema } from '../schemas.ts';
import { dispute, scenario, subscription, T0, DAY } from './fixtures.ts';

const env = { STRIPE_KEY: 'sk_test_fake', STRIPE_WHSEC: 'whsec_new_secret,whsec_old_secret' };
const config = configSchema.parse({});

function conn(url: string, options: Record<string, unknown> = {}): ConnectionConfig {
  return connectionSchema.parse({
    name: 'stripe-main',
    type: 'stripe',
    baseUrl: url,
    credentials: { apiKey: 'STRIPE_KEY', webhookSecret: 'STRIPE_WHSEC' },
    timeoutMs: 5000,
    options: { backoffBaseMs: 5, backoffMaxMs: 20, maxNetworkRetries: 2, ...options },
  });
}

async function sync(t: TestDb, c: ConnectionConfig) {
  const streams = connector.streams({ db: t.db, config, connection: c, log: silentLogger, now: new Date(), runId: 0, env });
  return runStreams({ db: t.db, config, connection: c, streams, log: silentLogger, env });
}

type EventRow = { kind: string; external_id: string; amount_minor: string; gross_minor: string | null; tax_minor: string | null; currency: string; amount_usd_minor: string | null; exchange_rate: string | null; fx_source: string | null; settlement_minor: string | null; classification: string | null; payment_external_id: string | null; payment_event_id: string | null; plan_interval: string | null; deleted_at: Date | null; occurred_at: Date; subscription_id: string | null; customer_id: string | null };

async function events(t: TestDb): Promise<Map<string, EventRow>> {
  const rows = await t.db('billing_events').select<EventRow[]>('*');
  return new Map(rows.map((r) => [`${r.kind}:${r.external_id}`, r]));
}

describe('stripe connector against the fake server', () => {
  let fake: StripeFake;
  let t: TestDb;
  beforeAll(async () => {
    fake = await startStripeFake();
    fake.store.add(...scenario());
    t = await createTestDb();
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  it('syncs every stream (paging 2 per page, with a 429 and a 500 on the way) and is idempotent', async () => {
    const c = conn(fake.url, { pageSize: 2 });
    fake.setFaults({ rateLimit: 1, match: /\/v1\/invoices$/ });
    const first = await sync(t, c);
    expect(first.status, first.error).toBe('succeeded');
    expect(first.streams.invoices!.records).toBe(8);
    expect(first.streams.invoices!.pages).toBe(4);
    expect(fake.requests.some((r) => r.status === 429)).toBe(true);
    fake.setFaults({ fail5xx: 1, match: /\/v1\/refunds$/ });
    const before = await t.db('billing_events').count<{ n: string }[]>({ n: '*' });
    const second = await sync(t, c);
    expect(second.status, second.error).toBe('succeeded');
    const after = await t.db('billing_events').count<{ n: string }[]>({ n: '*' });
    expect(after[0]!.n).toBe(before[0]!.n);
    expect(Number((await t.db('subscription_states').count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(7);
  });

  it('customers: customer_key, agency owner and test flag', async () => {
    const rows = await t.db('customers').select<{ customer_key: string; is_test: boolean; agency_owner_ref: string | null }[]>('customer_key', 'is_test', 'agency_owner_ref');
    const by = new Map(rows.map((r) => [r.customer_key, r]));
    expect(by.get('ck_eur')!.agency_owner_ref).toBe('pk_agency');
    expect(by.get('ck_coupon')!.is_test).toBe(true);
    expect(by.get('ck_lost')!.is_test).toBe(false);
    expect(by.has('~stripe:cus_oneoff')).toBe(true);
  });

  it('$1 trial then full-price rebill: trial, then qualified with base excl. tax', async () => {
    const ev = await events(t);
    const trial = ev.get('payment:in_trial')!;
    expect(trial.classification).toBe('trial');
    expect(Number(trial.amount_minor)).toBe(100);
    const rebill = ev.get('payment:in_rebill')!;
    // $110.00 paid incl. $10.00 tax → base 11000 − 1000 = 10000.
    expect(rebill.classification).toBe('qualified');
    expect(Number(rebill.amount_minor)).toBe(10000);
    expect(Number(rebill.gross_minor)).toBe(11000);
    expect(Number(rebill.tax_minor)).toBe(1000);
    expect(Number(rebill.amount_usd_minor)).toBe(10000);
    expect(rebill.fx_source).toBe('identity');
    expect(rebill.subscription_id).not.toBeNull();
    expect(ev.get('payment:in_coupon')!.classification).toBe('zero');
    expect(ev.get('payment:in_oneoff')!.classification).toBe('non_subscription');
    expect(ev.has('payment:in_open')).toBe(false);
  });

  it('a partial refund and a second partial refund are separate events linked to the payment', async () => {
    const ev = await events(t);
    const pay = ev.get('payment:in_rebill')!;
    const r1 = ev.get('refund:re_1')!;
    const r2 = ev.get('refund:re_2')!;
    // Base terms: 3000 × 10000/11000 = 2727.27 → 2727; 2000 × 10000/11000 = 1818.18 → 1818.
    expect([Number(r1.amount_minor), Number(r1.gross_minor)]).toEqual([2727, 3000]);
    expect([Number(r2.amount_minor), Number(r2.gross_minor)]).toEqual([1818, 2000]);
    expect(r1.payment_event_id).toBe(pay.payment_event_id === null ? r1.payment_event_id : r1.payment_event_id);
    const payId = (await t.db('billing_events').where({ kind: 'payment', external_id: 'in_rebill' }).first<{ id: string }>('id'))!.id;
    expect(String(r1.payment_event_id)).toBe(String(payId));
    expect(String(r2.payment_event_id)).toBe(String(payId));
    expect(ev.has('refund:re_3')).toBe(false); // pending
    expect(ev.get('refund:re_4')!.deleted_at).not.toBeNull(); // failed
  });

  it('a dispute won and one lost', async () => {
    const ev = await events(t);
    expect(ev.get('dispute_opened:dp_won')).toBeDefined();
    const won = ev.get('dispute_won:dp_won')!;
    expect(won.occurred_at.toISOString()).toBe('2025-03-10T00:00:00.000Z');
    expect(ev.has('chargeback:dp_won')).toBe(false);
    expect(Number(ev.get('chargeback:dp_lost')!.amount_minor)).toBe(5000);
    expect(ev.get('dispute_lost:dp_lost')).toBeDefined();
    expect(ev.get('chargeback:dp_lost')!.payment_external_id).toBe('in_lost');
  });

  it('annual plan in EUR converted with the settlement rate', async () => {
    const e = (await events(t)).get('payment:in_eur')!;
    // €1,190.00 incl. €190.00 VAT → base 100000; USD = 100000 × 1.09 = 109000 ($1,090.00).
    expect(e.currency).toBe('EUR');
    expect(Number(e.amount_minor)).toBe(100000);
    expect(Number(e.amount_usd_minor)).toBe(109000);
    expect(Number(e.exchange_rate)).toBe(1.09);
    expect(e.fx_source).toBe('settlement');
    expect(Number(e.settlement_minor)).toBe(129710);
    expect(e.plan_interval).toBe('year');
    expect(e.classification).toBe('qualified');
  });

  it('subscription state history: trialing → active', async () => {
    const rows = await t.db('subscription_states as s').join('subscriptions as x', 'x.id', 's.subscription_id').where('x.external_id', 'sub_trial').orderBy('s.valid_from').select<{ status: string; valid_from: Date }[]>('s.status', 's.valid_from');
    expect(rows.map((r) => r.status)).toEqual(['trialing', 'active']);
    expect(rows[1]!.valid_from.toISOString()).toBe(new Date((T0 + 14 * DAY) * 1000).toISOString());
    const lost = await t.db('subscription_states as s').join('subscriptions as x', 'x.id', 's.subscription_id').where('x.external_id', 'sub_lost').orderBy('s.valid_from').select<{ status: string }[]>('s.status');
    expect(lost.map((r) => r.status)).toEqual(['active', 'canceled']);
  });

  it('a bad API key fails the run with Stripe’s message', async () => {
    const streams = connector.streams({ db: t.db, config, connection: conn(fake.url), log: silentLogger, now: new Date(), runId: 0, env: { ...env, STRIPE_KEY: 'sk_wrong' } });
    const r = await runStreams({ db: t.db, config, connection: { ...conn(fake.url), name: 'stripe-bad' }, streams, log: silentLogger, env });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/Invalid API Key/);
  });
});

describe('stripe mapping (pure)', () => {
  it('partly paid from customer credit: base split pro rata', () => {
    const inv = invoiceSchema.parse({ id: 'in_x', currency: 'usd', created: T0, status: 'paid', amount_paid: 5500, total: 11000, total_excluding_tax: 10000, parent: { subscription_details: { subscription: 'sub_x' } } });
    const e = mapInvoice(inv, { connection: 'c', customerId: 1, subscription: undefined, links: null })!;
    // 5500 × 10000 / 11000 = 5000; tax share 500.
    expect([e.amountMinor, e.taxMinor, e.classification]).toEqual([5000, 500, 'qualified']);
  });
  it('a $0 "Trial period" line is a trial, not merely zero', () => {
    const inv = invoiceSchema.parse({ id: 'in_y', currency: 'usd', created: T0, status: 'paid', amount_paid: 0, total: 0, total_excluding_tax: 0, parent: { subscription_details: { subscription: 'sub_y' } }, lines: { data: [{ description: 'Trial period for Kartra Silver', amount: 0 }] } });
    expect(mapInvoice(inv, { connection: 'c', customerId: 1, subscription: undefined, links: null })!.classification).toBe('trial');
  });
});

describe('stripe webhooks', () => {
  let fake: StripeFake;
  let t: TestDb;
  let c: ConnectionConfig;
  const sign = (payload: string, secret = 'whsec_old_secret', timestamp?: number) => Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
  const deps = () => ({ db: t.db, connection: c, config, log: silentLogger, env, api: createStripeApi(c, env) });
  const evt = (id: string, type: string, object: Record<string, unknown>, created = Math.floor(Date.now() / 1000)) => JSON.stringify({ id, object: 'event', type, created, data: { object }, api_version: '2025-03-31.basil' });

  beforeAll(async () => {
    fake = await startStripeFake();
    fake.store.add(...scenario());
    t = await createTestDb();
    c = conn(fake.url);
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  it('valid (rotated secret), then duplicate', async () => {
    const body = evt('evt_1', 'invoice.paid', { id: 'in_rebill', object: 'invoice' });
    const r = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const pay = await t.db('billing_events').where({ kind: 'payment', external_id: 'in_rebill' }).first<{ amount_minor: string; classification: string }>();
    expect(Number(pay!.amount_minor)).toBe(10000);
    // The subscription was fetched on demand so the trial window is known.
    expect(pay!.classification).toBe('qualified');
    const dup = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body, 'whsec_new_secret') });
    expect(dup).toMatchObject({ status: 200, body: { duplicate: true } });
    const row = await t.db('webhook_events').where({ event_id: 'evt_1' }).first<{ status: string }>();
    expect(row!.status).toBe('processed');
    expect(Number((await t.db('webhook_events').count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(1);
  });

  it('tampered body → 400, nothing stored', async () => {
    const body = evt('evt_2', 'invoice.paid', { id: 'in_eur', object: 'invoice' });
    const r = await handleStripeWebhook(deps(), Buffer.from(body.replace('in_eur', 'in_won')), { 'stripe-signature': sign(body) });
    expect(r.status).toBe(400);
    expect(String(r.body.error)).toMatch(/signature does not match/);
    expect(await t.db('webhook_events').where({ event_id: 'evt_2' }).first()).toBeUndefined();
    const missing = await handleStripeWebhook(deps(), Buffer.from(body), {});
    expect(missing.status).toBe(400);
    expect(String(missing.body.error)).toMatch(/missing Stripe-Signature/);
  });

  it('expired timestamp → 400', async () => {
    const body = evt('evt_3', 'invoice.paid', { id: 'in_eur', object: 'invoice' });
    const r = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body, 'whsec_new_secret', Math.floor(Date.now() / 1000) - 3600) });
    expect(r.status).toBe(400);
    expect(String(r.body.error)).toMatch(/tolerance/);
    expect(r.body.code).toBe('timestamp_outside_tolerance');
  });

  it('out-of-order pair: the re-fetched current state wins', async () => {
    // The subscription was canceled after being updated; the "canceled" event arrives first.
    fake.store.add(subscription('sub_won', 'cus_won', T0 + 10, { status: 'canceled', canceledAt: T0 + 60 * DAY }));
    const late = evt('evt_sub_2', 'customer.subscription.deleted', { id: 'sub_won', object: 'subscription', status: 'canceled' }, T0 + 60 * DAY);
    const early = evt('evt_sub_1', 'customer.subscription.updated', { id: 'sub_won', object: 'subscription', status: 'active' }, T0 + 30 * DAY);
    expect((await handleStripeWebhook(deps(), Buffer.from(late), { 'stripe-signature': sign(late) })).status).toBe(200);
    expect((await handleStripeWebhook(deps(), Buffer.from(early), { 'stripe-signature': sign(early) })).status).toBe(200);
    const sub = await t.db('subscriptions').where({ external_id: 'sub_won' }).first<{ status: string }>();
    expect(sub!.status).toBe('canceled');
  });

  it('dispute closed (lost) via webhook uses the event time; a failing API leaves the event failed for retry', async () => {
    fake.store.add(dispute('dp_lost', 'lost', T0 + 21 * DAY, 5000, 'lost'));
    const closedAt = T0 + 50 * DAY;
    const body = evt('evt_dp', 'charge.dispute.closed', { id: 'dp_lost', object: 'dispute' }, closedAt);
    fake.setFaults({ fail5xx: 10, match: /disputes/ });
    const failed = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body) });
    expect(failed.status).toBe(500);
    expect((await t.db('webhook_events').where({ event_id: 'evt_dp' }).first<{ status: string }>())!.status).toBe('failed');
    fake.setFaults({});
    const ok = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body) });
    expect(ok.status).toBe(200);
    const cb = await t.db('billing_events').where({ kind: 'chargeback', external_id: 'dp_lost' }).first<{ occurred_at: Date }>();
    expect(cb!.occurred_at.toISOString()).toBe(new Date(closedAt * 1000).toISOString());
  });

  it('charge.refunded writes each partial refund separately', async () => {
    const body = evt('evt_ref', 'charge.refunded', { id: 'ch_rebill', object: 'charge', amount_refunded: 5000 });
    const r = await handleStripeWebhook(deps(), Buffer.from(body), { 'stripe-signature': sign(body) });
    expect(r.status).toBe(200);
    const refunds = await t.db('billing_events').where({ kind: 'refund' }).whereNull('deleted_at').orderBy('external_id').select<{ external_id: string; amount_minor: string; payment_external_id: string }[]>('external_id', 'amount_minor', 'payment_external_id');
    expect(refunds.map((x) => [x.external_id, Number(x.amount_minor), x.payment_external_id])).toEqual([
      ['re_1', 2727, 'in_rebill'],
      ['re_2', 1818, 'in_rebill'],
    ]);
  });
});
