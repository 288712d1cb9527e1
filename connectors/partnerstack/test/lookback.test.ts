// The look-back cadence on transactions and rewards (src/sync/lookback.ts): a sweep re-reads the
// whole look-back window when due, runs in between read only the tail, and both are complete
// windows for deletion detection. A nock "server" answers from a mutable list, honouring
// min_created, status, starting_after and limit, and records every query.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { BASIC, connection, sync } from './helpers.ts';

const HOST = 'https://api.partnerstack.test';
const BASE = `${HOST}/api/v2`;
const NOW = Date.UTC(2025, 5, 1);
const H = 3_600_000;
const DAY = 24 * H;

type Item = { key: string; created_at: number; [k: string]: unknown };
const txn = (key: string, createdAt: number): Item => ({ key, amount: 9900, amount_usd: 9900, currency: 'usd', approved: true, archived: false, customer: { key: 'cust_1', email: null, external_key: 'acct_1' }, metadata: {}, test: false, created_at: createdAt, updated_at: createdAt });
const reward = (key: string, status: string, createdAt: number): Item => ({
  key, amount: 1980, currency: 'USD', description: 'Direct', reward_status: status,
  customer: { key: 'cust_1', email: null, external_key: 'acct_1' }, partnership: { key: 'pship_1', email: 'p1@example.com' },
  transaction: { key: 'in_1', amount: 9900, currency: 'USD' }, created_at: createdAt, updated_at: createdAt,
});

const t = useTestDb();
let store: Record<'transactions' | 'rewards', Item[]>;
let queries: Array<{ path: string; q: Record<string, string> }>;
/** Requests to fail with HTTP 500 (by path + starting_after), e.g. to kill a run between pages. */
let failing: Set<string>;

function serve(): void {
  nock(HOST)
    .persist()
    .matchHeader('authorization', BASIC)
    .get(/\/api\/v2\/(transactions|rewards)/)
    .query(true)
    .reply((req: unknown) => {
      // nock hands the callback a fetch Request (older versions: the path string).
      const url = new URL(typeof req === 'string' ? req : String((req as { url: string }).url), HOST);
      const path = url.pathname.split('/').pop() as 'transactions' | 'rewards';
      const q = Object.fromEntries(url.searchParams);
      if (failing.has(`${path}:${q.starting_after ?? ''}`)) return [500, { message: 'boom', status: 500 }];
      queries.push({ path, q });
      const min = q.min_created !== undefined ? Number(q.min_created) : -Infinity;
      let list = store[path].filter((x) => x.created_at >= min && (!q.status || x.reward_status === q.status)).sort((a, b) => b.created_at - a.created_at);
      if (q.starting_after) list = list.slice(list.findIndex((x) => x.key === q.starting_after) + 1);
      const limit = Number(q.limit);
      return [200, { data: { has_more: list.length > limit, items: list.slice(0, limit) }, message: 'Retrieved', status: 200 }];
    });
}

const minCreatedOf = (path: string): string[] => [...new Set(queries.filter((x) => x.path === path).map((x) => x.q.min_created ?? 'none'))];
const state = async (stream: string) => (await t.db('checkpoints').where({ stream }).first()).state;
const rows = async (table: string) =>
  Object.fromEntries((await t.db(table).select('external_id', 'deleted_at', ...(table === 'network_commissions' ? ['status'] : []))).map((r) => [r.external_id, r.status ?? (r.deleted_at ? 'deleted' : 'live')]));

