// The look-back cadence on Awin's validation/amendment passes (src/sync/lookback.ts): between
// sweeps they run as change feeds from their own last completed end − tailHours; a sweep (when due)
// re-reads the whole lookbackDays. The transaction-date pass always runs from its checkpoint.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import type { SyncContext } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';
import { fakeAwinTransaction, startFakeAwin, type FakeAwin } from '../fake-server.ts';
import { AWIN_ENV, awinConfig, silentLog } from './helpers.ts';

const H = 3_600_000;
const DAY = 24 * H;
const NOW = Date.parse('2025-06-10T12:00:00Z');
const OPTS = { startDate: '2025-04-21', lookbackDays: 30, timezone: 'UTC' };
/** Awin's date format in UTC, as the stream sends it. */
const awinDate = (ms: number): string => new Date(ms).toISOString().slice(0, 19);

const t = useTestDb();
async function sync(baseUrl: string, at: number, top: Record<string, unknown> = {}) {
  const { config: base, connection } = awinConfig(baseUrl, OPTS);
  const config = { ...base, sync: { ...base.sync, ...(top.sync as object) } };
  const now = new Date(at);
  const ctx: SyncContext = { db: t.db, config, connection, log: silentLog, now, runId: 0, env: AWIN_ENV };
  connector.validateOptions!(connection);
  return runStreams({ db: t.db, config, connection, streams: connector.streams(ctx), log: silentLog, env: AWIN_ENV, now });
}
const state = async () => (await t.db('checkpoints').where({ connection: 'awin', stream: 'transactions' }).first()).state;
const statuses = async () => Object.fromEntries((await t.db('network_commissions').select('external_id', 'status')).map((x: { external_id: string; status: string }) => [x.external_id, x.status]));

describe('Awin look-back cadence against the fake server', () => {
  let fake: FakeAwin;
  beforeEach(async () => {
    fake = await startFakeAwin();
  });
  afterEach(async () => {
    await fake.close();
  });
  /** [dateType, startDate] of the change-feed requests since `from`. */
  const changeReqs = (from: number) => fake.requests.slice(from).filter((r) => r.query.dateType !== 'transaction').map((r) => [r.query.dateType, r.query.startDate, r.query.endDate]);
  const find = (id: number) => fake.store.transactions.find((x) => x.id === id)!;

  it('between sweeps the change passes read only the tail (new sale and deletion seen); the due sweep finds an older-dated change', async () => {
    fake.store.transactions.push(
      fakeAwinTransaction({ id: 9001, publisherId: 77, transactionDate: new Date(NOW - 40 * DAY), sale: '100.00', commission: '40.00', status: 'approved', validationDate: new Date(NOW - 35 * DAY) }),
      fakeAwinTransaction({ id: 9002, publisherId: 77, transactionDate: new Date(NOW - 10 * DAY), sale: '50.00', commission: '20.00' }),
      fakeAwinTransaction({ id: 9003, publisherId: 88, transactionDate: new Date(NOW - DAY), sale: '10.00', commission: '4.00' }),
    );
    expect((await sync(fake.url, NOW)).status).toBe('succeeded');
    expect(changeReqs(0)).toEqual([
      ['validation', awinDate(NOW - 30 * DAY), awinDate(NOW)],
      ['amendment', awinDate(NOW - 30 * DAY), awinDate(NOW)],
    ]);
    expect(await state()).toMatchObject({ txCursor: '2025-06-10T12:00:00.000Z', changesThrough: '2025-06-10T12:00:00.000Z', lastSweepAt: NOW, run: null });

    // 6 h later: 9002 declined today (in the feed's tail), 9003 deleted, 9004 sold; 9001 declined
    // with a validation date 3 days back (before our last read: only a sweep re-reads that far).
    Object.assign(find(9002), { commissionStatus: 'declined', validationDate: awinDate(NOW + 5 * H) });
    Object.assign(find(9003), { commissionStatus: 'deleted', validationDate: awinDate(NOW + 4 * H) });
    Object.assign(find(9001), { commissionStatus: 'declined', validationDate: awinDate(NOW - 3 * DAY) });
    fake.store.transactions.push(fakeAwinTransaction({ id: 9004, publisherId: 88, transactionDate: new Date(NOW + 3 * H), sale: '10.00', commission: '4.00' }));
    let n = fake.requests.length;
    expect((await sync(fake.url, NOW + 6 * H)).status).toBe('succeeded');
    expect(changeReqs(n)).toEqual([
      ['validation', awinDate(NOW - 48 * H), awinDate(NOW + 6 * H)],
      ['amendment', awinDate(NOW - 48 * H), awinDate(NOW + 6 * H)],
    ]);
    expect(await statuses()).toEqual({ '9001': 'approved', '9002': 'declined', '9003': 'deleted', '9004': 'pending' });
    expect(await state()).toMatchObject({ changesThrough: '2025-06-10T18:00:00.000Z', lastSweepAt: NOW });

    // 24 h after the last sweep: the deep re-read over lookbackDays finds 9001's decline.
    n = fake.requests.length;
    expect((await sync(fake.url, NOW + DAY)).status).toBe('succeeded');
    expect(changeReqs(n)[0]).toEqual(['validation', awinDate(NOW + DAY - 30 * DAY), awinDate(NOW + DAY)]);
    expect((await statuses())['9001']).toBe('declined');
    expect(await state()).toMatchObject({ changesThrough: '2025-06-11T12:00:00.000Z', lastSweepAt: NOW + DAY });
  });

  it('a checkpoint from before the cadence (no changesThrough / lastSweepAt) sweeps', async () => {
    expect((await sync(fake.url, NOW)).status).toBe('succeeded');
    await t.db('checkpoints').where({ connection: 'awin' }).update({ state: JSON.stringify({ v: 1, txCursor: '2025-06-10T12:00:00.000Z', run: null }) });
    const n = fake.requests.length;
    expect((await sync(fake.url, NOW + H)).status).toBe('succeeded');
    expect(changeReqs(n)[0]).toEqual(['validation', awinDate(NOW + H - 30 * DAY), awinDate(NOW + H)]);
    expect(await state()).toMatchObject({ changesThrough: '2025-06-10T13:00:00.000Z', lastSweepAt: NOW + H });
  });
});

