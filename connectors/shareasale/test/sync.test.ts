import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { runStreams } from '../../../src/sync/engine.ts';
import type { SyncContext } from '../../../src/sync/types.ts';
import type { Config, ConnectionConfig } from '../../../src/config/schema.ts';
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

const DAY = 86_400_000;
const SWEEP_EVERY_RUN = { sync: { lookback: { everyHours: 0 } } };
const ago = (days: number, hours = 0): Date => new Date(Date.now() - days * DAY - hours * 3_600_000);
const isoDay = (d: Date): string => d.toISOString().slice(0, 10);

function fill(n: number, startId = 1001): void {
  for (let i = 0; i < n; i++) {
    fake.store.transactions.push(
      fakeSasRow({ transId: startId + i, userId: 500 + (i % 3), transDate: ago(5, i), amount: '100.00', commission: `${10 + i}.25`, orderNumber: `in_${startId + i}`, organization: `Aff ${500 + (i % 3)}` }),
    );
  }
}

async function sync(cfg: { config: Config; connection: ConnectionConfig }, now = new Date()) {
  const ctx: SyncContext = { db: t.db, config: cfg.config, connection: cfg.connection, log: silentLog, now, runId: 0, env: SAS_ENV };
  connector.validateOptions!(cfg.connection);
  return runStreams({ db: t.db, config: cfg.config, connection: cfg.connection, streams: connector.streams(ctx), log: silentLog, env: SAS_ENV, now });
}

const count = async (table: string, where: Record<string, unknown> = {}): Promise<number> =>
  Number((await t.db(table).where(where).count<{ n: string }[]>({ n: '*' }))[0]!.n);

const reqs = (action: string) => fake.requests.filter((r) => r.query.action === action);

