// Look-back cadence and the change feed against the fake: tails between sweeps, events for changes
// to old objects, sweeps when due / when the event cursor expired / from legacy checkpoints, and a
// run killed between event pages. One database and fake for the whole file: each test builds on the
// state the previous runs left (as successive runs of a real deployment do).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { configSchema, connectionSchema, type Config, type ConnectionConfig } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import { connector } from '../index.ts';
import { startStripeFake, type FakeRequest, type StripeFake } from '../fake-server.ts';
import type { WindowState } from '../streams.ts';
import { customer, DAY, invoice, payment, scenario, subscription, T0 } from './fixtures.ts';

const env = { STRIPE_KEY: 'sk_test_fake' };
const H = 3600;
const config = configSchema.parse({});
const WINDOWS = ['customers', 'subscriptions', 'invoices', 'refunds', 'disputes'] as const;
const LIST_PATH: Record<(typeof WINDOWS)[number], string> = { customers: '/v1/customers', subscriptions: '/v1/subscriptions', invoices: '/v1/invoices', refunds: '/v1/refunds', disputes: '/v1/disputes' };
// After every fixture time (the last is dp_won closing on T0 + 66 d).
const N1 = T0 + 70 * DAY;

function conn(url: string, options: Record<string, unknown> = {}): ConnectionConfig {
  return connectionSchema.parse({ name: 'stripe-main', type: 'stripe', baseUrl: url, credentials: { apiKey: 'STRIPE_KEY' }, timeoutMs: 5000, options: { backoffBaseMs: 5, backoffMaxMs: 20, maxNetworkRetries: 1, ...options } });
}

