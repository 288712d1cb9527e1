// The look-back cadence on transactiondetail (src/sync/lookback.ts): a sweep re-reads the whole
// look-back window when due; runs in between read only the tail, in whole America/Chicago days, and
// a completed tail is still a complete window for deletions inside it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import type { SyncContext } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';
import { fakeSasRow, startFakeShareASale, type FakeShareASale } from '../fake-server.ts';
import { SAS_ENV, sasConfig, silentLog } from './helpers.ts';

const t = useTestDb();
let fake: FakeShareASale;
beforeEach(async () => {
  fake = await startFakeShareASale({ pageSize: 3 });
});
afterEach(async () => {
  await fake.close();
});

const H = 3_600_000;
const DAY = 24 * H;
const NOW = Date.parse('2025-06-10T18:00:00Z'); // 13:00 in Chicago (CDT)
const OPTS = { pageSize: 3, startDate: '2025-05-01', lookbackDays: 30, credits: { checkTokenCount: false, monthlyQuota: 1000, reserve: 2 } };

const row = (transId: number, at: number) => fakeSasRow({ transId, userId: 500, transDate: new Date(at), amount: '100.00', commission: '10.00', orderNumber: `in_${transId}` });
async function sync(at: number, options: Record<string, unknown> = OPTS, top: Record<string, unknown> = {}) {
  const cfg = sasConfig(fake.url, options, 'shareasale', top);
  const now = new Date(at);
  const ctx: SyncContext = { db: t.db, config: cfg.config, connection: cfg.connection, log: silentLog, now, runId: 0, env: SAS_ENV };
  connector.validateOptions!(cfg.connection);
  return runStreams({ db: t.db, config: cfg.config, connection: cfg.connection, streams: connector.streams(ctx), log: silentLog, env: SAS_ENV, now });
}
/** [datestart, dateend, page] of the transactiondetail requests since `from`. */
const detail = (from = 0) => fake.requests.slice(from).filter((r) => r.query.action === 'transactiondetail').map((r) => [r.query.datestart, r.query.dateend, r.query.page]);
const state = async () => (await t.db('checkpoints').where({ connection: 'shareasale', stream: 'transactiondetail' }).first()).state;
const statuses = async () => Object.fromEntries((await t.db('network_commissions').select('external_id', 'status')).map((x: { external_id: string; status: string }) => [x.external_id, x.status]));

