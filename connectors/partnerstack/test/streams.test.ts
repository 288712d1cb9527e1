// Per-stream tests against recorded-style HTTP (nock): pagination, checkpoints, look-back deletion,
// quarantine, status history, second tier, and 401/429/5xx/truncated-body handling.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { BASIC, PUBLIC_KEY, SECRET_KEY, connection, sync } from './helpers.ts';

const HOST = 'https://api.partnerstack.test';
const BASE = `${HOST}/api/v2`;
const NOW = Date.UTC(2025, 5, 1);
const DAY = 86_400_000;
const api = () => nock(HOST).matchHeader('authorization', BASIC);
const page = (items: unknown[], has_more: boolean) => ({ data: { has_more, items }, message: 'Retrieved', status: 200 });

function pship(n: number, extra: Record<string, unknown> = {}) {
  return {
    key: `pship_${n}`,
    partner_key: `partner_${n}`,
    email: `p${n}@example.com`,
    first_name: 'Pat',
    last_name: `No${n}`,
    group: { key: 'grp_a', name: 'A', slug: 'a', default: true, archived: false },
    stats: { CUSTOMER_COUNT: 1 },
    unknown_extra: { kept: true },
    joined_at: NOW - 100 * DAY + n,
    created_at: NOW - 100 * DAY + n * 1000,
    updated_at: NOW - 50 * DAY + n * 1000,
    ...extra,
  };
}
function customer(n: number, partner: number, extra: Record<string, unknown> = {}) {
  return {
    key: `cust_${n}`,
    customer_key: `acct_${n}`,
    email: `Customer${n}@Example.org`,
    name: `cus_ABC${n}`,
    partner_key: `partner_${partner}`,
    partnership_key: `pship_${partner}`,
    provider_key: `cus_${n}`,
    source_type: 'stripe',
    test: false,
    created_at: NOW - 20 * DAY + n * 1000,
    updated_at: NOW - 10 * DAY + n * 1000,
    ...extra,
  };
}
function txn(key: string, createdAt: number, cust = 1, amount = 9900) {
  return { key, amount, amount_usd: amount, currency: 'usd', approved: true, archived: false, customer: { key: `cust_${cust}`, email: null, external_key: `acct_${cust}` }, metadata: {}, test: false, created_at: createdAt, updated_at: createdAt };
}
function reward(key: string, status: string, createdAt: number, extra: Record<string, unknown> = {}) {
  return {
    key,
    amount: 1980, // 20% of 9900
    currency: 'USD',
    description: 'Direct',
    reward_status: status,
    customer: { key: 'cust_1', email: 'customer1@example.org', external_key: 'acct_1' },
    partnership: { key: 'pship_1', email: 'p1@example.com', group: { key: 'grp_a' } },
    transaction: { key: 'in_1', amount: 9900, currency: 'USD' },
    invoice: { key: 'inv_9', status: 'pending', payment_date: null },
    offer: { key: 'offer_direct', description: '20%' },
    trigger: { key: 'transaction' },
    created_at: createdAt,
    updated_at: createdAt,
    ...extra,
  };
}

beforeAll(() => nock.disableNetConnect());
afterAll(() => nock.enableNetConnect());

/** Partnerships pship_1 (recruiter, on the later page) and pship_3 (recruited by partner_1). */
function servePartnerships(): void {
  api().get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250' }).reply(200, page([pship(3, { fields: { recruited_by: 'partner_1' } }), pship(2, { archived: true })], true));
  api().get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250', starting_after: 'pship_2' }).reply(200, page([pship(1)], false));
}