describe('ShareASale transactiondetail sync', () => {
  it('pages through ≤pageSize rows, maps commissions and partner accounts, and is idempotent', async () => {
    fill(7);
    const cfg = sasConfig(fake.url, { pageSize: 3, startDate: isoDay(ago(10)), credits: { checkTokenCount: false } });
    const r1 = await sync(cfg);
    expect(r1.status).toBe('succeeded');
    // 7 rows in pages of 3: 3 + 3 + 1.
    expect(reqs('transactiondetail').map((r) => r.query.page)).toEqual(['1', '2', '3']);
    expect(reqs('transactiondetail')[0]!.query.datestart).toMatch(/^\d{2}\/\d{2}\/\d{4}$/);
    expect(await count('network_commissions', { connection: 'shareasale' })).toBe(7);
    expect(await count('partner_accounts', { connection: 'shareasale' })).toBe(3);
    const row = await t.db('network_commissions').where({ external_id: '1002' }).first();
    expect(row).toMatchObject({ network: 'shareasale', amount_minor: 1125, currency: 'USD', sale_amount_minor: 10000, status: 'pending', order_ref: 'in_1002' });
    expect(row.metadata.orderDate).toMatch(/^\d{2}\/\d{2}\/\d{4}$/);
    const partner = await t.db('partners').join('partner_accounts', 'partners.id', 'partner_accounts.partner_id').where('partner_accounts.external_id', '501').first('partners.partner_key', 'partners.name');
    expect(partner).toEqual({ partner_key: 'shareasale:501', name: 'Aff 501' });

    const before = { raw: await count('raw_records'), hist: await count('network_commission_status_history') };
    const r2 = await sync(cfg);
    expect(r2.status).toBe('succeeded');
    expect(await count('network_commissions')).toBe(7);
    expect(await count('partners')).toBe(3);
    expect(await count('raw_records')).toBe(before.raw);
    expect(await count('network_commission_status_history')).toBe(before.hist);
  });

  it('reads CSV format too, and a sweep re-reads the look-back window so voids and vanished rows show up', async () => {
    fill(4);
    // Sweep on every run (everyHours 0): the rows are 5 days old, outside a 48 h tail.
    const cfg = sasConfig(fake.url, { format: 'csv', pageSize: 3, startDate: isoDay(ago(10)), lookbackDays: 30, credits: { checkTokenCount: false } }, 'shareasale', SWEEP_EVERY_RUN);
    expect((await sync(cfg)).status).toBe('succeeded');
    expect(reqs('transactiondetail')[0]!.query.format).toBe('csv');
    fake.store.transactions[0]!.Voided = '01/02/2025';
    fake.store.transactions.splice(1, 1); // 1002 vanishes
    const r = await sync(cfg);
    expect(r.status).toBe('succeeded');
    expect(r.streams.transactiondetail!.deleted).toBe(1);
    const st = Object.fromEntries((await t.db('network_commissions').select('external_id', 'status')).map((x: { external_id: string; status: string }) => [x.external_id, x.status]));
    expect(st).toEqual({ '1001': 'declined', '1002': 'deleted', '1003': 'pending', '1004': 'pending' });
  });

  it('stops cleanly before the credit budget is exhausted and resumes at the same page', async () => {
    fill(30); // 10 full pages of 3 + a final empty page = 11 requests
    fake.store.credits.used = 0;
    const opts = { pageSize: 3, startDate: isoDay(ago(10)), windowDays: 31, credits: { monthlyQuota: 10, reserve: 2 } };
    const r1 = await sync(sasConfig(fake.url, opts));
    // Budget 10 − reserve 2 = 8 credits: apitokencount + 7 pages.
    expect(r1.status).toBe('stopped');
    expect(r1.error).toMatch(/credit budget: 8 of 10/);
    expect(reqs('apitokencount')).toHaveLength(1);
    expect(reqs('transactiondetail')).toHaveLength(7);
    expect(await count('network_commissions')).toBe(21);
    const usage = await t.db('api_usage').where({ connection: 'shareasale' }).first();
    expect(usage.used).toBe(8);
    const cp = (await t.db('checkpoints').where({ connection: 'shareasale' }).first()).state;
    expect(cp.pass.page).toBe(8);

    // More credits (e.g. a larger plan): the run resumes at page 8 without re-reading pages 1–7.
    const r2 = await sync(sasConfig(fake.url, { ...opts, credits: { monthlyQuota: 40, reserve: 2 } }));
    expect(r2.status).toBe('succeeded');
    expect(reqs('transactiondetail').slice(7).map((r) => r.query.page)).toEqual(['8', '9', '10', '11']);
    expect(reqs('apitokencount')).toHaveLength(1);
    expect(await count('network_commissions')).toBe(30);
    expect((await t.db('api_usage').where({ connection: 'shareasale' }).first()).used).toBe(12);
  });

  it('learns usage from apitokencount and stops at once when it is already spent', async () => {
    fill(2);
    fake.store.credits.used = 179;
    const r = await sync(sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { monthlyQuota: 200, reserve: 20 } }));
    expect(r.status).toBe('stopped');
    expect(reqs('transactiondetail')).toHaveLength(0);
    expect((await t.db('api_usage').first()).used).toBe(180);
  });

  it('turns the server\'s credit error into a clean stop, and 4002 into a clear unretried failure', async () => {
    fill(2);
    fake.store.credits = { used: 200, limit: 200 };
    const r1 = await sync(sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false, monthlyQuota: 1000 } }));
    expect(r1.status).toBe('stopped');
    expect(r1.error).toMatch(/credits are exhausted/);

    fake.store.credits = { used: 0, limit: 200 };
    fake.store.allowedIps = ['198.51.100.7'];
    const n = fake.requests.length;
    const r2 = await sync(sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } }));
    expect(r2.status).toBe('failed');
    expect(r2.error).toMatch(/IP address \(127\.0\.0\.1\) is not registered/);
    expect(fake.requests.length - n).toBe(1);
  });

  it('quarantines a malformed row with its location and keeps the rest', async () => {
    fill(2);
    fake.setFaults([{ kind: 'badrow', action: 'transactiondetail' }]);
    const r = await sync(sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } }));
    expect(r.status).toBe('succeeded');
    expect(await count('network_commissions')).toBe(2);
    const q = await t.db('quarantine').first();
    expect(q.location).toMatch(/transactiondetail .* page 1 line 4/);
    expect(q.error).toMatch(/3 fields/);
  });

  it('retries a 500 and a reset connection', async () => {
    fill(2);
    fake.setFaults([{ kind: 'http500', action: 'transactiondetail' }, { kind: 'reset', action: 'transactiondetail' }]);
    const r = await sync(sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } }));
    expect(r.status).toBe('succeeded');
    expect(await count('network_commissions')).toBe(2);
    expect((await t.db('api_usage').first()).used).toBe(3);
  });
});

