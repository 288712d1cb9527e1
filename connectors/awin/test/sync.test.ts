import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useTestDb } from '../../../test/helpers/db.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import type { PushAction, SyncContext } from '../../../src/sync/types.ts';
import { connector } from '../index.ts';
import { connector as sasConnector } from '../../shareasale/index.ts';
import { fakeAwinTransaction, startFakeAwin, type FakeAwin } from '../fake-server.ts';
import { fakeSasRow, startFakeShareASale } from '../../shareasale/fake-server.ts';
import { SAS_ENV, sasConfig } from '../../shareasale/test/helpers.ts';
import { AWIN_ENV, awinConfig, silentLog } from './helpers.ts';

const t = useTestDb();
let fake: FakeAwin;
beforeEach(async () => {
  fake = await startFakeAwin({ jobPollsUntilDone: 2 });
});
afterEach(async () => {
  await fake.close();
});

const DAY = 86_400_000;
const ago = (days: number): Date => new Date(Date.now() - days * DAY);
const isoDay = (d: Date): string => d.toISOString().slice(0, 10);
const count = async (table: string, where: Record<string, unknown> = {}): Promise<number> => Number((await t.db(table).where(where).count<{ n: string }[]>({ n: '*' }))[0]!.n);

function ctxFor(options: Record<string, unknown> = {}): SyncContext {
  const { config, connection } = awinConfig(fake.url, { startDate: isoDay(ago(50)), lookbackDays: 30, ...options });
  return { db: t.db, config, connection, log: silentLog, now: new Date(), runId: 0, env: AWIN_ENV };
}
async function sync(options: Record<string, unknown> = {}) {
  const ctx = ctxFor(options);
  connector.validateOptions!(ctx.connection);
  return runStreams({ db: t.db, config: ctx.config, connection: ctx.connection, streams: connector.streams(ctx), log: silentLog, env: AWIN_ENV });
}

function fill(): void {
  fake.store.transactions.push(
    fakeAwinTransaction({ id: 9001, publisherId: 77, transactionDate: ago(40), sale: '100.00', commission: '40.00', orderRef: 'in_1', clickRef: 'cus_A', status: 'approved', validationDate: ago(35) }),
    fakeAwinTransaction({ id: 9002, publisherId: 77, transactionDate: ago(10), sale: '49.99', commission: '20.00', orderRef: 'in_2' }),
    fakeAwinTransaction({ id: 9003, publisherId: 88, transactionDate: ago(5), sale: '10.00', commission: '4.00', orderRef: 'in_3', currency: 'EUR' }),
    fakeAwinTransaction({ id: 9004, publisherId: 88, transactionDate: ago(2), sale: '10.00', commission: '4.00', orderRef: 'in_4' }),
  );
}

describe('Awin sync against the fake server', () => {
  it('a run whose clock is behind the last checkpoint reads a short window instead of failing', async () => {
    fill();
    expect((await sync()).status).toBe('succeeded');
    // Same stream, now ten days earlier (run --now in the past, a simulated present).
    const ctx = { ...ctxFor(), now: ago(10) };
    const r = await runStreams({ db: t.db, config: ctx.config, connection: ctx.connection, streams: connector.streams(ctx), log: silentLog, env: AWIN_ENV, now: ctx.now });
    expect(r.status).toBe('succeeded');
    expect(fake.requests.every((q) => String(q.query.startDate) <= String(q.query.endDate))).toBe(true);
    expect(await count('network_commissions', { connection: 'awin' })).toBe(4);
  });

  it('maps transactions (parts, statuses, order refs, click refs) and is idempotent', async () => {
    fill();
    const r1 = await sync();
    expect(r1.status).toBe('succeeded');
    expect(fake.requests.every((r) => r.query.timezone === 'UTC')).toBe(true);
    expect(await count('network_commissions', { connection: 'awin' })).toBe(4);
    const row = await t.db('network_commissions').where({ external_id: '9001' }).first();
    expect(row).toMatchObject({ network: 'awin', amount_minor: 4000, sale_amount_minor: 10000, currency: 'USD', status: 'approved', raw_status: 'approved', order_ref: 'in_1', partner_external_id: '77' });
    expect(row.metadata.clickRefs).toEqual({ clickRef: 'cus_A' });
    expect(row.metadata.transactionParts).toEqual([{ commissionGroupCode: 'DEFAULT', commissionGroupName: 'Default', amountMinor: 10000, commissionAmountMinor: 4000 }]);
    expect((await t.db('network_commissions').where({ external_id: '9003' }).first()).currency).toBe('EUR');
    expect(await count('partner_accounts', { connection: 'awin' })).toBe(2);
    const before = { raw: await count('raw_records'), hist: await count('network_commission_status_history') };
    const r2 = await sync();
    expect(r2.status).toBe('succeeded');
    expect(await count('network_commissions')).toBe(4);
    expect(await count('raw_records')).toBe(before.raw);
    expect(await count('network_commission_status_history')).toBe(before.hist);
  });

  it('sees later validations through the look-back pass', async () => {
    fill();
    await sync();
    // 9001's sale is 40 days old: outside the next run's transaction-date pass (cursor − 48 h).
    const tx = fake.store.transactions.find((x) => x.id === 9002)!;
    tx.commissionStatus = 'declined';
    tx.declineReason = 'refund';
    tx.validationDate = new Date().toISOString().slice(0, 19);
    const old = fake.store.transactions.find((x) => x.id === 9001)!;
    old.paidToPublisher = true;
    old.validationDate = new Date().toISOString().slice(0, 19);
    const n = fake.requests.length;
    await sync();
    const passes = fake.requests.slice(n).map((r) => r.query.dateType);
    expect(passes).toContain('validation');
    expect(passes).toContain('amendment');
    const st = Object.fromEntries((await t.db('network_commissions').select('external_id', 'status')).map((x: { external_id: string; status: string }) => [x.external_id, x.status]));
    expect(st).toMatchObject({ '9001': 'paid', '9002': 'declined' });
  });
});

