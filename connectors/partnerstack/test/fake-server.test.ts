// The fake vendor API itself (auth, envelope, pagination, filters, errors, faults), then a sync of a
// few thousand records from it into the canonical tables, with faults on; a re-run changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { createPartnerStackFake, generateDataset, loadDataset, type PartnerStackFake } from '../fake-server.ts';
import { connection, env, sync } from './helpers.ts';

const DAY = 86_400_000;

describe('PartnerStack fake server', () => {
  let fake: PartnerStackFake;
  let auth: string;
  beforeAll(async () => {
    fake = await createPartnerStackFake({ publicKey: env.PS_PUBLIC_KEY, secretKey: env.PS_SECRET_KEY, now: () => Date.UTC(2025, 5, 2) });
    auth = `Basic ${Buffer.from(`${fake.publicKey}:${fake.secretKey}`).toString('base64')}`;
    loadDataset(fake.store, generateDataset({ partners: 3, customersPerPartner: 4, transactionsPerCustomer: 2 }));
  });
  afterAll(() => fake.close());
  const get = async (path: string, headers: Record<string, string> = { authorization: auth }) => {
    const r = await fetch(`${fake.url}/${path}`, { headers });
    return { status: r.status, headers: r.headers, text: await r.text() };
  };
  const json = async (path: string) => JSON.parse((await get(path)).text);

  it('wants Basic auth with the vendor pair and answers errors as {message,status}', async () => {
    const bearer = await get('groups', { authorization: `Bearer ${fake.secretKey}` });
    expect(bearer.status).toBe(401);
    expect(JSON.parse(bearer.text)).toEqual({ message: 'Unauthorized', status: 401 });
    expect((await get('groups', {})).status).toBe(401);
    const bad = await get('transactions?limit=251');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text)).toMatchObject({ status: 400, message: expect.stringMatching(/limit/) });
    expect((await get('transactions?starting_after=a&ending_before=b')).status).toBe(400);
  });

  it('lists newest first, 10 by default, and starting_after / ending_before walk the list without gaps', async () => {
    const first = await json('transactions');
    expect(first.status).toBe(200);
    expect(first.data.items).toHaveLength(10);
    expect(first.data.has_more).toBe(true);
    const seen: Array<{ key: string; created_at: number }> = [];
    let after: string | undefined;
    for (;;) {
      const p = await json(`transactions?limit=7${after ? `&starting_after=${after}` : ''}`);
      seen.push(...p.data.items);
      if (!p.data.has_more) break;
      after = p.data.items.at(-1).key;
    }
    expect(seen).toHaveLength(24);
    expect(new Set(seen.map((s) => s.key)).size).toBe(24);
    for (let i = 1; i < seen.length; i++) expect(seen[i - 1]!.created_at).toBeGreaterThanOrEqual(seen[i]!.created_at);
    const before = await json(`transactions?limit=3&ending_before=${seen[5]!.key}`);
    expect(before.data.items.map((x: { key: string }) => x.key)).toEqual(seen.slice(2, 5).map((s) => s.key));
    expect(before.data.has_more).toBe(true);
  });

  it('filters on created/updated bounds and reward fields; ignores filters a resource does not have', async () => {
    const all = [...fake.store.transactions.values()].map((x) => x.created_at as number).sort((a, b) => a - b);
    const cut = all[12]!;
    const p = await json(`transactions?limit=250&min_created=${cut}`);
    expect(p.data.items).toHaveLength(all.filter((x) => x >= cut).length);
    // min_updated is not a transactions filter: everything comes back.
    expect((await json(`transactions?limit=250&min_updated=${Date.UTC(2030, 0, 1)}`)).data.items).toHaveLength(24);
    expect((await json(`customers?limit=250&partner_key=partner_1`)).data.items).toHaveLength(4);
    const pending = await json('rewards?limit=250&status=pending');
    expect(pending.data.items.every((r: { reward_status: string }) => r.reward_status === 'pending')).toBe(true);
    expect((await json('rewards?limit=250&keywords=of%20in_1_2_1')).data.items.map((r: { key: string }) => r.key)).toEqual(['rew_1_2_1']);
  });

  it('creates and deletes transactions, rejecting bad bodies and duplicate keys', async () => {
    const post = (body: unknown) => fetch(`${fake.url}/transactions`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const both = await post({ customer_key: 'cust_0_0', customer_external_key: 'acct_0_0', amount: 100, currency: 'USD', key: 'in_new_1' });
    expect(both.status).toBe(400);
    const created = await post({ customer_external_key: 'acct_0_0', amount: 100, currency: 'usd', key: 'in_new_1' });
    expect(created.status).toBe(200);
    expect(((await created.json()) as { data: unknown }).data).toMatchObject({ key: 'in_new_1', amount: 100, currency: 'USD', customer: { key: 'cust_0_0', external_key: 'acct_0_0' } });
    expect((await post({ customer_external_key: 'acct_0_0', amount: 100, currency: 'USD', key: 'in_new_1' })).status).toBe(400);
    const del = await fetch(`${fake.url}/transactions/in_new_1`, { method: 'DELETE', headers: { authorization: auth } });
    expect(del.status).toBe(200);
    expect(fake.store.transactions.has('in_new_1')).toBe(false);
  });

  it('injects scripted faults: 429 with Retry-After, 5xx, truncated body', async () => {
    fake.setFaults({ script: [{ status: 429, retryAfter: 3 }, { status: 502 }, { truncate: true }] });
    const a = await get('groups');
    expect(a.status).toBe(429);
    expect(a.headers.get('retry-after')).toBe('3');
    expect((await get('groups')).status).toBe(502);
    const c = await get('groups');
    expect(c.status).toBe(200);
    expect(() => JSON.parse(c.text)).toThrow();
    expect((await get('groups')).status).toBe(200);
    fake.setFaults({});
  });
});

