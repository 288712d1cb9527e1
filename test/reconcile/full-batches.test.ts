// A full reconciliation streams by batches of whole units (src/reconcile/full.ts): whatever the
// batch size, it must leave exactly what one big batch and the reference slice procedure leave,
// and every item must be evaluated in exactly one batch. The world adds to the standard one the
// shapes the batching has to get right: a unit spanning two customers, network rows without a
// customer (alone, duplicated, and one only reaching a customer through another row), and a
// commission whose payment has no customer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation, type ReconcileOptions, type ReconcileSummary } from '../../src/reconcile/run.ts';
import { fullUnitBatches } from '../../src/reconcile/full.ts';
import { standardWorld } from './world.ts';

const config = configSchema.parse({});
const NOW = new Date('2025-03-01T00:00:00Z');

async function snapshot(db: Knex) {
  const discrepancies = await db('discrepancies').orderBy('fingerprint').select(
    'fingerprint', 'kind', 'severity', 'status', 'network', 'connection', 'partner_id', 'partner_account_id', 'billing_event_id', 'network_commission_id',
    'computed_commission_key', 'period', 'expected_minor', 'reported_minor', 'currency', 'usd_at_stake_minor', 'detail',
  );
  const items = await db('reconcile_items').orderBy('item').select('item', 'network', 'unit', 'payment_event_id', 'sig', 'counted', 'partner_id', 'reported_usd_minor', 'owed_usd_minor', 'collected_usd_minor');
  return { discrepancies: discrepancies.map((r) => ({ ...r, detail: typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail })), items };
}

const comparable = (s: ReconcileSummary) => ({ mode: s.mode, status: s.status, units: s.units, items: s.items, found: s.found, byKind: s.byKind, totals: s.totals });

describe('full reconciliation in batches of units', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
    const ids = await standardWorld(t.db);
    const { w, accounts, customers } = ids;
    const c = (i: number): number => customers[i - 1]!;
    // A PartnerStack reward on customer 3 for customer 7's invoice: one unit across two customers.
    await w.network({ id: 'rw-x', connection: 'ps', network: 'partnerstack', accountId: accounts.accA, customerId: c(3), tx: 'in_7', amountMinor: 700, at: '2025-01-22T12:00:00Z' });
    // Awin rows without a customer: two for an order billing never saw (one unit, no customer) ...
    await w.network({ id: 'aw-n1', connection: 'awin', network: 'awin', accountId: accounts.accC, orderRef: 'ord_none', amountMinor: 300, at: '2025-01-14T10:00:00Z' });
    await w.network({ id: 'aw-n2', connection: 'awin', network: 'awin', accountId: accounts.accC, orderRef: 'ord_none', amountMinor: 300, at: '2025-02-14T10:00:00Z' });
    // ... and one that reaches customer 9's commission only through another row's transaction key.
    await w.network({ id: 'aw-z1', connection: 'awin', network: 'awin', accountId: accounts.accC, orderRef: 'in_9', tx: 'tx_z', amountMinor: 100, at: '2025-01-26T11:00:00Z' });
    await w.network({ id: 'aw-z2', connection: 'awin', network: 'awin', accountId: accounts.accC, orderRef: 'ord_z2', tx: 'tx_z', amountMinor: 100, at: '2025-01-26T12:00:00Z' });
    // A payment without a customer, with its Awin commission reported by order reference, and one without a report.
    const pn = await w.payment({ id: 'ch_n', invoice: 'in_n', customerId: null, at: '2025-01-29T10:00:00Z', amountMinor: 5000 });
    await w.computed({ key: 'cc-n-d', partnerId: ids.partners.C, accountId: accounts.accC, network: 'awin', paymentId: pn, amountMinor: 900, at: '2025-01-29T10:00:00Z' });
    await w.network({ id: 'aw-n', connection: 'awin', network: 'awin', accountId: accounts.accC, orderRef: 'in_n', amountMinor: 1000, at: '2025-01-29T10:00:00Z' });
    const pm = await w.payment({ id: 'ch_m', invoice: 'in_m', customerId: null, at: '2025-02-02T10:00:00Z', amountMinor: 5000 });
    await w.computed({ key: 'cc-m-d', partnerId: ids.partners.C, accountId: accounts.accC, network: 'awin', paymentId: pm, amountMinor: 1000, at: '2025-02-02T10:00:00Z' });
  }, 120_000);
  afterAll(async () => {
    await t?.destroy();
  });

  const run = (opts: ReconcileOptions) => runReconciliation({ db: t.db, config }, { now: NOW, full: true, ...opts });

  it('gives the same discrepancies, items and totals with one-row batches, one big batch and the slice procedure', async () => {
    const slices = await run({ fullStrategy: 'slices' });
    const reference = await snapshot(t.db);
    expect(reference.discrepancies.length).toBeGreaterThan(10);
    for (const batchRows of [1, 2, 1_000_000]) {
      const s = await run({ batchRows });
      expect(comparable(s), `batchRows ${batchRows}`).toEqual(comparable(slices));
      expect(await snapshot(t.db), `batchRows ${batchRows}`).toEqual(reference);
    }
    // The slice procedure again, over what the batched runs left: still the same.
    await run({ fullStrategy: 'slices' });
    expect(await snapshot(t.db)).toEqual(reference);
  }, 120_000);

  it('evaluates every item in exactly one batch, and small batches are many', async () => {
    const full = await run({ batchRows: 1_000_000 });
    const seen = new Map<string, number>();
    let units = 0;
    let batches = 0;
    for await (const b of fullUnitBatches(t.db, new Map(), 1)) {
      if (b.units > 0) batches++;
      units += b.units;
      for (const item of [...b.nc.map((n) => `nc:${n.id}`), ...b.e.map((e) => `cc:${e.key}`)]) seen.set(item, (seen.get(item) ?? 0) + 1);
    }
    const items = (await t.db('reconcile_items').orderBy('item').pluck('item')) as string[];
    expect([...seen.keys()].sort()).toEqual(items);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(units).toBe(full.units);
    expect(batches).toBeGreaterThan(full.units / 2);
  }, 120_000);

  it('a failed batch write fails the run and leaves nothing of it, even from the batch evaluated beside it', async () => {
    await run({ batchRows: 1_000_000 });
    const before = await snapshot(t.db);
    // Awin's rows fail to write; with one-row batches, batches before them were written in the same
    // transaction, and on PostgreSQL the next batch is being evaluated while the failing one writes.
    await t.db.raw(`CREATE FUNCTION refuse_awin() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.network = 'awin' THEN RAISE EXCEPTION 'test: refusing an awin discrepancy'; END IF; RETURN NEW; END $$`);
    await t.db.raw(`CREATE TRIGGER refuse_awin BEFORE INSERT OR UPDATE ON discrepancies FOR EACH ROW EXECUTE FUNCTION refuse_awin()`);
    try {
      await expect(run({ batchRows: 1 })).rejects.toThrow('test: refusing an awin discrepancy');
      expect(await snapshot(t.db)).toEqual(before);
      await new Promise((r) => setTimeout(r, 100));
      expect(await snapshot(t.db)).toEqual(before);
      const last = await t.db('reconciliation_runs').orderBy('id', 'desc').first();
      expect([last.status, String(last.error)]).toEqual(['failed', expect.stringContaining('test: refusing an awin discrepancy')]);
    } finally {
      await t.db.raw('DROP TRIGGER refuse_awin ON discrepancies');
    }
    await run({ batchRows: 1 });
    expect(await snapshot(t.db)).toEqual(before);
  }, 120_000);
});
