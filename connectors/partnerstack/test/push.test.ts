// Push actions against nock: each sends exactly once across retries of the same action.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { upsertNetworkTransactions } from '../../../src/model/index.ts';
import type { PushAction } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';
import { rewardMarker } from '../push.ts';
import { BASIC, SECRET_KEY, connection, ctxFor } from './helpers.ts';

const HOST = 'https://api.partnerstack.test';
const BASE = `${HOST}/api/v2`;
const conn = connection(BASE);
const api = () => nock(HOST).matchHeader('authorization', BASIC);
const ok = (data: unknown) => ({ data, message: 'OK', status: 200 });

let t: TestDb;
beforeAll(async () => {
  nock.disableNetConnect();
  t = await createTestDb();
});
afterAll(async () => {
  nock.enableNetConnect();
  await t.destroy();
});
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

const push = (a: PushAction) => connector.push!(ctxFor(t.db, conn), a);
const txnObj = (key: string, amount: number) => ({ key, amount, amount_usd: amount, currency: 'USD', approved: true, archived: false, customer: { key: 'cust_1', email: 'c1@example.org', external_key: 'acct_1' }, metadata: {}, test: false, created_at: 1717200000000, updated_at: 1717200000001 });

describe('partnerstack push', () => {
  it('create_transaction posts once (key = billing document id) and a retry is answered from what was recorded', async () => {
    const action: PushAction = {
      network: 'partnerstack',
      type: 'create_transaction',
      idempotencyKey: 'ps:create_transaction:in_1Q2w3e4r',
      payload: { key: 'in_1Q2w3e4r', customer_external_key: 'acct_1', amount: 9900, currency: 'usd', created_at: 1717200000000 },
      justification: { rule: 'R2 qualified payment', subscription_state: 'active' },
    };
    let body: Record<string, unknown> | undefined;
    api()
      .post('/api/v2/transactions', (b: Record<string, unknown>) => {
        body = b;
        return true;
      })
      .reply(200, ok(txnObj('in_1Q2w3e4r', 9900)));
    const r1 = await push(action);
    expect(r1).toMatchObject({ status: 'confirmed', externalId: 'in_1Q2w3e4r', response: { status: 200, key: 'in_1Q2w3e4r' } });
    expect(body).toEqual({
      key: 'in_1Q2w3e4r',
      customer_external_key: 'acct_1',
      amount: 9900,
      currency: 'USD',
      created_at: 1717200000000,
      metadata: { cs_action: 'ps:create_transaction:in_1Q2w3e4r', cs_rule: 'R2 qualified payment', cs_subscription_state: 'active' },
    });
    expect(r1.request).toMatchObject({ method: 'POST', path: '/transactions' });
    expect(JSON.stringify(r1)).not.toContain(SECRET_KEY);
    const row = await t.db('network_transactions').where({ connection: 'ps', external_id: 'in_1Q2w3e4r' }).first();
    expect(row).toMatchObject({ amount_minor: 9900, currency: 'USD', deleted_at: null });

    // Retry: no interceptor is registered, so any request would fail the test (net connect disabled).
    const r2 = await push(action);
    expect(r2).toMatchObject({ status: 'confirmed', response: { alreadyPresent: true, where: 'local' } });
  });

  it('create_transaction treats the vendor rejecting a duplicate key as done; a 503 is retried and still sends one success', async () => {
    const action: PushAction = { network: 'partnerstack', type: 'create_transaction', idempotencyKey: 'k2', payload: { key: 'in_dup_1', customer_external_key: 'acct_1', amount: 500, currency: 'EUR' }, justification: {} };
    api().post('/api/v2/transactions').reply(503, { message: 'unavailable', status: 503 });
    api().post('/api/v2/transactions').reply(400, { message: "A transaction with key 'in_dup_1' already exists", status: 400 });
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { alreadyPresent: true, where: 'vendor', status: 400 } });
  });

  it('create_transaction validates the payload without calling the vendor', async () => {
    const r = await push({ network: 'partnerstack', type: 'create_transaction', idempotencyKey: 'k3', payload: { key: 'in', customer_external_key: 'acct_1', amount: 1.5, currency: 'USD' }, justification: {} });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/key/);
    expect(r.error).toMatch(/amount/);
  });

  it('delete_transaction deletes once; a retry and an already-absent transaction are done', async () => {
    await upsertNetworkTransactions(t.db, [{ connection: 'ps', network: 'partnerstack', externalId: 'in_refunded', amountMinor: 9900, currency: 'USD', occurredAt: new Date(1717200000000) }]);
    api().delete('/api/v2/transactions/in_refunded').reply(200, ok(txnObj('in_refunded', 9900)));
    const action: PushAction = { network: 'partnerstack', type: 'delete_transaction', idempotencyKey: 'd1', payload: { key: 'in_refunded' }, justification: { refund: 're_1' } };
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { status: 200 } });
    expect((await t.db('network_transactions').where({ external_id: 'in_refunded' }).first()).deleted_at).not.toBeNull();
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { alreadyAbsent: true, where: 'local' } });

    api().delete('/api/v2/transactions/in_never_pulled').reply(404, { message: 'Transaction not found', status: 404 });
    expect(await push({ ...action, idempotencyKey: 'd2', payload: { key: 'in_never_pulled' } })).toMatchObject({ status: 'confirmed', response: { status: 404, alreadyAbsent: true } });
  });

  it('create_reward names payment, rule and subscription state, posts once, and a retry finds it locally', async () => {
    const action: PushAction = {
      network: 'partnerstack',
      type: 'create_reward',
      idempotencyKey: 'ps:reward:in_77:tier2',
      payload: { amount: -1485, currency: 'usd', target: { type: 'customer', key: 'cust_1' } },
      justification: { payment: 'in_77', rule: 'R8 clawback 30% of 4950', subscription_state: 'canceled' },
    };
    const marker = rewardMarker(action.idempotencyKey);
    api().get('/api/v2/rewards').query({ keywords: marker, limit: '250' }).reply(200, { data: { has_more: false, items: [] }, message: 'OK', status: 200 });
    let sent: Record<string, unknown> | undefined;
    api()
      .post('/api/v2/rewards', (b: Record<string, unknown>) => {
        sent = b;
        return true;
      })
      .reply(200, () => ok({ key: 'rew_new_1', amount: -1485, currency: 'USD', description: sent!.description, reward_status: 'pending', customer: { key: 'cust_1', external_key: 'acct_1' }, partnership: null, created_at: 1717200000000 }));
    const r1 = await push(action);
    expect(r1.error).toBeUndefined();
    expect(r1).toMatchObject({ status: 'confirmed', externalId: 'rew_new_1' });
    expect(sent).toEqual({
      amount: -1485,
      currency: 'USD',
      target: { type: 'customer', key: 'cust_1' },
      description: `Manual clawback: payment in_77; rule R8 clawback 30% of 4950; subscription canceled [${marker}]`,
    });
    const row = await t.db('network_commissions').where({ connection: 'ps', external_id: 'rew_new_1' }).first();
    expect(row).toMatchObject({ amount_minor: -1485, status: 'pending' });
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { alreadyPresent: true, where: 'local', key: 'rew_new_1' } });
  });

  it('create_reward sent before a crash (not recorded) is found at the vendor and not sent again', async () => {
    const action: PushAction = { network: 'partnerstack', type: 'create_reward', idempotencyKey: 'crash-1', payload: { amount: 2000, target: { type: 'transaction', key: 'in_1' } }, justification: { payment: 'in_1', rule: 'R5 tier 3 40%', subscription_state: 'active' } };
    const marker = rewardMarker('crash-1');
    api()
      .get('/api/v2/rewards')
      .query({ keywords: marker, limit: '250' })
      .reply(200, { data: { has_more: false, items: [{ key: 'rew_prev', amount: 2000, currency: 'USD', description: `Manual adjustment: … [${marker}]`, reward_status: 'pending', created_at: 1717200000000 }] }, message: 'OK', status: 200 });
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { alreadyPresent: true, where: 'vendor', key: 'rew_prev' } });
    expect(await t.db('network_commissions').where({ external_id: 'rew_prev' }).first()).toBeTruthy();
  });

  it('create_reward without its justification fails before any request', async () => {
    const r = await push({ network: 'partnerstack', type: 'create_reward', idempotencyKey: 'nojust', payload: { amount: 100, target: { type: 'customer', key: 'c' } }, justification: { payment: 'in_1' } });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/rule/);
    expect(r.error).toMatch(/subscription_state/);
  });

  it('update_customer patches once; a retry sees the values and does not patch again', async () => {
    const action: PushAction = { network: 'partnerstack', type: 'update_customer', idempotencyKey: 'u1', payload: { customer_key: 'cust_1', fields: { subscription_status: 'canceled', plan_interval: 'month' } }, justification: {} };
    const cust = { key: 'cust_1', customer_key: 'acct_1', email: 'c1@example.org', meta: {}, mdata: {}, created_at: 1, updated_at: 2 };
    api().get('/api/v2/customers/cust_1').reply(200, ok(cust));
    let patched: unknown;
    api()
      .patch('/api/v2/customers/cust_1', (b) => {
        patched = b;
        return true;
      })
      .reply(200, ok({ ...cust, mdata: { subscription_status: 'canceled', plan_interval: 'month' } }));
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { status: 200, key: 'cust_1' } });
    expect(patched).toEqual({ meta: { subscription_status: 'canceled', plan_interval: 'month' } });
    api().get('/api/v2/customers/cust_1').reply(200, ok({ ...cust, mdata: { subscription_status: 'canceled', plan_interval: 'month' } }));
    expect(await push(action)).toMatchObject({ status: 'confirmed', response: { alreadyPresent: true, where: 'vendor' } });
  });

  it('unknown action types and other networks fail cleanly', async () => {
    expect((await push({ network: 'partnerstack', type: 'frobnicate', idempotencyKey: 'x', payload: {}, justification: {} })).error).toMatch(/unknown PartnerStack action type/);
    expect((await push({ network: 'awin', type: 'create_transaction', idempotencyKey: 'x', payload: {}, justification: {} })).status).toBe('failed');
  });
});