describe('partnerstack look-back cadence (sweep every 24 h, 48 h tail)', () => {
  beforeAll(() => nock.disableNetConnect());
  afterAll(() => nock.enableNetConnect());
  beforeEach(async () => {
    store = { transactions: [], rewards: [] };
    queries = [];
    failing = new Set();
    serve();
  });
  afterEach(() => {
    nock.cleanAll();
  });

  // startDate = NOW − 30 days = the look-back, so the first pass is a sweep of the same window.
  const conn = connection(BASE, { lookbackDays: 30, startDate: '2025-05-02', pageSize: 2 });

  it('transactions: a tail run reads only the tail, catches a new row and a deletion inside it; the due sweep catches the old deletion', async () => {
    store.transactions = [txn('in_old', NOW - 20 * DAY), txn('in_mid', NOW - 10 * DAY), txn('in_recent', NOW - DAY)];
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] })).status).toBe('succeeded');
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW, lastSweepAt: NOW, pass: null });

    // 6 h later: in_recent refunded (deleted), in_old deleted too (but outside the tail), in_new sold.
    store.transactions = [txn('in_mid', NOW - 10 * DAY), txn('in_new', NOW + 5 * H)];
    queries = [];
    const r2 = await sync(t.db, conn, { now: new Date(NOW + 6 * H), only: ['transactions'] });
    expect(r2.status).toBe('succeeded');
    expect(minCreatedOf('transactions')).toEqual([String(NOW - 48 * H - 1)]); // end of the last pass − 48 h
    expect(r2.streams.transactions).toMatchObject({ records: 1, deleted: 1 });
    expect(await rows('network_transactions')).toEqual({ in_old: 'live', in_mid: 'live', in_recent: 'deleted', in_new: 'live' });
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW + 6 * H, lastSweepAt: NOW, pass: null });

    // 24 h after the last sweep: a sweep again, from now − 30 days; in_old's deletion shows.
    queries = [];
    const r3 = await sync(t.db, conn, { now: new Date(NOW + DAY), only: ['transactions'] });
    expect(r3.status).toBe('succeeded');
    expect(minCreatedOf('transactions')).toEqual([String(NOW + DAY - 30 * DAY - 1)]);
    expect(r3.streams.transactions!.deleted).toBe(1);
    expect(await rows('network_transactions')).toEqual({ in_old: 'deleted', in_mid: 'live', in_recent: 'deleted', in_new: 'live' });
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW + DAY, lastSweepAt: NOW + DAY, pass: null });
  });

  it('transactions: a tail skips unchanged rows whose links are current, and re-maps one whose customer arrived or whose partner moved since', async () => {
    const one = async <T>(q: Promise<T[]>): Promise<T> => (await q)[0]!;
    const customer = async (key: string) => {
      const c = await one(t.db('customers').insert({ customer_key: `acct_${key}` }).returning<{ id: number }[]>('id'));
      await t.db('customer_identities').insert({ customer_id: c.id, system: 'partnerstack', connection: 'ps', external_id: key });
      return c.id;
    };
    const account = async (key: string) => {
      const p = await one(t.db('partners').insert({ partner_key: `partnerstack:${key}` }).returning<{ id: number }[]>('id'));
      return (await one(t.db('partner_accounts').insert({ partner_id: p.id, connection: 'ps', network: 'partnerstack', external_id: key }).returning<{ id: number }[]>('id'))).id;
    };
    const attribute = (customerId: number, accountId: number) =>
      t.db('attributions').insert({ customer_id: customerId, partner_account_id: accountId, connection: 'ps', network: 'partnerstack', source_ref: `customer:${customerId}` }).onConflict(['connection', 'source_ref']).merge(['partner_account_id']);
    const [acc1, acc2] = [await account('p1'), await account('p2')];
    const known = await customer('cust_2');
    await attribute(known, acc1);
    const withCustomer = (item: Item, key: string): Item => ({ ...item, customer: { key, email: null, external_key: null } });
    store.transactions = [withCustomer(txn('in_a', NOW - 5 * H), 'cust_1'), withCustomer(txn('in_b', NOW - 6 * H), 'cust_2')];
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] })).status).toBe('succeeded');
    const links = async () => Object.fromEntries((await t.db('network_transactions').select('external_id', 'customer_id', 'partner_account_id')).map((r) => [r.external_id, [r.customer_id === null ? null : Number(r.customer_id), r.partner_account_id === null ? null : Number(r.partner_account_id)]]));
    expect(await links()).toEqual({ in_a: [null, null], in_b: [known, acc1] });

    // cust_1 arrives (with its partner): in_a is unchanged but re-mapped; in_b is skipped.
    const late = await customer('cust_1');
    await attribute(late, acc2);
    const r2 = await sync(t.db, conn, { now: new Date(NOW + H), only: ['transactions'] });
    expect(r2.streams.transactions).toMatchObject({ records: 2, written: 1, unchanged: 1 });
    expect(await links()).toEqual({ in_a: [late, acc2], in_b: [known, acc1] });

    // cust_2 moves to p2: in_b's partner follows on the next tail; nothing else is re-written.
    await attribute(known, acc2);
    const r3 = await sync(t.db, conn, { now: new Date(NOW + 2 * H), only: ['transactions'] });
    expect(r3.streams.transactions).toMatchObject({ records: 2, written: 1, unchanged: 1 });
    expect(await links()).toEqual({ in_a: [late, acc2], in_b: [known, acc2] });
  });

  it('rewards: both phases use the tail between sweeps; an old status change waits for the sweep', async () => {
    store.rewards = [reward('rew_old', 'pending', NOW - 20 * DAY), reward('rew_sched', 'scheduled', NOW - 15 * DAY), reward('rew_1', 'pending', NOW - DAY)];
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['rewards'] })).status).toBe('succeeded');
    store.rewards = [reward('rew_old', 'approved', NOW - 20 * DAY), reward('rew_sched', 'scheduled', NOW - 15 * DAY), reward('rew_1', 'declined', NOW - DAY)];
    queries = [];
    expect((await sync(t.db, conn, { now: new Date(NOW + 2 * H), only: ['rewards'] })).status).toBe('succeeded');
    expect(queries.map((x) => [x.q.status ?? 'all', x.q.min_created])).toEqual([
      ['all', String(NOW - 48 * H - 1)],
      ['scheduled', String(NOW - 48 * H - 1)],
    ]);
    expect(await rows('network_commissions')).toEqual({ rew_old: 'pending', rew_sched: 'scheduled', rew_1: 'declined' });
    // `--sweep` forces the whole window before the 24 h are up.
    queries = [];
    expect((await sync(t.db, conn, { now: new Date(NOW + 3 * H), only: ['rewards'], sweep: true })).status).toBe('succeeded');
    expect(minCreatedOf('rewards')).toEqual([String(NOW + 3 * H - 30 * DAY - 1)]);
    expect(await rows('network_commissions')).toEqual({ rew_old: 'approved', rew_sched: 'scheduled', rew_1: 'declined' });
    expect((await state('rewards')).lastSweepAt).toBe(NOW + 3 * H);
  });

  it('rewards: a tail re-maps an unchanged reward only when its customer arrived or its partnership link moved since', async () => {
    store.rewards = [{ ...reward('rew_1', 'pending', NOW - 5 * H), partnership: { key: 'pship_1', partner_key: 'p1', email: 'p1@example.com' } }];
    const run = async (at: number) => (await sync(t.db, conn, { now: new Date(at), only: ['rewards'] })).streams.rewards;
    const links = async () => {
      const r = await t.db('network_commissions as n').leftJoin('partner_accounts as a', 'a.id', 'n.partner_account_id').where('n.external_id', 'rew_1').first('n.customer_id', 'n.partner_external_id', 'a.external_id as account');
      return [r.customer_id === null ? null : Number(r.customer_id), r.partner_external_id, r.account];
    };
    expect(await run(NOW)).toMatchObject({ written: 1 });
    expect(await links()).toEqual([null, 'p1', 'p1']);
    // No customer yet: re-mapped on every tail (it may arrive); once it has, skipped.
    expect(await run(NOW + H)).toMatchObject({ written: 1, unchanged: 0 });
    const [c] = await t.db('customers').insert({ customer_key: 'acct_1' }).returning<{ id: number }[]>('id');
    await t.db('customer_identities').insert({ customer_id: c!.id, system: 'partnerstack', connection: 'ps', external_id: 'cust_1' });
    expect(await run(NOW + 2 * H)).toMatchObject({ written: 1, unchanged: 0 });
    expect(await links()).toEqual([c!.id, 'p1', 'p1']);
    expect(await run(NOW + 3 * H)).toMatchObject({ written: 0, unchanged: 1 });
    // The partnership now links to partner p2: the reward follows on the next tail.
    await t.db('identity_links').insert({ kind: 'partnerstack.partnership', from_ref: 'ps:pship_1', to_ref: 'p2', source: 'ps' });
    expect(await run(NOW + 4 * H)).toMatchObject({ written: 1, unchanged: 0 });
    expect(await links()).toEqual([c!.id, 'p2', 'p2']);
    expect(await run(NOW + 5 * H)).toMatchObject({ written: 0, unchanged: 1 });
  });

  it('a run killed between pages resumes the same pass (a tail stays a tail, a sweep is stamped when it completes)', async () => {
    store.transactions = [txn('in_a', NOW - 20 * DAY), txn('in_b', NOW - 30 * H), txn('in_c', NOW - 20 * H), txn('in_d', NOW - 10 * H)];
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] })).status).toBe('succeeded');

    // Tail run 1 h later: page 1 (in_d, in_c) commits, page 2 fails; in_b vanished meanwhile.
    store.transactions = [txn('in_a', NOW - 20 * DAY), txn('in_c', NOW - 20 * H), txn('in_d', NOW - 10 * H), txn('in_e', NOW + 30 * 60_000)];
    failing.add('transactions:in_d');
    const r1 = await sync(t.db, conn, { now: new Date(NOW + H), only: ['transactions'] });
    expect(r1.status).toBe('failed');
    expect(await state('transactions')).toMatchObject({ lastCompletedTo: NOW, lastSweepAt: NOW, pass: { from: NOW - 48 * H, to: NOW + H, startingAfter: 'in_d', sweepAt: null } });

    // Resumed 30 h later (a sweep would be due): the stored tail pass finishes first, from page 2.
    failing.clear();
    queries = [];
    const r2 = await sync(t.db, conn, { now: new Date(NOW + 30 * H), only: ['transactions'] });
    expect(r2.status).toBe('succeeded');
    expect(queries.map((x) => [x.q.min_created, x.q.starting_after])).toEqual([[String(NOW - 48 * H - 1), 'in_d']]);
    expect(r2.streams.transactions!.deleted).toBe(1); // in_b, inside the tail
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW + H, lastSweepAt: NOW, pass: null });

    // The sweep is still due; killed after its first page, then resumed: stamped with its own `to`.
    failing.add('transactions:in_d');
    const now3 = NOW + 31 * H;
    expect((await sync(t.db, conn, { now: new Date(now3), only: ['transactions'] })).status).toBe('failed');
    expect(await state('transactions')).toMatchObject({ lastSweepAt: NOW, pass: { from: now3 - 30 * DAY, sweepAt: now3 } });
    failing.clear();
    queries = [];
    expect((await sync(t.db, conn, { now: new Date(now3 + H), only: ['transactions'] })).status).toBe('succeeded');
    expect(minCreatedOf('transactions')).toEqual([String(now3 - 30 * DAY - 1)]);
    expect(await state('transactions')).toEqual({ lastCompletedTo: now3, lastSweepAt: now3, pass: null });
  });

  it('a checkpoint from before the cadence (no lastSweepAt) sweeps on the next run', async () => {
    store.transactions = [txn('in_old', NOW - 20 * DAY), txn('in_recent', NOW - DAY)];
    expect((await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] })).status).toBe('succeeded');
    await t.db('checkpoints').where({ stream: 'transactions' }).update({ state: JSON.stringify({ lastCompletedTo: NOW, pass: null }) });
    store.transactions = [txn('in_recent', NOW - DAY)];
    queries = [];
    const r = await sync(t.db, conn, { now: new Date(NOW + H), only: ['transactions'] });
    expect(r.status).toBe('succeeded');
    expect(minCreatedOf('transactions')).toEqual([String(NOW + H - 30 * DAY - 1)]);
    expect(r.streams.transactions!.deleted).toBe(1);
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW + H, lastSweepAt: NOW + H, pass: null });
  });

  it('a legacy pass in progress (no sweepAt) resumes and completes without counting as a sweep', async () => {
    store.transactions = [txn('in_1', NOW - DAY)];
    await t.db('checkpoints').insert({ connection: 'ps', stream: 'transactions', state: JSON.stringify({ lastCompletedTo: NOW - DAY, pass: { since: new Date().toISOString(), from: NOW - 31 * DAY, to: NOW, phase: 0, startingAfter: null } }) });
    expect((await sync(t.db, conn, { now: new Date(NOW + H), only: ['transactions'] })).status).toBe('succeeded');
    expect(minCreatedOf('transactions')).toEqual([String(NOW - 31 * DAY - 1)]);
    expect(await state('transactions')).toEqual({ lastCompletedTo: NOW, lastSweepAt: null, pass: null });
  });
});
