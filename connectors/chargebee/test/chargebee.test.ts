import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { configSchema, connectionSchema, type ConnectionConfig } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import { connector } from '../index.ts';
import { startChargebeeFake, type ChargebeeFake } from '../fake-server.ts';
import { createChargebeeApi } from '../client.ts';
import { checkBasicAuth, handleChargebeeWebhook } from '../webhook.ts';
import { fill, subscription, T0, DAY } from './fixtures.ts';

const env = { CB_KEY: 'test_fake_cb_key', CB_HOOK_USER: 'hooks', CB_HOOK_PASS: 's3cret-pass' };
const config = configSchema.parse({});

function conn(url: string, options: Record<string, unknown> = {}): ConnectionConfig {
  return connectionSchema.parse({
    name: 'chargebee-main',
    type: 'chargebee',
    baseUrl: url,
    credentials: { apiKey: 'CB_KEY', webhookUsername: 'CB_HOOK_USER', webhookPassword: 'CB_HOOK_PASS' },
    timeoutMs: 5000,
    options: { backoffBaseMs: 5, backoffMaxMs: 20, ...options },
  });
}

async function sync(t: TestDb, c: ConnectionConfig) {
  const streams = connector.streams({ db: t.db, config, connection: c, log: silentLogger, now: new Date(), runId: 0, env });
  return runStreams({ db: t.db, config, connection: c, streams, log: silentLogger, env });
}

type Row = { kind: string; external_id: string; amount_minor: string; gross_minor: string | null; currency: string; amount_usd_minor: string | null; exchange_rate: string | null; fx_source: string | null; classification: string | null; payment_external_id: string | null; payment_event_id: string | null; deleted_at: Date | null; plan_interval: string | null };

async function events(t: TestDb): Promise<Map<string, Row>> {
  const rows = await t.db('billing_events').select<Row[]>('*');
  return new Map(rows.map((r) => [`${r.kind}:${r.external_id}`, r]));
}
const n = (v: string | null | undefined) => (v === null || v === undefined ? null : Number(v));