describe('Awin: a run killed between windows', () => {
  const HOST = 'https://api.awin.test';
  let seen: Array<Record<string, string>>;
  let failValidation: boolean;
  beforeAll(() => nock.disableNetConnect());
  afterAll(() => nock.enableNetConnect());
  beforeEach(async () => {
    seen = [];
    failValidation = false;
    nock(HOST)
      .persist()
      .get('/advertisers/1001/transactions/')
      .query(true)
      .reply((req: unknown) => {
        // nock hands the callback a fetch Request (older versions: the path string).
        const q = Object.fromEntries(new URL(typeof req === 'string' ? req : String((req as { url: string }).url), HOST).searchParams);
        if (failValidation && q.dateType === 'validation') return [500, { error: 'server.error' }];
        seen.push(q);
        return [200, []];
      });
  });
  afterEach(() => {
    nock.cleanAll();
  });

  it('resumes the stored plan: a tail stays a tail (no sweep stamp), the sweep comes next', async () => {
    expect((await sync(HOST, NOW)).status).toBe('succeeded');
    failValidation = true;
    expect((await sync(HOST, NOW + 6 * H)).status).toBe('failed');
    expect(await state()).toMatchObject({ lastSweepAt: NOW, run: { step: 1, sweepAt: null, windowStart: '2025-06-08T12:00:00.000Z' } });

    // 30 h later a sweep is due, but the stored (tail) plan finishes first.
    failValidation = false;
    seen = [];
    expect((await sync(HOST, NOW + 30 * H)).status).toBe('succeeded');
    expect(seen.map((q) => [q.dateType, q.startDate, q.endDate])).toEqual([
      ['validation', awinDate(NOW - 48 * H), awinDate(NOW + 6 * H)],
      ['amendment', awinDate(NOW - 48 * H), awinDate(NOW + 6 * H)],
    ]);
    expect(await state()).toMatchObject({ txCursor: '2025-06-10T18:00:00.000Z', changesThrough: '2025-06-10T18:00:00.000Z', lastSweepAt: NOW, run: null });
    seen = [];
    expect((await sync(HOST, NOW + 30 * H)).status).toBe('succeeded');
    expect(seen.find((q) => q.dateType === 'validation')?.startDate).toBe(awinDate(NOW + 30 * H - 30 * DAY));
    expect((await state()).lastSweepAt).toBe(NOW + 30 * H);
  });
});