describe('stripe look-back cadence and change feed', () => {
  let fake: StripeFake;
  let t: TestDb;
  let clock = N1 - H;

  beforeAll(async () => {
    fake = await startStripeFake();
    fake.store.clock = () => clock;
    fake.store.add(...scenario());
    t = await createTestDb();
  });
  afterAll(async () => {
    await fake.close();
    await t.destroy();
  });

  /** One sync at `nowS` (unix seconds); the fake's request log holds this run's requests only. */
  async function syncAt(nowS: number, options: Record<string, unknown> = {}, cfg: Config = config) {
    fake.requests.length = 0;
    const c = conn(fake.url, options);
    const now = new Date(nowS * 1000);
    const streams = connector.streams({ db: t.db, config: cfg, connection: c, log: silentLogger, now, runId: 0, env });
    return runStreams({ db: t.db, config: cfg, connection: c, streams, log: silentLogger, env, now });
  }
  async function state(stream: string): Promise<WindowState> {
    const row = await t.db('checkpoints').where({ connection: 'stripe-main', stream }).first<{ state: unknown }>('state');
    return (typeof row!.state === 'string' ? JSON.parse(row!.state) : row!.state) as WindowState;
  }
  const lists = (stream: (typeof WINDOWS)[number]): FakeRequest[] => fake.requests.filter((r) => r.path === LIST_PATH[stream]);
  const createdOf = (r: FakeRequest) => r.query.created as Record<string, string>;
  const typedEvents = (): FakeRequest[] => fake.requests.filter((r) => r.path === '/v1/events' && r.query.types !== undefined);
  const subStatus = async (id: string) => (await t.db('subscriptions').where({ external_id: id }).first<{ status: string }>('status'))?.status;

  it('the first run sweeps; a run an hour later reads only the 48 h tail and the change events', async () => {
    const first = await syncAt(N1);
    expect(first.status, first.error).toBe('succeeded');
    expect(first.streams.invoices!.records).toBe(8);
    for (const s of WINDOWS) {
      const st = await state(s);
      expect(st.lastSweepAt).toBe(N1 * 1000);
      // The newest event at the start (dp_won closed, T0 + 66 d) minus the margin.
      expect(st.eventCursor).toBe(Math.floor(Date.UTC(2025, 2, 10) / 1000) - 300);
      expect(lists(s)[0]!.query.created).toEqual({ gte: '0', lte: String(N1) });
    }

    const second = await syncAt(N1 + H);
    expect(second.status, second.error).toBe('succeeded');
    for (const s of WINDOWS) {
      expect(lists(s).map(createdOf)).toEqual([{ gte: String(N1 - 48 * H), lte: String(N1 + H) }]);
      // dp_won's close event is the newest and within the cursor's margin, so it is read again (harmless).
      expect(second.streams[s]!.records).toBe(s === 'disputes' ? 1 : 0);
      expect((await state(s)).lastSweepAt).toBe(N1 * 1000); // not a sweep
    }
    // Per stream: the newest-event peek and one page of its change events; plus dp_won re-fetched.
    expect(typedEvents().map((r) => createdOf(r).gt)).toEqual(WINDOWS.map(() => String(Math.floor(Date.UTC(2025, 2, 10) / 1000) - 300)));
    expect(typedEvents().find((r) => (r.query.types as string[]).includes('customer.subscription.deleted'))).toBeDefined();
    expect(fake.requests.filter((r) => /^\/v1\/\w+\/./.test(r.path)).map((r) => r.path)).toEqual(['/v1/disputes/dp_won']);
    expect(fake.requests.length).toBe(16);
  });

  it('a subscription cancelled long after creation, and an old invoice paid late, are written on the next non-sweep run', async () => {
    clock = N1 + 2 * H;
    expect(await subStatus('sub_won')).toBe('active');
    fake.store.add(subscription('sub_won', 'cus_won', T0 + 10, { status: 'canceled', canceledAt: clock }));
    // in_open (created T0 + 1 d, outside even the 35-day sweep window) gets paid.
    fake.store.add(invoice('in_open', 'cus_won', 'sub_won', T0 + DAY + 20, { amountPaid: 5000 }), ...payment('in_open', clock, { amount: 5000 }));
    const r = await syncAt(N1 + 3 * H);
    expect(r.status, r.error).toBe('succeeded');
    expect(lists('subscriptions').map(createdOf)).toEqual([{ gte: String(N1 + H - 48 * H), lte: String(N1 + 3 * H) }]);
    expect(fake.requests.some((q) => q.path === '/v1/subscriptions/sub_won')).toBe(true);
    expect(fake.requests.some((q) => q.path === '/v1/invoices/in_open')).toBe(true);
    expect(await subStatus('sub_won')).toBe('canceled');
    const pay = await t.db('billing_events').where({ kind: 'payment', external_id: 'in_open' }).first<{ amount_minor: string }>('amount_minor');
    expect(Number(pay!.amount_minor)).toBe(5000);
    expect((await state('subscriptions')).lastSweepAt).toBe(N1 * 1000);
  });

  it('a sweep is due once sync.lookback.everyHours (24) have passed since the last one', async () => {
    const notYet = await syncAt(N1 + 23 * H);
    expect(notYet.status, notYet.error).toBe('succeeded');
    expect(lists('subscriptions').map((r) => createdOf(r).gte)).toEqual([String(N1 + 3 * H - 48 * H)]);
    const due = await syncAt(N1 + 24 * H);
    expect(due.status, due.error).toBe('succeeded');
    // Sweep windows: subscriptions the whole list, invoices 35 days before the last pass's end.
    expect(lists('subscriptions').map((r) => createdOf(r).gte)).toEqual(['0']);
    expect(lists('invoices').map((r) => createdOf(r).gte)).toEqual([String(N1 + 23 * H - 35 * DAY)]);
    expect(due.streams.subscriptions!.records).toBe(5);
    for (const s of WINDOWS) expect((await state(s)).lastSweepAt).toBe((N1 + 24 * H) * 1000);
  });

  it('a run killed between pages of change events resumes after the last committed page without losing events', async () => {
    const S = N1 + 24 * H;
    const changes: Array<[string, string, number, string]> = [
      ['sub_trial', 'cus_trial', T0, 'canceled'],
      ['sub_eur', 'cus_eur', T0 + 30, 'past_due'],
      ['sub_coupon', 'cus_coupon', T0 + 40, 'canceled'],
      ['sub_lost', 'cus_lost', T0 + 20, 'unpaid'],
      ['sub_won', 'cus_won', T0 + 10, 'past_due'],
    ];
    changes.forEach(([id, cus, created, status], i) => {
      clock = S + H + i;
      fake.store.add(subscription(id, cus, created, { status, ...(status === 'canceled' ? { canceledAt: clock } : {}) }));
    });
    // Newest first, two per page: [sub_won, sub_lost], [sub_coupon, sub_eur], [sub_trial]. The
    // re-fetch of sub_coupon fails, so the run dies on the second page.
    fake.setFaults({ fail5xx: 50, match: /^\/v1\/subscriptions\/sub_coupon$/ });
    const killed = await syncAt(S + 2 * H, { pageSize: 2 });
    fake.setFaults({});
    expect(killed.status).toBe('failed');
    const st = await state('subscriptions');
    expect(st.pass?.events?.after).toMatch(/^evt_/);
    expect([await subStatus('sub_won'), await subStatus('sub_lost'), await subStatus('sub_coupon'), await subStatus('sub_trial')]).toEqual(['past_due', 'unpaid', 'active', 'active']);

    // A change made after the killed pass started is newer than its cursor: read by the pass after
    // (sub_lost's earlier event was on the committed page, so the resumed pass does not fetch it).
    clock = S + 3 * H;
    fake.store.add(subscription('sub_lost', 'cus_lost', T0 + 20, { status: 'canceled', canceledAt: clock }));
    const resumed = await syncAt(S + 3 * H + 60, { pageSize: 2 });
    expect(resumed.status, resumed.error).toBe('succeeded');
    expect(typedEvents().find((r) => r.query.types && Array.isArray(r.query.types) && (r.query.types as string[]).includes('customer.subscription.deleted'))!.query.starting_after).toBe(st.pass!.events!.after);
    expect([await subStatus('sub_coupon'), await subStatus('sub_eur'), await subStatus('sub_trial')]).toEqual(['canceled', 'past_due', 'canceled']);
    expect(await subStatus('sub_lost')).toBe('unpaid');
    const after = await state('subscriptions');
    expect(after.pass).toBeNull();
    expect(after.eventCursor).toBe(S + H + 4 - 300); // the newest event when the killed pass started

    const next = await syncAt(S + 4 * H);
    expect(next.status, next.error).toBe('succeeded');
    expect(await subStatus('sub_lost')).toBe('canceled');
  });

  it('an event cursor past the 30-day retention falls back to a sweep', async () => {
    const rare = configSchema.parse({ sync: { lookback: { everyHours: 744 } } });
    const later = N1 + 24 * H + 30 * DAY + 3 * H; // 723 h after the last sweep, 30 d − 1 min after the cursor
    // The account's newest event is recent again (so the sweep's new cursor is valid).
    clock = later - 60;
    fake.store.add(customer('cus_oneoff', T0 + 50, { customer_key: 'ck_oneoff' }));
    const r = await syncAt(later, {}, rare);
    expect(r.status, r.error).toBe('succeeded');
    expect(lists('subscriptions').map((q) => createdOf(q).gte)).toEqual(['0']);
    expect(typedEvents()).toEqual([]); // nothing to read from: only the newest-event peek
    for (const s of WINDOWS) expect((await state(s)).lastSweepAt).toBe(later * 1000);
    // With a fresh cursor the same configuration reads tails again.
    const tail = await syncAt(later + H, {}, rare);
    expect(tail.status, tail.error).toBe('succeeded');
    expect(lists('subscriptions').map((q) => createdOf(q).gte)).toEqual([String(later - 48 * H)]);
  });

  it('a checkpoint from before the cadence (no lastSweepAt, no event cursor) sweeps, then keeps both', async () => {
    const rare = configSchema.parse({ sync: { lookback: { everyHours: 744 } } });
    const hwm = N1 + 24 * H + 30 * DAY + 4 * H;
    for (const stream of ['subscriptions', 'invoices']) {
      await t.db('checkpoints')
        .insert({ connection: 'stripe-main', stream, state: JSON.stringify({ hwm, pass: null }) })
        .onConflict(['connection', 'stream'])
        .merge(['state']);
    }
    const r = await syncAt(hwm + H, {}, rare);
    expect(r.status, r.error).toBe('succeeded');
    expect(lists('subscriptions').map((q) => createdOf(q).gte)).toEqual(['0']);
    expect(lists('invoices').map((q) => createdOf(q).gte)).toEqual([String(hwm - 35 * DAY)]);
    expect(lists('customers').map((q) => createdOf(q).gte)).toEqual([String(hwm - 48 * H)]); // untouched state: a tail
    const st = await state('subscriptions');
    expect(st.lastSweepAt).toBe((hwm + H) * 1000);
    expect(st.eventCursor).not.toBeNull();
  });
});