describe('partnerstack streams', () => {
  const t = useTestDb();
  afterEach(() => {
    nock.cleanAll();
  });

  it('groups and partnerships: paginates with starting_after, links recruiters across pages, then continues from min_updated', async () => {
    const conn = connection(BASE);
    api().get('/api/v2/groups').query({ limit: '250' }).reply(200, page([{ key: 'grp_a', name: 'A', created_at: 1, updated_at: 2 }], false));
    servePartnerships();
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['groups', 'partnerships'] });
    expect(r1.status).toBe('succeeded');
    expect(r1.streams.partnerships).toMatchObject({ pages: 2, records: 3 });
    expect(nock.pendingMocks()).toEqual([]);

    const accounts = await t.db('partner_accounts').orderBy('external_id').select('id', 'external_id', 'email', 'status', 'group_key', 'recruiter_external_id', 'recruiter_account_id', 'partner_id');
    expect(accounts.map((a) => [a.external_id, a.status, a.group_key, a.recruiter_external_id])).toEqual([
      ['partner_1', 'active', 'grp_a', null],
      ['partner_2', 'archived', 'grp_a', null],
      ['partner_3', 'active', 'grp_a', 'partner_1'],
    ]);
    expect(accounts[2]!.recruiter_account_id).toBe(accounts[0]!.id);
    const p3 = await t.db('partners').where({ id: accounts[2]!.partner_id }).first();
    expect(p3.recruiter_partner_id).toBe(accounts[0]!.partner_id);
    expect(p3.name).toBe('Pat No3');
    // Unknown fields survive in the raw store.
    const raw = await t.db('raw_records').where({ stream: 'partnerships', external_id: 'pship_1' }).first();
    expect(raw.payload.unknown_extra).toEqual({ kept: true });
    const links = await t.db('identity_links').where({ kind: 'partnerstack.partnership' }).orderBy('from_ref').select('from_ref', 'to_ref');
    expect(links).toEqual([1, 2, 3].map((n) => ({ from_ref: `ps:pship_${n}`, to_ref: `partner_${n}` })));

    // The cursor only advances when the whole min_updated pass was read: newest updated_at seen.
    const cp = await t.db('checkpoints').where({ stream: 'partnerships' }).first();
    const maxUpdated = NOW - 50 * DAY + 3000;
    expect(cp.state).toEqual({ cursor: maxUpdated, pass: null });

    // Second run: asks for min_updated = cursor − 1 (boundary-inclusive either way) and applies the change.
    api().get('/api/v2/groups').query({ limit: '250' }).reply(200, page([], false));
    api()
      .get('/api/v2/partnerships')
      .query({ include_archived: 'true', limit: '250', min_updated: String(maxUpdated - 1) })
      .reply(200, page([pship(3, { email: 'new3@example.com', updated_at: maxUpdated + 5, fields: { recruited_by: 'partner_1' } })], false));
    const r2 = await sync(t.db, conn, { now: new Date(NOW), only: ['groups', 'partnerships'] });
    expect(r2.status).toBe('succeeded');
    expect(nock.pendingMocks()).toEqual([]);
    expect((await t.db('partner_accounts').where({ external_id: 'partner_3' }).first()).email).toBe('new3@example.com');
    expect((await t.db('checkpoints').where({ stream: 'partnerships' }).first()).state.cursor).toBe(maxUpdated + 5);
  });

  it('recruiter CSV overrides the field; recruiterField can point elsewhere', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/ps-`);
    writeFileSync(`${dir}/rec.csv`, 'partner_key,recruiter_partner_key\npartner_2,partner_1\n');
    const conn = connection(BASE, { recruiterCsv: `${dir}/rec.csv`, recruiterField: 'm_data.jv' });
    api().get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250' }).reply(200, page([pship(3, { m_data: { jv: 'partner_2' }, fields: { recruited_by: 'partner_9' } }), pship(2), pship(1)], false));
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['partnerships'] })).status).toBe('succeeded');
    const rows = await t.db('partner_accounts').orderBy('external_id').select('external_id', 'recruiter_external_id');
    expect(rows.map((r) => r.recruiter_external_id)).toEqual([null, 'partner_1', 'partner_2']);
  });

  it('customers: identities (PartnerStack key, customer_key, Stripe provider_key) and attribution to the partnership', async () => {
    const conn = connection(BASE);
    servePartnerships();
    api().get('/api/v2/customers').query({ limit: '250' }).reply(200, page([customer(2, 3), customer(1, 1)], true));
    api().get('/api/v2/customers').query({ limit: '250', starting_after: 'cust_1' }).reply(200, page([customer(0, 2, { partner_key: null, provider_key: null, name: 'Real Name' })], false));
    const r = await sync(t.db, conn, { now: new Date(NOW), only: ['partnerships', 'customers'] });
    expect(r.status).toBe('succeeded');
    expect(r.streams.customers).toMatchObject({ pages: 2, records: 3 });
    const c1 = await t.db('customers').where({ customer_key: 'acct_1' }).first();
    expect(c1).toMatchObject({ email: 'Customer1@Example.org', email_normalized: 'customer1@example.org', is_test: false, name: null });
    const ids = await t.db('customer_identities').where({ customer_id: c1.id }).orderBy('system').select('system', 'external_id');
    expect(ids).toEqual([
      { system: 'partnerstack', external_id: 'cust_1' },
      { system: 'stripe', external_id: 'cus_1' },
    ]);
    const att = await t.db('attributions as a').join('partner_accounts as p', 'p.id', 'a.partner_account_id').join('customers as c', 'c.id', 'a.customer_id').orderBy('c.customer_key').select('c.customer_key', 'p.external_id', 'a.source_ref', 'a.signup_at');
    // cust_0 has no partner_key: its partnership_key is resolved through the partnership link.
    expect(att.map((a) => [a.customer_key, a.external_id, a.source_ref])).toEqual([
      ['acct_0', 'partner_2', 'customer:cust_0'],
      ['acct_1', 'partner_1', 'customer:cust_1'],
      ['acct_2', 'partner_3', 'customer:cust_2'],
    ]);
    expect(new Date(att[1]!.signup_at).getTime()).toBe(NOW - 20 * DAY + 1000);
    expect((await t.db('customers').where({ customer_key: 'acct_0' }).first()).name).toBe('Real Name');
  });

  it('transactions: re-reads the look-back window and marks rows that vanished inside it as deleted', async () => {
    // startDate = NOW − 30 days: the first pass covers the same window as later ones.
    const conn = connection(BASE, { lookbackDays: 30, startDate: '2025-05-02' });
    const minCreated = String(NOW - 30 * DAY - 1);
    const old = txn('in_old', NOW - 40 * DAY); // outside the window: never judged
    api().get('/api/v2/transactions').query({ min_created: minCreated, limit: '250' }).reply(200, page([txn('in_3', NOW - 1 * DAY), txn('in_2', NOW - 2 * DAY)], true));
    api().get('/api/v2/transactions').query({ min_created: minCreated, limit: '250', starting_after: 'in_2' }).reply(200, page([txn('in_1', NOW - 3 * DAY), old], false));
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] });
    expect(r1.status).toBe('succeeded');
    expect(r1.streams.transactions).toMatchObject({ pages: 2, records: 4, deleted: 0 });
    const rows1 = await t.db('network_transactions').orderBy('external_id').select('external_id', 'amount_minor', 'currency', 'amount_usd_minor', 'deleted_at', 'customer_external_key');
    expect(rows1.map((r) => [r.external_id, r.amount_minor, r.currency, r.deleted_at])).toEqual([
      ['in_1', 9900, 'USD', null],
      ['in_2', 9900, 'USD', null],
      ['in_3', 9900, 'USD', null],
      ['in_old', 9900, 'USD', null],
    ]);
    expect((await t.db('checkpoints').where({ stream: 'transactions' }).first()).state).toEqual({ lastCompletedTo: NOW, lastSweepAt: NOW, pass: null });

    // Next run, a forced sweep: in_2 vanished (a refund deleted it), in_old is outside the window and not listed.
    const now2 = NOW + 3_600_000;
    api().get('/api/v2/transactions').query({ min_created: String(now2 - 30 * DAY - 1), limit: '250' }).reply(200, page([txn('in_3', NOW - 1 * DAY), txn('in_1', NOW - 3 * DAY, 1, 4900)], false));
    const r2 = await sync(t.db, conn, { now: new Date(now2), only: ['transactions'], sweep: true });
    expect(r2.status).toBe('succeeded');
    expect(r2.streams.transactions!.deleted).toBe(1);
    const rows2 = await t.db('network_transactions').orderBy('external_id').select('external_id', 'amount_minor', 'deleted_at');
    expect(rows2.map((r) => [r.external_id, r.amount_minor, r.deleted_at !== null])).toEqual([
      ['in_1', 4900, false],
      ['in_2', 9900, true],
      ['in_3', 9900, false],
      ['in_old', 9900, false],
    ]);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('transactions: the first run without startDate reads the full history (no min_created); the next run only the tail', async () => {
    const conn = connection(BASE, { lookbackDays: 30 });
    const ancient = txn('in_2019', Date.UTC(2019, 2, 15));
    let firstQuery: Record<string, unknown> | undefined;
    api()
      .get('/api/v2/transactions')
      .query((q) => ((firstQuery = q), true))
      .reply(200, page([txn('in_1', NOW - DAY), ancient], false));
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] });
    expect(r1.status).toBe('succeeded');
    expect(firstQuery).toEqual({ limit: '250' });
    expect(r1.streams.transactions).toMatchObject({ records: 2, deleted: 0 });

    // Second run, 1 h later (no sweep due): the tail from NOW − 48 h; the 2019 row is outside it and not judged.
    const now2 = NOW + 3_600_000;
    api().get('/api/v2/transactions').query({ min_created: String(NOW - 2 * DAY - 1), limit: '250' }).reply(200, page([txn('in_1', NOW - DAY)], false));
    const r2 = await sync(t.db, conn, { now: new Date(now2), only: ['transactions'] });
    expect(r2.status).toBe('succeeded');
    expect(r2.streams.transactions!.deleted).toBe(0);
    const rows = await t.db('network_transactions').orderBy('external_id').select('external_id', 'deleted_at');
    expect(rows.map((r) => [r.external_id, r.deleted_at])).toEqual([
      ['in_1', null],
      ['in_2019', null],
    ]);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('rewards: normalized status with history, second tier by offer key, scheduled phase, deletion and quarantine of a malformed item', async () => {
    // startDate = NOW − 60 days (the default look-back): the first pass covers the same window as later ones.
    const conn = connection(BASE, { secondTier: { offerKeys: ['offer_jv'] }, startDate: '2025-04-02' });
    const minCreated = String(NOW - 60 * DAY - 1);
    // Partnerships first, without startDate (it would also bound their first min_updated).
    servePartnerships();
    expect((await sync(t.db, connection(BASE, { secondTier: { offerKeys: ['offer_jv'] } }), { now: new Date(NOW), only: ['partnerships'] })).status).toBe('succeeded');
    const bad = { ...reward('rew_bad', 'pending', NOW - 5 * DAY), amount: '19.80' };
    api().get('/api/v2/rewards').query({ min_created: minCreated, limit: '250' }).reply(200, page([reward('rew_1', 'Pending', NOW - DAY), bad, reward('rew_2', 'hold', NOW - 6 * DAY, { offer: { key: 'offer_jv' }, amount: 990 })], false));
    api().get('/api/v2/rewards').query({ min_created: minCreated, limit: '250', status: 'scheduled' }).reply(200, page([reward('rew_3', 'scheduled', NOW - 40 * DAY)], false));
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['rewards'] });
    expect(r1.status).toBe('succeeded');
    expect(r1.streams.rewards).toMatchObject({ pages: 2, records: 3, quarantined: 1 });
    const q = await t.db('quarantine').where({ stream: 'rewards' }).select('external_id', 'error', 'occurrences');
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ external_id: 'rew_bad', occurrences: 1 });
    expect(q[0]!.error).toMatch(/amount/);

    const rows = await t.db('network_commissions as n').leftJoin('partner_accounts as p', 'p.id', 'n.partner_account_id').orderBy('n.external_id').select('n.external_id', 'n.status', 'n.raw_status', 'n.kind_hint', 'n.amount_minor', 'n.partner_external_id', 'p.external_id as account', 'n.transaction_key', 'n.sale_amount_minor', 'n.offer_key', 'n.invoice_status', 'n.customer_external_key');
    expect(rows).toEqual([
      { external_id: 'rew_1', status: 'pending', raw_status: 'Pending', kind_hint: 'direct', amount_minor: 1980, partner_external_id: 'partner_1', account: 'partner_1', transaction_key: 'in_1', sale_amount_minor: 9900, offer_key: 'offer_direct', invoice_status: 'pending', customer_external_key: 'acct_1' },
      { external_id: 'rew_2', status: 'hold', raw_status: 'hold', kind_hint: 'second_tier', amount_minor: 990, partner_external_id: 'partner_1', account: 'partner_1', transaction_key: 'in_1', sale_amount_minor: 9900, offer_key: 'offer_jv', invoice_status: 'pending', customer_external_key: 'acct_1' },
      { external_id: 'rew_3', status: 'scheduled', raw_status: 'scheduled', kind_hint: 'direct', amount_minor: 1980, partner_external_id: 'partner_1', account: 'partner_1', transaction_key: 'in_1', sale_amount_minor: 9900, offer_key: 'offer_direct', invoice_status: 'pending', customer_external_key: 'acct_1' },
    ]);

    // Second pass (a forced sweep): rew_1 approved, rew_2 gone, rew_3 paid; the malformed item comes back again.
    const now2 = NOW + 60_000;
    const min2 = String(now2 - 60 * DAY - 1);
    api().get('/api/v2/rewards').query({ min_created: min2, limit: '250' }).reply(200, page([reward('rew_1', 'approved', NOW - DAY), bad], false));
    api().get('/api/v2/rewards').query({ min_created: min2, limit: '250', status: 'scheduled' }).reply(200, page([reward('rew_3', 'paid', NOW - 40 * DAY, { invoice: { key: 'inv_9', status: 'charge_succeeded', payment_date: NOW } })], false));
    const r2 = await sync(t.db, conn, { now: new Date(now2), only: ['rewards'], sweep: true });
    expect(r2.status).toBe('succeeded');
    expect(r2.streams.rewards!.deleted).toBe(1);
    const hist = await t.db('network_commission_status_history as h').join('network_commissions as n', 'n.id', 'h.network_commission_id').orderBy(['n.external_id', 'h.observed_at']).select('n.external_id', 'h.status');
    expect(hist.map((h) => `${h.external_id}:${h.status}`)).toEqual(['rew_1:pending', 'rew_1:approved', 'rew_2:hold', 'rew_2:deleted', 'rew_3:scheduled', 'rew_3:paid']);
    expect((await t.db('network_commissions').where({ external_id: 'rew_3' }).first()).invoice_status).toBe('charge_succeeded');
    expect((await t.db('quarantine').where({ external_id: 'rew_bad' }).first()).occurrences).toBe(2);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('401 names the credential variables (never their values) and says Basic, not Bearer', async () => {
    const conn = connection(BASE);
    nock(HOST).get('/api/v2/groups').query(true).reply(401, { message: 'Unauthorized', status: 401 });
    const r = await sync(t.db, conn, { now: new Date(NOW) });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/HTTP 401/);
    expect(r.error).toMatch(/PS_PUBLIC_KEY/);
    expect(r.error).toMatch(/PS_SECRET_KEY/);
    expect(r.error).toMatch(/Basic auth/);
    expect(r.error).toMatch(/not a partner API Bearer key/);
    for (const secret of [PUBLIC_KEY, SECRET_KEY, BASIC.slice(6)]) expect(r.error).not.toContain(secret);
    const run = await t.db('sync_runs').where({ id: r.runId }).first();
    expect(run.status).toBe('failed');
    expect(run.error).not.toContain(SECRET_KEY);
  });

  it('429 waits for Retry-After (capped), 5xx and truncated bodies are retried', async () => {
    const conn = connection(BASE);
    nock(HOST).get('/api/v2/groups').query(true).reply(429, { message: 'Too many requests', status: 429 }, { 'retry-after': '1' });
    nock(HOST).get('/api/v2/groups').query(true).reply(503, { message: 'Service unavailable', status: 503 });
    nock(HOST).get('/api/v2/groups').query(true).reply(200, '{"data":{"has_more":false,"ite', { 'content-type': 'application/json' });
    api().get('/api/v2/groups').query({ limit: '250' }).reply(200, page([{ key: 'grp_a', name: 'A' }], false));
    const started = Date.now();
    const r = await sync(t.db, conn, { now: new Date(NOW), only: ['groups'] });
    expect(r.status).toBe('succeeded');
    expect(r.streams.groups!.records).toBe(1);
    // Retry-After 1 s is capped at maxRetryAfterMs (200 ms) but still waited for; backoff alone is ≤ 5 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('persistent 5xx fails the run but keeps the pages already committed; the next run resumes from the cursor', async () => {
    const conn = connection(BASE);
    api().get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250' }).reply(200, page([pship(3), pship(2)], true));
    nock(HOST).get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250', starting_after: 'pship_2' }).times(4).reply(500, { message: 'boom', status: 500 });
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['partnerships'] });
    expect(r1.status).toBe('failed');
    expect(r1.error).toMatch(/HTTP 500/);
    expect(await t.db('partner_accounts').count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 2 }]);
    const cp = (await t.db('checkpoints').where({ stream: 'partnerships' }).first()).state;
    expect(cp).toMatchObject({ cursor: null, pass: { startingAfter: 'pship_2', minUpdated: null } });
    api().get('/api/v2/partnerships').query({ include_archived: 'true', limit: '250', starting_after: 'pship_2' }).reply(200, page([pship(1)], false));
    const r2 = await sync(t.db, conn, { now: new Date(NOW), only: ['partnerships'] });
    expect(r2.status).toBe('succeeded');
    expect(await t.db('partner_accounts').count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 3 }]);
    expect(nock.pendingMocks()).toEqual([]);
  });
});

describe('partnerstack options', () => {
  it('rejects invalid options with the connections.<name>.options.<field> path', async () => {
    const { connector } = await import('../index.ts');
    expect(() => connector.validateOptions!(connection(BASE, { lookbackDays: 0 }))).toThrow(/connections\.ps\.options\.lookbackDays/);
    expect(() => connector.validateOptions!(connection(BASE, { secondTier: { offerKey: ['x'] } }))).toThrow(/connections\.ps\.options\.secondTier/);
    expect(() => connector.validateOptions!(connection(BASE, { recruiterCsv: '/nonexistent/file.csv' }))).toThrow(/connections\.ps\.options\.recruiterCsv: cannot read/);
  });
});