describe('chargebee connector against the fake server', () => {
  let fake: ChargebeeFake;
  let t: TestDb;
  beforeAll(async () => {
    fake = await startChargebeeFake();
    fill(fake.store);
    t = await createTestDb();
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  it('syncs all streams with updated_at filters + matching sort, offset paging, 429/5xx retries; idempotent', async () => {
    const c = conn(fake.baseUrl, { pageSize: 2 });
    fake.setFaults({ rateLimit: 1, retryAfter: '0', match: /invoices/ });
    const first = await sync(t, c);
    expect(first.status, first.error).toBe('succeeded');
    expect(first.streams.invoices!.records).toBe(7);
    expect(first.streams.invoices!.pages).toBe(4);
    const listCall = fake.requests.find((r) => r.path.endsWith('/invoices') && r.status === 200)!;
    expect(listCall.query['sort_by[asc]']).toBe('updated_at');
    expect(listCall.query['updated_at[between]']).toMatch(/^\[\d+,\d+\]$/);
    expect(fake.requests.some((r) => r.status === 429)).toBe(true);
    const count = async () => Number((await t.db('billing_events').count<{ c: string }[]>({ c: '*' }))[0]!.c);
    const before = await count();
    fake.setFaults({ fail5xx: 1, match: /credit_notes/ });
    const second = await sync(t, c);
    expect(second.status, second.error).toBe('succeeded');
    expect(await count()).toBe(before);
  });

  it('customers: meta_data.customer_key (object or JSON string), agency owner, test flag', async () => {
    const rows = await t.db('customers').select<{ customer_key: string; is_test: boolean; agency_owner_ref: string | null }[]>('customer_key', 'is_test', 'agency_owner_ref');
    const by = new Map(rows.map((r) => [r.customer_key, r]));
    expect(by.get('ck_cb2')!.agency_owner_ref).toBe('pk_agency');
    expect(by.get('ck_cb3')!.is_test).toBe(true);
    expect(by.has('ck_cb1')).toBe(true);
  });

  it('$1 trial then full-price rebill; partial refund and a second partial refund (credit notes)', async () => {
    const ev = await events(t);
    expect(ev.get('payment:inv_trial')!.classification).toBe('trial');
    const rebill = ev.get('payment:inv_rebill')!;
    expect([rebill.classification, n(rebill.amount_minor), n(rebill.gross_minor)]).toEqual(['qualified', 10000, 11000]);
    // 3300 × 10000/11000 = 3000; 2200 × 10000/11000 = 2000.
    expect(n(ev.get('refund:cn_1')!.amount_minor)).toBe(3000);
    expect(n(ev.get('refund:cn_2')!.amount_minor)).toBe(2000);
    expect(ev.get('refund:cn_1')!.payment_event_id).not.toBeNull();
    expect(ev.get('refund:cn_2')!.payment_external_id).toBe('inv_rebill');
    expect(ev.has('refund:cn_store')).toBe(false);
  });

  it('a consolidated invoice becomes one payment per subscription share', async () => {
    const ev = await events(t);
    expect(ev.has('payment:inv_cons')).toBe(false);
    const a = ev.get('payment:inv_cons:cb_sub_a')!;
    const b = ev.get('payment:inv_cons:cb_sub_b')!;
    const one = ev.get('payment:inv_cons:_')!;
    // base ROUND(10000 × 10000/11000) = 9091 over 5000:4000:1000 → 4546, 3636, 909.
    expect([n(a.amount_minor), n(b.amount_minor), n(one.amount_minor)]).toEqual([4546, 3636, 909]);
    expect([n(a.gross_minor), n(b.gross_minor), n(one.gross_minor)]).toEqual([5000, 4000, 1000]);
    expect([a.classification, b.classification, one.classification]).toEqual(['qualified', 'qualified', 'non_subscription']);
    // late_failure of the whole 10000 → split over the shares' paid amounts, each in base terms.
    const late = [...ev.values()].filter((r) => r.kind === 'reversal' && r.external_id.startsWith('txn_late'));
    expect(late.map((r) => [r.external_id, n(r.amount_minor), r.payment_external_id]).sort()).toEqual([
      ['txn_late:_', 909, 'inv_cons:_'],
      ['txn_late:cb_sub_a', 4546, 'inv_cons:cb_sub_a'],
      ['txn_late:cb_sub_b', 3636, 'inv_cons:cb_sub_b'],
    ]);
    expect(n(ev.get('reversal:txn_rev')!.amount_minor)).toBe(100);
    expect(ev.has('reversal:txn_ok')).toBe(false);
  });

  it('annual EUR plan with the invoice exchange_rate, and a chargeback credit note', async () => {
    const ev = await events(t);
    const e = ev.get('payment:inv_eur')!;
    // €1,190.00 incl. €190.00 VAT → base 100000; 100000 × 1.09 = 109000 USD cents.
    expect([e.currency, n(e.amount_minor), n(e.amount_usd_minor), e.fx_source, e.plan_interval]).toEqual(['EUR', 100000, 109000, 'settlement', 'year']);
    const cb = ev.get('chargeback:cn_cb')!;
    expect([n(cb.amount_minor), n(cb.amount_usd_minor), cb.payment_external_id]).toEqual([100000, 109000, 'inv_eur']);
  });

  it('zero and negative invoices are never qualified; unpaid invoices are not payments', async () => {
    const ev = await events(t);
    expect(ev.get('payment:inv_zero')!.classification).toBe('zero');
    expect(ev.get('payment:inv_neg')!.classification).toBe('negative');
    expect(ev.has('payment:inv_due')).toBe(false);
  });

  it('subscription states: statuses normalized, trial → active, cancelled', async () => {
    const rows = await t.db('subscriptions').select<{ external_id: string; status: string; plan_interval: string | null }[]>('external_id', 'status', 'plan_interval');
    const by = new Map(rows.map((r) => [r.external_id, r]));
    expect(by.get('cb_sub_eur')).toMatchObject({ status: 'canceled', plan_interval: 'year' });
    expect(by.get('cb_sub_b')!.status).toBe('non_renewing');
    const st = await t.db('subscription_states as s').join('subscriptions as x', 'x.id', 's.subscription_id').where('x.external_id', 'cb_sub_trial').orderBy('s.valid_from').select<{ status: string }[]>('s.status');
    expect(st.map((r) => r.status)).toEqual(['trialing', 'active']);
  });
});

describe('chargebee webhooks', () => {
  let fake: ChargebeeFake;
  let t: TestDb;
  let c: ConnectionConfig;
  const auth = (u = 'hooks', p = 's3cret-pass') => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  const deps = () => ({ db: t.db, connection: c, config, log: silentLogger, env, api: createChargebeeApi(c, env) });
  const evt = (id: string, type: string, content: Record<string, unknown>, at = Math.floor(Date.now() / 1000)) => JSON.stringify({ id, event_type: type, occurred_at: at, api_version: 'v2', object: 'event', content });

  beforeAll(async () => {
    fake = await startChargebeeFake();
    fill(fake.store);
    t = await createTestDb();
    c = conn(fake.baseUrl);
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  it('constant-time Basic auth check', () => {
    expect(checkBasicAuth(auth().authorization, 'hooks', 's3cret-pass')).toBe(true);
    expect(checkBasicAuth(auth('hooks', 'nope').authorization, 'hooks', 's3cret-pass')).toBe(false);
    expect(checkBasicAuth(undefined, '', '')).toBe(false);
  });

  it('valid event is stored then processed by re-fetching; a duplicate is acknowledged', async () => {
    const body = evt('ev_1', 'payment_succeeded', { invoice: { id: 'inv_rebill', status: 'posted' }, customer: { id: 'cb_cus_1' }, subscription: { id: 'cb_sub_trial' } });
    const r = await handleChargebeeWebhook(deps(), Buffer.from(body), auth());
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const pay = await t.db('billing_events').where({ kind: 'payment', external_id: 'inv_rebill' }).first<{ amount_minor: string; classification: string }>();
    expect([Number(pay!.amount_minor), pay!.classification]).toEqual([10000, 'qualified']);
    const dup = await handleChargebeeWebhook(deps(), Buffer.from(body), auth());
    expect(dup).toMatchObject({ status: 200, body: { duplicate: true } });
  });

  it('wrong credentials → 401; malformed body → 400; nothing stored', async () => {
    const body = evt('ev_bad', 'payment_succeeded', { invoice: { id: 'inv_eur' } });
    expect((await handleChargebeeWebhook(deps(), Buffer.from(body), auth('hooks', 'guess'))).status).toBe(401);
    expect((await handleChargebeeWebhook(deps(), Buffer.from(body), {})).status).toBe(401);
    expect((await handleChargebeeWebhook(deps(), Buffer.from('{"id":'), auth())).status).toBe(400);
    expect(await t.db('webhook_events').where({ event_id: 'ev_bad' }).first()).toBeUndefined();
  });

  it('out-of-order pair: cancellation delivered before activation ends canceled', async () => {
    fake.store.add('subscriptions', subscription('cb_sub_a', 'cb_cus_2', { status: 'cancelled', cancelledAt: T0 + 90 * DAY }));
    const cancelled = evt('ev_c', 'subscription_cancelled', { subscription: { id: 'cb_sub_a', status: 'cancelled' } }, T0 + 90 * DAY);
    const activated = evt('ev_a', 'subscription_activated', { subscription: { id: 'cb_sub_a', status: 'active' } }, T0 + DAY);
    expect((await handleChargebeeWebhook(deps(), Buffer.from(cancelled), auth())).status).toBe(200);
    expect((await handleChargebeeWebhook(deps(), Buffer.from(activated), auth())).status).toBe(200);
    expect((await t.db('subscriptions').where({ external_id: 'cb_sub_a' }).first<{ status: string }>())!.status).toBe('canceled');
  });

  it('a refund event writes the credit note after its invoice; API failure leaves the event failed, redelivery succeeds', async () => {
    const body = evt('ev_r', 'payment_refunded', { credit_note: { id: 'cn_1' }, transaction: { id: 'txn_ok' } });
    fake.setFaults({ fail5xx: 100, match: /credit_notes/ });
    const failed = await handleChargebeeWebhook({ ...deps(), api: createChargebeeApi(conn(fake.baseUrl, { retries: 1, backoffBaseMs: 1 }), env) }, Buffer.from(body), auth());
    expect(failed.status).toBe(500);
    expect((await t.db('webhook_events').where({ event_id: 'ev_r' }).first<{ status: string }>())!.status).toBe('failed');
    fake.setFaults({});
    const ok = await handleChargebeeWebhook(deps(), Buffer.from(body), auth());
    expect(ok.status).toBe(200);
    const ref = await t.db('billing_events').where({ kind: 'refund', external_id: 'cn_1' }).first<{ amount_minor: string; payment_event_id: string | null }>();
    expect(Number(ref!.amount_minor)).toBe(3000);
    expect(ref!.payment_event_id).not.toBeNull();
  });
});