describe('ShareASale look-back cadence (sweep every 24 h, 48 h tail)', () => {
  it('between sweeps only the tail days are requested; the tail catches a new sale and a deletion inside it; the due sweep the old changes', async () => {
    fake.store.transactions.push(row(1001, NOW - 20 * DAY), row(1002, NOW - 10 * DAY), row(1003, NOW - DAY));
    expect((await sync(NOW)).status).toBe('succeeded');
    expect(detail()[0]).toEqual(['05/01/2025', '05/31/2025', '1']); // first run: from startDate
    expect(await state()).toEqual({ v: 1, syncedThrough: '2025-06-10', lastSweepAt: NOW, pass: null });

    // 6 h later (19:00 the same Chicago day): 1003 vanished, 1004 is new; 1001 voided and 1002
    // vanished too, but they are older than the tail.
    fake.store.transactions.splice(0, fake.store.transactions.length, { ...row(1001, NOW - 20 * DAY), Voided: '06/10/2025' }, row(1004, NOW + 5 * H));
    let n = fake.requests.length;
    const r2 = await sync(NOW + 6 * H);
    expect(r2.status).toBe('succeeded');
    // The last synced day starts 06/10 00:00; 48 h before is 06/08 00:00 → whole days 06/08..06/10.
    expect(detail(n)).toEqual([['06/08/2025', '06/10/2025', '1']]);
    expect(r2.streams.transactiondetail!.deleted).toBe(1);
    expect(await statuses()).toEqual({ '1001': 'pending', '1002': 'pending', '1003': 'deleted', '1004': 'pending' });
    expect(await state()).toEqual({ v: 1, syncedThrough: '2025-06-10', lastSweepAt: NOW, pass: null });

    // 24 h after the last sweep: the whole look-back from the last synced day − 30 days.
    n = fake.requests.length;
    const r3 = await sync(NOW + DAY);
    expect(r3.status).toBe('succeeded');
    expect(detail(n)).toEqual([['05/11/2025', '06/10/2025', '1'], ['06/11/2025', '06/11/2025', '1']]);
    expect(await statuses()).toEqual({ '1001': 'declined', '1002': 'deleted', '1003': 'deleted', '1004': 'pending' });
    expect(await state()).toEqual({ v: 1, syncedThrough: '2025-06-11', lastSweepAt: NOW + DAY, pass: null });
  });

  it('tailHours 0 re-reads only the last synced day; everyHours 0 sweeps every run', async () => {
    fake.store.transactions.push(row(1001, NOW - 20 * DAY));
    expect((await sync(NOW)).status).toBe('succeeded');
    let n = fake.requests.length;
    expect((await sync(NOW + H, OPTS, { sync: { lookback: { tailHours: 0 } } })).status).toBe('succeeded');
    expect(detail(n)).toEqual([['06/10/2025', '06/10/2025', '1']]);
    n = fake.requests.length;
    expect((await sync(NOW + 2 * H, OPTS, { sync: { lookback: { everyHours: 0 } } })).status).toBe('succeeded');
    expect(detail(n)[0]).toEqual(['05/11/2025', '06/10/2025', '1']);
  });

  it('a tail run stopped between pages resumes at the same page, still a tail; the sweep follows', async () => {
    fake.store.transactions.push(row(2001, NOW - 20 * DAY), row(2002, NOW - 10 * H), row(2003, NOW - 20 * H), row(2004, NOW - 30 * H), row(2005, NOW - 40 * H));
    expect((await sync(NOW)).status).toBe('succeeded');
    const used = Number((await t.db('api_usage').where({ connection: 'shareasale' }).first()).used);
    // 2005 vanishes, 2006 is new; credits for exactly one request (+ the reserve of 2).
    fake.store.transactions.splice(4, 1);
    fake.store.transactions.push(row(2006, NOW + 30 * 60_000));
    let n = fake.requests.length;
    const r1 = await sync(NOW + H, { ...OPTS, credits: { ...OPTS.credits, monthlyQuota: used + 3 } });
    expect(r1.status).toBe('stopped');
    expect(detail(n)).toEqual([['06/08/2025', '06/10/2025', '1']]);
    expect(await state()).toMatchObject({ syncedThrough: '2025-06-10', lastSweepAt: NOW, pass: { from: '2025-06-08', page: 2, sweepAt: null } });

    // 30 h later a sweep is due, but the stored tail pass finishes first (page 2, same days).
    n = fake.requests.length;
    const r2 = await sync(NOW + 30 * H);
    expect(r2.status).toBe('succeeded');
    expect(detail(n)).toEqual([['06/08/2025', '06/10/2025', '2']]);
    expect(r2.streams.transactiondetail!.deleted).toBe(1);
    expect(await statuses()).toMatchObject({ '2005': 'deleted', '2006': 'pending' });
    expect(await state()).toEqual({ v: 1, syncedThrough: '2025-06-10', lastSweepAt: NOW, pass: null });
    n = fake.requests.length;
    expect((await sync(NOW + 30 * H)).status).toBe('succeeded');
    expect(detail(n)[0]).toEqual(['05/11/2025', '06/10/2025', '1']);
    expect((await state()).lastSweepAt).toBe(NOW + 30 * H);
  });

  it('a tail does not re-write unchanged sales, except one whose billing document arrived since (R1 attribution) or whose lock date passed; the sweep re-writes all', async () => {
    // 3004's lock date passes between the runs: same payload, but it becomes approved.
    fake.store.transactions.push(row(3001, NOW - 10 * H), row(3002, NOW - 20 * H), row(3003, NOW - 30 * H), { ...row(3004, NOW - 5 * H), 'Lock Date': '06/10/2025 13:30:00' });
    expect((await sync(NOW)).status).toBe('succeeded');
    const attributions = async () => (await t.db('attributions').where({ connection: 'shareasale' }).select('source_ref')).map((a: { source_ref: string }) => a.source_ref);
    expect(await attributions()).toEqual([]);
    // in_3002 reaches billing after its sale was read; 3003 changes (locked).
    const [cust] = await t.db('customers').insert({ customer_key: 'acme' }).returning<{ id: number }[]>('id');
    await t.db('billing_events').insert({ connection: 'stripe', billing_system: 'stripe', kind: 'payment', external_id: 'ch_3002', document_id: 'in_3002', customer_id: cust!.id, occurred_at: new Date(NOW - 21 * H), amount_minor: 10_000, currency: 'USD' });
    fake.store.transactions[2] = { ...fake.store.transactions[2]!, 'Lock Date': '06/09/2025' };
    const changeSeq = async () => Object.fromEntries((await t.db('network_commissions').select('external_id', 'change_seq')).map((x: { external_id: string; change_seq: string }) => [x.external_id, String(x.change_seq)]));
    const before = await changeSeq();
    const r = await sync(NOW + H);
    expect(r.status).toBe('succeeded');
    expect(r.streams.transactiondetail).toMatchObject({ records: 4, written: 3, unchanged: 1 });
    expect(await attributions()).toEqual([`sale-customer:${cust!.id}`]);
    expect(await statuses()).toEqual({ '3001': 'pending', '3002': 'pending', '3003': 'approved', '3004': 'approved' });
    const after = await changeSeq();
    expect(after['3001']).toBe(before['3001']);
    expect(after['3003']).not.toBe(before['3003']);
    // Nothing new in the next tail: nothing re-written; the due sweep re-maps every record.
    expect((await sync(NOW + 2 * H)).streams.transactiondetail).toMatchObject({ records: 4, written: 0, unchanged: 4 });
    expect((await sync(NOW + 2 * H, OPTS, { sync: { lookback: { everyHours: 0 } } })).streams.transactiondetail).toMatchObject({ records: 4, written: 4, unchanged: 0 });
  });

  it('a checkpoint from before the cadence (no lastSweepAt) sweeps', async () => {
    fake.store.transactions.push(row(1001, NOW - 20 * DAY), row(1002, NOW - DAY));
    expect((await sync(NOW)).status).toBe('succeeded');
    await t.db('checkpoints').where({ connection: 'shareasale' }).update({ state: JSON.stringify({ v: 1, syncedThrough: '2025-06-10', pass: null }) });
    fake.store.transactions.splice(0, 1); // 1001 vanishes: only a sweep sees it
    const n = fake.requests.length;
    const r = await sync(NOW + H);
    expect(r.status).toBe('succeeded');
    expect(detail(n)[0]).toEqual(['05/11/2025', '06/10/2025', '1']);
    expect(r.streams.transactiondetail!.deleted).toBe(1);
    expect(await state()).toEqual({ v: 1, syncedThrough: '2025-06-10', lastSweepAt: NOW + H, pass: null });
  });
});