describe('Awin batch validation push', () => {
  const act = (key: string, type: string, payload: Record<string, unknown>): PushAction => ({ network: 'awin', type, idempotencyKey: key, payload: payload as never, justification: {} });

  it('sends one batch, polls the job, reports per-transaction failures, and never re-sends on a re-run', async () => {
    fill();
    await sync();
    const ctx = ctxFor();
    const actions = [
      act('k1', 'approve', { transactionId: '9002' }),
      act('k2', 'decline', { transactionId: 9003, reason: 'self-referral' }),
      act('k3', 'approve', { transactionId: '424242' }), // unknown → 404 in the job
      act('k4', 'approve', { transactionId: '9001' }), // already approved → no-op success
      // Commission-only amend (the planner's shape) of a pending sale: $4.00 → $3.00 on a $10.00 sale.
      act('k5', 'amend', { transactionId: '9004', commissionAmountMinor: 300, currency: 'USD', reason: 'commission per program rules' }),
      act('k6', 'amend', { transactionId: '9004', currency: 'USD', saleAmountMinor: 1000, parts: [{ commissionGroupCode: 'DEFAULT', amountMinor: 900 }], reason: 'x' }), // parts ≠ sale
      act('k7', 'decline', { transactionId: '9004' }), // no reason
    ];
    const report = await connector.pushBatch(ctx, actions);
    const posts = fake.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.path).toBe('/advertisers/1001/transactions/batch');
    expect((posts[0]!.body as unknown[]).length).toBe(5);
    expect(report.jobs).toHaveLength(1);
    const st = (k: string) => report.results.get(k)!;
    expect(st('k1').status).toBe('confirmed');
    expect(st('k2').status).toBe('confirmed');
    expect(st('k3')).toMatchObject({ status: 'failed' });
    expect(st('k3').error).toMatch(/\[404 NOT_FOUND\]/);
    expect(st('k4').status).toBe('confirmed');
    expect(st('k5').status).toBe('confirmed');
    expect(st('k6').status).toBe('failed');
    expect(st('k6').error).toMatch(/parts sum to 900 but saleAmountMinor is 1000/);
    expect(st('k7').error).toMatch(/decline needs a reason/);
    expect(report.failed).toBe(3);
    // The amend item carries the whole sale in the transaction's group with the new commission.
    expect((posts[0]!.body as Array<{ action: string; transaction: Record<string, unknown> }>).find((i) => i.action === 'amend')!.transaction).toEqual({
      transactionId: 9004, amendReason: 'commission per program rules', currency: 'USD', saleAmount: 10, transactionParts: [{ amount: 10, commissionGroupCode: 'DEFAULT', commissionAmount: 3 }],
    });
    const jobsRow = await t.db('push_jobs').where({ idempotency_key: 'k3' }).first();
    expect(jobsRow).toMatchObject({ status: 'failed', job_id: report.jobs[0] });

    // Re-run with the same actions: stored outcomes, no new POST.
    const again = await connector.pushBatch(ctx, actions);
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(again.results.get('k1')!.status).toBe('confirmed');
    expect(again.results.get('k3')!.status).toBe('failed');

    await sync();
    const rows = Object.fromEntries((await t.db('network_commissions').select('external_id', 'status', 'amount_minor')).map((x: { external_id: string; status: string; amount_minor: number }) => [x.external_id, [x.status, x.amount_minor]]));
    expect(rows).toMatchObject({ '9002': ['approved', 2000], '9003': ['declined', 400], '9004': ['pending', 300] });
  });

  it('records the jobId before polling: a push interrupted while polling polls the same job next time', async () => {
    fill();
    fake.store.jobPollsUntilDone = 1000;
    const ctx = ctxFor({ push: { pollIntervalMs: 5, pollTimeoutMs: 30 } });
    const first = await connector.push!(ctx, act('a1', 'approve', { transactionId: '9002' }));
    expect(first.status).toBe('sent');
    const jobId = first.externalId!;
    expect((await t.db('push_jobs').where({ idempotency_key: 'a1' }).first()).job_id).toBe(jobId);
    fake.store.jobPollsUntilDone = 0;
    fake.store.jobs[0]!.pollsLeft = 0;
    expect(await connector.pushStatus(ctx, act('a1', 'approve', { transactionId: '9002' }))).toMatchObject({ status: 'confirmed', externalId: jobId });
    const second = await connector.push!(ctx, act('a1', 'approve', { transactionId: '9002' }));
    expect(second.status).toBe('confirmed');
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('after a crash between send and reply, checks the transaction before re-sending', async () => {
    fill();
    const ctx = ctxFor();
    // The batch reached Awin but the reply was lost (connection reset after processing is simulated by
    // applying it and leaving the row 'submitting').
    fake.store.transactions.find((x) => x.id === 9002)!.commissionStatus = 'approved';
    await t.db('push_jobs').insert({ connection: 'awin', idempotency_key: 'c1', network: 'awin', action_type: 'approve', item: JSON.stringify({ action: 'approve', transaction: { transactionId: 9002 } }), status: 'submitting' });
    const r = await connector.push!(ctx, act('c1', 'approve', { transactionId: '9002' }));
    expect(r.status).toBe('confirmed');
    expect(fake.requests.filter((x) => x.method === 'POST')).toHaveLength(0);
    expect(fake.requests.some((x) => x.query.ids === '9002')).toBe(true);
  });
});

describe('ShareASale → Awin identity map', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'awin-id-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('puts a ShareASale affiliate\'s history and its Awin publisher under one partner (CSV or config)', async () => {
    fill();
    const sas = await startFakeShareASale();
    try {
      sas.store.transactions.push(fakeSasRow({ transId: 1, userId: 555, transDate: ago(3), amount: '10.00', commission: '4.00', orderNumber: 'old_1' }));
      sas.store.transactions.push(fakeSasRow({ transId: 2, userId: 666, transDate: ago(3), amount: '10.00', commission: '4.00', orderNumber: 'old_2' }));
      const s = sasConfig(sas.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } });
      const sctx: SyncContext = { db: t.db, config: s.config, connection: s.connection, log: silentLog, now: new Date(), runId: 0, env: SAS_ENV };
      // ShareASale first: its accounts get their own partners…
      expect((await runStreams({ db: t.db, config: s.config, connection: s.connection, streams: sasConnector.streams(sctx), log: silentLog, env: SAS_ENV })).status).toBe('succeeded');
      expect(await count('partners')).toBe(2);
      const file = path.join(dir, 'map.csv');
      writeFileSync(file, 'ShareASale ID,Awin ID,kind\n555,77,partner\n12345,1001,advertiser\n');
      // …then Awin with the map: 555 joins publisher 77's partner; 666 stays on its own.
      expect((await sync({ identityMapFile: file, identityMap: [{ shareasaleId: 666, awinId: 88 }] })).status).toBe('succeeded');
      const partnerOf = async (conn: string, ext: string) => (await t.db('partner_accounts').where({ connection: conn, external_id: ext }).first()).partner_id as number;
      expect(await partnerOf('shareasale', '555')).toBe(await partnerOf('awin', '77'));
      expect(await partnerOf('shareasale', '666')).toBe(await partnerOf('awin', '88'));
      expect(await t.db('identity_links').orderBy('from_ref').select('kind', 'from_ref', 'to_ref')).toEqual([
        { kind: 'advertiser', from_ref: 'shareasale:12345', to_ref: 'awin:1001' },
        { kind: 'partner', from_ref: 'shareasale:555', to_ref: 'awin:77' },
        { kind: 'partner', from_ref: 'shareasale:666', to_ref: 'awin:88' },
      ]);
      // Re-running changes nothing.
      await sync({ identityMapFile: file, identityMap: [{ shareasaleId: 666, awinId: 88 }] });
      expect(await partnerOf('shareasale', '555')).toBe(await partnerOf('awin', '77'));
    } finally {
      await sas.close();
    }
  });
});