describe('sync from the fake server', () => {
  let fake: PartnerStackFake;
  let t: TestDb;
  const END = Date.UTC(2025, 5, 1);
  beforeAll(async () => {
    fake = await createPartnerStackFake({ publicKey: env.PS_PUBLIC_KEY, secretKey: env.PS_SECRET_KEY, rewardsDefaultOmitsScheduled: true });
    t = await createTestDb();
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  /** Business content of the canonical tables (no bookkeeping timestamps). */
  async function snapshot() {
    const db = t.db;
    return {
      partners: await db('partners').orderBy('partner_key').select('partner_key', 'name', 'email', 'recruiter_partner_id'),
      accounts: await db('partner_accounts').orderBy('external_id').select('id', 'external_id', 'email', 'group_key', 'status', 'recruiter_external_id', 'recruiter_account_id', 'joined_at', 'source_updated_at', 'deleted_at'),
      customers: await db('customers').orderBy('customer_key').select('id', 'customer_key', 'name', 'email', 'is_test'),
      identities: await db('customer_identities').orderBy(['system', 'external_id']).select('customer_id', 'system', 'external_id'),
      attributions: await db('attributions').orderBy('source_ref').select('source_ref', 'customer_id', 'partner_account_id', 'signup_at', 'deleted_at'),
      transactions: await db('network_transactions').orderBy('external_id').select('external_id', 'customer_id', 'partner_account_id', 'customer_external_key', 'amount_minor', 'currency', 'amount_usd_minor', 'occurred_at', 'metadata', 'deleted_at'),
      commissions: await db('network_commissions').orderBy('external_id').select('external_id', 'partner_account_id', 'partner_external_id', 'customer_id', 'transaction_key', 'kind_hint', 'amount_minor', 'currency', 'status', 'raw_status', 'occurred_at', 'offer_key', 'deleted_at', 'metadata'),
      history: await db('network_commission_status_history').count<{ n: number }[]>({ n: '*' }),
      raw: await db('raw_records').count<{ n: number }[]>({ n: '*' }),
      quarantine: await db('quarantine').count<{ n: number }[]>({ n: '*' }),
    };
  }

  it('syncs a few thousand records with faults on, and a re-run changes nothing', async () => {
    const d = generateDataset({ partners: 40, customersPerPartner: 10, transactionsPerCustomer: 3, endMs: END, spanDays: 50, recruitEvery: 5 });
    loadDataset(fake.store, d);
    // 40 + 400 + 1200 + 1200 records in pages of 250: a scripted 429, 503 and truncated body first,
    // then random faults on roughly one request in six.
    fake.setFaults({ script: ['ok', { status: 429, retryAfter: '0.01' }, 'ok', { status: 503 }, 'ok', { truncate: true }], errorRate: 0.08, rateLimitRate: 0.05, retryAfterSeconds: '0.01', truncateRate: 0.05, seed: 11 });
    const conn = connection(fake.url, { secondTier: { offerKeys: ['offer_jv'] }, retry: { retries: 6, minBackoffMs: 1, maxBackoffMs: 5, maxRetryAfterMs: 50 } });
    const now = new Date(END + 3_600_000);
    const r1 = await sync(t.db, conn, { now });
    expect(r1.error).toBeUndefined();
    expect(r1.status).toBe('succeeded');
    expect(fake.requests.some((r) => r.status === 429)).toBe(true);
    expect(fake.requests.some((r) => r.status >= 500)).toBe(true);
    expect(fake.requests.some((r) => r.fault === 'truncate')).toBe(true);
    expect(Object.fromEntries(Object.entries(r1.streams).map(([k, s]) => [k, s.records]))).toEqual({ groups: 2, partnerships: 40, customers: 400, transactions: 1200, rewards: 1200 });
    // Scheduled rewards are hidden from the default list here and come in through the second phase.
    expect(fake.requests.some((r) => r.path.endsWith('/rewards') && r.query.status === 'scheduled')).toBe(true);

    const s1 = await snapshot();
    expect(s1.accounts).toHaveLength(40);
    expect(s1.customers).toHaveLength(400);
    expect(s1.identities).toHaveLength(800);
    expect(s1.attributions).toHaveLength(400);
    expect(s1.transactions.every((x) => x.customer_id !== null && x.partner_account_id !== null && x.deleted_at === null)).toBe(true);
    const sum = (xs: Array<Record<string, unknown>>) => xs.reduce((a, x) => a + (x.amount as number), 0);
    expect(s1.transactions.reduce((a, x) => a + Number(x.amount_minor), 0)).toBe(sum(d.transactions));
    expect(s1.commissions.reduce((a, x) => a + Number(x.amount_minor), 0)).toBe(sum(d.rewards));
    const statuses = (xs: Array<Record<string, unknown>>, f: 'status' | 'reward_status') => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [String(x[f])]: (m[String(x[f])] ?? 0) + 1 }), {});
    expect(statuses(s1.commissions, 'status')).toEqual(statuses(d.rewards, 'reward_status'));
    // Recruits (every fifth partner) point at partner_0.
    const recruited = s1.accounts.filter((a) => a.recruiter_external_id === 'partner_0');
    expect(recruited).toHaveLength(7);
    expect(recruited.every((a) => a.recruiter_account_id === s1.accounts.find((x) => x.external_id === 'partner_0')!.id)).toBe(true);
    expect(s1.history).toEqual([{ n: 1200 }]);

    fake.setFaults({});
    const r2 = await sync(t.db, conn, { now });
    expect(r2.status).toBe('succeeded');
    expect(r2.streams.transactions!.deleted + r2.streams.rewards!.deleted).toBe(0);
    expect(await snapshot()).toEqual(s1);

    // The vendor changes: a refund deletes a transaction, a reward is approved — anywhere in the
    // 50 days, so it takes a sweep (forced here, as `sync --sweep` does; the r2 above was a tail).
    const gone = d.transactions[7]!.key;
    fake.store.remove('transactions', gone);
    const approved = d.rewards.find((r) => r.reward_status === 'pending')!;
    fake.store.put('rewards', { ...approved, reward_status: 'approved', updated_at: END + 1 });
    const r3 = await sync(t.db, conn, { now: new Date(END + 2 * 3_600_000), sweep: true });
    expect(r3.streams.transactions!.deleted).toBe(1);
    const s3 = await snapshot();
    expect(s3.transactions.find((x) => x.external_id === gone)!.deleted_at).not.toBeNull();
    expect(s3.commissions.find((x) => x.external_id === approved.key)!.status).toBe('approved');
    expect(s3.history).toEqual([{ n: 1201 }]);
    void DAY;
  });
});
