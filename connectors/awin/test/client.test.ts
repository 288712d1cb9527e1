import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import nock from 'nock';
import { DateTime } from 'luxon';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import type { SyncContext } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';
import { awinStatus, awinToMinor, parseAwinTime } from '../mapping.ts';
import { parseAwinOptions } from '../schemas.ts';
import { AWIN_ENV, awinConfig, silentLog } from './helpers.ts';

const BASE = 'https://api.awin.test';
let t: TestDb;
beforeAll(() => nock.disableNetConnect());
afterAll(() => nock.enableNetConnect());
afterEach(() => {
  nock.cleanAll();
});

async function sync(options: Record<string, unknown>, now: Date, extra: Record<string, unknown> = {}) {
  const { config, connection } = awinConfig(BASE, options, extra);
  const ctx: SyncContext = { db: t.db, config, connection, log: silentLog, now, runId: 0, env: AWIN_ENV };
  return runStreams({ db: t.db, config, connection, streams: connector.streams(ctx), log: silentLog, env: AWIN_ENV, now });
}

describe('Awin transaction windows', () => {
  beforeEach(async () => {
    t = await createTestDb();
  });
  afterEach(async () => {
    await t.destroy();
  });

  it('reads ≤31-day windows with timezone, then validation and amendment look-back passes; the next run continues from the cursor', async () => {
    const seen: Array<Record<string, string>> = [];
    nock(BASE)
      .get('/advertisers/1001/transactions/')
      .query(true)
      .times(100)
      .reply((req: Request) => {
        expect(req.headers.get('authorization')).toBe('Bearer fake-awin-token');
        seen.push(Object.fromEntries(new URL(req.url).searchParams));
        return [200, []];
      });
    const now = new Date('2025-03-15T12:00:00Z');
    const r = await sync({ startDate: '2025-01-01', lookbackDays: 40, timezone: 'Europe/London' }, now);
    expect(r.status).toBe('succeeded');
    for (const q of seen) {
      expect(q.timezone).toBe('Europe/London');
      const days = DateTime.fromISO(q.endDate!).diff(DateTime.fromISO(q.startDate!), 'days').days;
      expect(days).toBeLessThanOrEqual(31);
      expect(q.startDate).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    }
    // Jan 1 → Mar 15 12:00 London: 31 + 31 + 11.5 days = 3 windows; look-back 40 days = 2 windows per pass.
    expect(seen.map((q) => `${q.dateType} ${q.startDate} ${q.endDate}`)).toEqual([
      'transaction 2025-01-01T00:00:00 2025-02-01T00:00:00',
      'transaction 2025-02-01T00:00:00 2025-03-04T00:00:00',
      'transaction 2025-03-04T00:00:00 2025-03-15T12:00:00',
      'validation 2025-02-03T12:00:00 2025-03-06T12:00:00',
      'validation 2025-03-06T12:00:00 2025-03-15T12:00:00',
      'amendment 2025-02-03T12:00:00 2025-03-06T12:00:00',
      'amendment 2025-03-06T12:00:00 2025-03-15T12:00:00',
    ]);
    seen.length = 0;
    await sync({ startDate: '2025-01-01', lookbackDays: 0, timezone: 'Europe/London', overlapHours: 48 }, new Date('2025-03-16T12:00:00Z'));
    // Second run: from the last cursor minus the 48 h overlap.
    expect(seen.map((q) => `${q.dateType} ${q.startDate} ${q.endDate}`)).toEqual(['transaction 2025-03-13T12:00:00 2025-03-16T12:00:00']);
  });

  it('waits and retries on 429 request.limit.exceeded, and maps JSON errors without retrying 4xx', async () => {
    nock(BASE)
      .get('/advertisers/1001/transactions/')
      .query(true)
      .reply(429, { error: 'request.limit.exceeded', description: 'Too Many Requests' })
      .get('/advertisers/1001/transactions/')
      .query(true)
      .reply(200, []);
    const started = Date.now();
    const r1 = await sync({ startDate: '2025-03-10', lookbackDays: 0, limitWaitMs: 150 }, new Date('2025-03-15T00:00:00Z'));
    expect(r1.status).toBe('succeeded');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    const scope = nock(BASE).get('/advertisers/1001/transactions/').query(true).reply(403, { error: 'forbidden', description: 'Forbidden (403 FORBIDDEN)' });
    const extra = nock(BASE).get('/advertisers/1001/transactions/').query(true).reply(200, []);
    await t.db('checkpoints').del();
    const r2 = await sync({ startDate: '2025-03-10', lookbackDays: 0 }, new Date('2025-03-15T00:00:00Z'));
    expect(r2.status).toBe('failed');
    expect(r2.error).toMatch(/HTTP 403 — forbidden: Forbidden \(403 FORBIDDEN\) — the token's user cannot access this advertiser/);
    expect(scope.isDone()).toBe(true);
    expect(extra.isDone()).toBe(false);
  });

  it('throttles itself to the configured calls per interval', async () => {
    const at: number[] = [];
    nock(BASE)
      .get('/advertisers/1001/transactions/')
      .query(true)
      .times(10)
      .reply(() => {
        at.push(Date.now());
        return [200, []];
      });
    // 4 windows of 1 day, at most 2 calls per 200 ms: the 3rd and 4th calls cannot leave before
    // 200 ms after the sync started. (Measured from the start, not from the first reply: the first
    // reply itself may land some ms after its call was released, which made a gap check flaky.)
    const t0 = Date.now();
    const r = await sync({ startDate: '2025-03-11', windowDays: 1, lookbackDays: 0 }, new Date('2025-03-15T00:00:00Z'), { rateLimit: { requests: 2, intervalMs: 200 } });
    expect(r.status).toBe('succeeded');
    expect(at).toHaveLength(4);
    expect(at[2]! - t0).toBeGreaterThanOrEqual(195);
  });
});

describe('Awin mapping helpers', () => {
  it('converts amounts, statuses and zone-less times', () => {
    expect(awinToMinor(12.34, 'USD')).toBe(1234);
    expect(awinToMinor('0.1', 'EUR')).toBe(10);
    expect(awinToMinor(1500, 'JPY')).toBe(1500);
    expect(awinStatus({ commissionStatus: 'approved', paidToPublisher: true })).toBe('paid');
    expect(awinStatus({ commissionStatus: 'Declined', paidToPublisher: false })).toBe('declined');
    // 10:00 in Berlin (CET, UTC+1) = 09:00Z.
    expect(parseAwinTime('2025-01-15T10:00:00', 'Europe/Berlin')?.toISOString()).toBe('2025-01-15T09:00:00.000Z');
    expect(parseAwinTime('2025-01-15T10:00:00Z', 'Europe/Berlin')?.toISOString()).toBe('2025-01-15T10:00:00.000Z');
  });

  it('names the option path in configuration errors', () => {
    const { connection } = awinConfig(BASE, { windowDays: 45, timezone: 'Mars/Olympus' });
    expect(() => parseAwinOptions(connection)).toThrow(/connections\.awin\.options\.timezone[\s\S]*connections\.awin\.options\.windowDays/);
  });
});
