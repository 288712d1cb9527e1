// Look-back streams re-read "the last N days" each run. After a pause longer than N days the pass
// must still start where the last completed pass ended, or everything created in between is lost.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { BASIC, connection, sync } from '../../connectors/partnerstack/test/helpers.ts';

const HOST = 'https://api.partnerstack.test';
const BASE = `${HOST}/api/v2`;
const NOW = Date.UTC(2025, 5, 1);
const DAY = 86_400_000;
const page = (items: unknown[], has_more: boolean) => ({ data: { has_more, items }, message: 'Retrieved', status: 200 });
const txn = (key: string, createdAt: number) => ({ key, amount: 9900, amount_usd: 9900, currency: 'usd', approved: true, archived: false, customer: { key: 'cust_1', email: null, external_key: 'acct_1' }, metadata: {}, test: false, created_at: createdAt, updated_at: createdAt });

describe('PartnerStack look-back window after a long pause', () => {
  const t = useTestDb();
  beforeAll(() => nock.disableNetConnect());
  afterAll(() => nock.enableNetConnect());
  afterEach(() => {
    nock.cleanAll();
  });

  it('a run 45 days after the last one (look-back 30) reads from the last completed pass, not from now − 30 days', async () => {
    // startDate = NOW − 30 days: the first pass covers the same window as the look-back.
    const conn = connection(BASE, { lookbackDays: 30, startDate: '2025-05-02' });
    const seen: string[] = [];
    nock(HOST)
      .matchHeader('authorization', BASIC)
      .get('/api/v2/transactions')
      .query(true)
      .times(2)
      .reply((uri: unknown) => {
        const url = typeof uri === 'string' ? uri : String((uri as { url?: unknown }).url);
        const minCreated = Number(/min_created=(-?\d+)/.exec(url)?.[1] ?? NaN);
        seen.push(String(minCreated));
        const all = [txn('in_gap', NOW + 5 * DAY), txn('in_1', NOW - DAY)];
        return [200, page(all.filter((x) => x.created_at >= minCreated), false)];
      });
    const r1 = await sync(t.db, conn, { now: new Date(NOW), only: ['transactions'] });
    expect(r1.status).toBe('succeeded');
    const r2 = await sync(t.db, conn, { now: new Date(NOW + 45 * DAY), only: ['transactions'] });
    expect(r2.status).toBe('succeeded');
    expect(seen[1]).toBe(String(NOW - 1)); // from = end of the last completed pass
    const keys = (await t.db('network_transactions').orderBy('external_id').select('external_id')).map((r) => r.external_id);
    expect(keys).toEqual(['in_1', 'in_gap']);
  });
});

describe('Awin validation/amendment look-back after a long pause', () => {
  const t = useTestDb();
  beforeAll(() => nock.disableNetConnect());
  afterAll(() => nock.enableNetConnect());
  afterEach(() => {
    nock.cleanAll();
  });

  it('a run 47 days after the last one (look-back 10) re-reads validations from the last run on', async () => {
    const { awinConfig, AWIN_ENV, silentLog } = await import('../../connectors/awin/test/helpers.ts');
    const { connector } = await import('../../connectors/awin/index.ts');
    const { runStreams } = await import('../../src/sync/engine.ts');
    const BASE_AWIN = 'https://api.awin.test';
    const seen: Array<Record<string, string>> = [];
    nock(BASE_AWIN)
      .get('/advertisers/1001/transactions/')
      .query(true)
      .times(100)
      .reply((req: Request) => {
        seen.push(Object.fromEntries(new URL(req.url).searchParams));
        return [200, []];
      });
    const run = async (now: Date) => {
      const { config, connection } = awinConfig(BASE_AWIN, { startDate: '2025-03-01', lookbackDays: 10, timezone: 'UTC' });
      const ctx = { db: t.db, config, connection, log: silentLog, now, runId: 0, env: AWIN_ENV };
      return runStreams({ db: t.db, config, connection, streams: connector.streams(ctx), log: silentLog, env: AWIN_ENV, now });
    };
    expect((await run(new Date('2025-03-15T12:00:00Z'))).status).toBe('succeeded');
    seen.length = 0;
    expect((await run(new Date('2025-05-01T12:00:00Z'))).status).toBe('succeeded');
    const firstOf = (dateType: string) => seen.find((q) => q.dateType === dateType)?.startDate;
    expect(firstOf('validation')).toBe('2025-03-15T12:00:00');
    expect(firstOf('amendment')).toBe('2025-03-15T12:00:00');
  });
});