describe('ShareASale push', () => {
  async function push(type: string, payload: Record<string, unknown>) {
    const cfg = sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } });
    const ctx: SyncContext = { db: t.db, config: cfg.config, connection: cfg.connection, log: silentLog, now: new Date(), runId: 0, env: SAS_ENV };
    return connector.push!(ctx, { network: 'shareasale', type, idempotencyKey: `k-${type}`, payload: payload as never, justification: {} });
  }

  it('voids and edits by order number + order date; the next sweep sees it', async () => {
    fill(3);
    // The sales are 5 days old: only a sweep re-reads them (everyHours 0 = every run).
    const cfg = sasConfig(fake.url, { startDate: isoDay(ago(10)), credits: { checkTokenCount: false } }, 'shareasale', SWEEP_EVERY_RUN);
    await sync(cfg);
    const row = await t.db('network_commissions').where({ external_id: '1001' }).first();
    const v = await push('void', { orderNumber: 'in_1001', orderDate: row.metadata.orderDate, reason: 'refunded in full' });
    expect(v.status).toBe('sent');
    expect(fake.store.applied[0]).toMatchObject({ action: 'void', orderNumber: 'in_1001' });
    const last = fake.requests.at(-1)!;
    expect(last.query).toMatchObject({ action: 'void', ordernumber: 'in_1001', date: row.metadata.orderDate, reason: 'refunded in full' });

    const row2 = await t.db('network_commissions').where({ external_id: '1002' }).first();
    // 40% of $80.00 = $32.00 → newspecific 32.00, newamount 80.00.
    const e = await push('edit', { orderNumber: 'in_1002', orderDate: row2.metadata.orderDate, newAmountMinor: 8000, newCommissionMinor: 3200, comment: 'partial refund' });
    expect(e.status).toBe('sent');
    expect(fake.requests.at(-1)!.query).toMatchObject({ action: 'edit', newamount: '80.00', newspecific: '32.00', newcomment: 'partial refund' });

    await sync(cfg);
    const after = await t.db('network_commissions').whereIn('external_id', ['1001', '1002']).orderBy('external_id');
    expect(after.map((a: { status: string; amount_minor: number; sale_amount_minor: number }) => [a.status, a.amount_minor, a.sale_amount_minor])).toEqual([
      ['declined', 1025, 10000],
      ['pending', 3200, 8000],
    ]);
  });

  it('reports "Transaction Not Found" and "Multiple Transactions Found" as failures without retrying', async () => {
    fill(1);
    fake.store.transactions.push(fakeSasRow({ transId: 2001, userId: 9, transDate: ago(5, 0), amount: '1.00', commission: '0.40', orderNumber: 'dup' }));
    fake.store.transactions.push(fakeSasRow({ transId: 2002, userId: 9, transDate: ago(5, 0), amount: '1.00', commission: '0.40', orderNumber: 'dup' }));
    const n = fake.requests.length;
    const nf = await push('void', { orderNumber: 'nope', orderDate: isoDay(ago(5)), reason: 'x' });
    expect(nf.status).toBe('failed');
    expect(nf.error).toMatch(/Transaction Not Found/);
    const orderDate = fake.store.transactions[1]!['Trans Date']!.slice(0, 10);
    const amb = await push('edit', { orderNumber: 'dup', orderDate, newCommissionMinor: 10 });
    expect(amb.status).toBe('failed');
    expect(amb.error).toMatch(/Multiple Transactions Found/);
    expect(fake.requests.length - n).toBe(2);
    const bad = await push('edit', { orderNumber: 'dup', orderDate });
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatch(/at least one of/);
    expect(fake.requests.length - n).toBe(2);
  });
});