describe('stripe fake: /v1/events', () => {
  let fake: StripeFake;
  beforeAll(async () => {
    fake = await startStripeFake();
    fake.store.clock = () => T0 + 100 * DAY;
    fake.store.add(...scenario());
  });
  afterAll(() => fake.close());

  const get = async (qs: string) => {
    const res = await fetch(`${fake.url}/v1/events?${qs}`, { headers: { authorization: `Bearer ${fake.apiKey}` } });
    return (await res.json()) as { object: string; url: string; has_more: boolean; data: Array<{ id: string; object: string; type: string; created: number; data: { object: { id: string; status?: string }; previous_attributes?: Record<string, unknown> } }> };
  };

  it('records lifecycle events for new objects and the change for replaced ones, newest first, filtered by type(s) and created', async () => {
    const subs = await get('type=customer.subscription.*&limit=100');
    expect(subs.object).toBe('list');
    expect(subs.url).toBe('/v1/events');
    const deleted = subs.data.filter((e) => e.type === 'customer.subscription.deleted');
    expect(deleted.map((e) => [e.data.object.id, e.created])).toEqual([['sub_lost', T0 + 40 * DAY]]);
    // sub_trial's trial ended (trialing → active).
    expect(subs.data.find((e) => e.type === 'customer.subscription.updated')!.created).toBe(T0 + 14 * DAY);
    const created = subs.data.map((e) => e.created);
    expect(created).toEqual([...created].sort((a, b) => b - a));

    fake.store.add(subscription('sub_eur', 'cus_eur', T0 + 30, { status: 'canceled', interval: 'year', currency: 'eur', price: 'price_annual_eur', canceledAt: T0 + 100 * DAY }));
    fake.store.add(subscription('sub_eur', 'cus_eur', T0 + 30, { status: 'canceled', interval: 'year', currency: 'eur', price: 'price_annual_eur', canceledAt: T0 + 100 * DAY })); // unchanged: no event
    const recent = await get(`types[]=customer.subscription.deleted&types[]=invoice.paid&created[gt]=${T0 + 90 * DAY}`);
    expect(recent.data.map((e) => [e.type, e.data.object.id, e.data.object.status, e.data.previous_attributes])).toEqual([['customer.subscription.deleted', 'sub_eur', 'canceled', { status: 'active' }]]);
    const one = await get('limit=1');
    expect(one.has_more).toBe(true);
    const byId = await fetch(`${fake.url}/v1/events/${one.data[0]!.id}`, { headers: { authorization: `Bearer ${fake.apiKey}` } });
    expect(((await byId.json()) as { id: string }).id).toBe(one.data[0]!.id);
  });
});
