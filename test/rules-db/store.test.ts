import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { buildPayouts, computeAndStore, listCommissions, listPayouts, markPayoutsPaid, readComputeTotals } from '../../src/rules/store.ts';
import { findComputeAndStore } from '../../src/jobs/main-job.ts';
import { useTestDb, usingPostgres } from '../helpers/db.ts';
import { openDb } from '../../src/db/connection.ts';
import { DISCREPANCY_WRITE_LOCK } from '../../src/db/locks.ts';
import { AS_OF, seedWorld, storedRows, type Ids } from './world.ts';

const config = configSchema.parse({ program: { dir: fileURLToPath(new URL('../../config/programs', import.meta.url)), name: 'kartra' } });

describe('rules DB adapter (computeAndStore, buildPayouts)', () => {
  const t = useTestDb();
  let ids: Ids;
  beforeEach(async () => {
    ids = await seedWorld(t.db);
  });

  it('stores the hand-worked rows', async () => {
    const s = await computeAndStore(t.db, config, AS_OF);
    expect(s.partners).toBe(3);
    expect(s.deleted).toBe(0);
    expect(s.unmatchedEvents).toEqual([]);
    const rows = await listCommissions(t.db);
    const pick = (r: (typeof rows)[number]) => [r.partner_key, r.kind, r.clawback_of, r.document_id, r.source_document_id, r.tier, r.rate, r.base_minor, r.amount_minor, r.amount_usd_minor, r.status, r.cleared_at, r.payout_date, r.exclusion_reason];
    expect(rows.map(pick)).toEqual([
      // R: 10% second tier on A's payments (ordered by partner id, paid time, key: a clawback carries its payment's paid time)
      // refund 2500 of 10000 after clearing: ROUND(1000 × 7500/10000) − 1000 = 750 − 1000 = −250, payout 04-15
      ['r', 'clawback', 'second_tier', 'in_p1', 're_1', null, '0.1', 10_000, -250, -250, 'due', '2025-03-01T12:00:00.000Z', '2025-04-15', null],
      // 10000 × 0.10 = 1000; cleared 2025-01-03 + 45 d = 02-17 → paid 03-15
      ['r', 'second_tier', null, 'in_p1', 'in_p1', null, '0.1', 10_000, 1_000, 1_000, 'due', '2025-02-17T12:00:00.000Z', '2025-03-15', null],
      ['r', 'second_tier', null, 'in_tr2', 'in_tr2', null, '0', 100, 0, 0, 'void', null, null, 'trial_charge'],
      // 120000 × 0.10 = 12000; clears 02-01 + 45 d = 03-18 (after as-of) → reserve
      ['r', 'second_tier', null, 'in_p2', 'in_p2', null, '0.1', 120_000, 12_000, 12_000, 'reserve', '2025-03-18T12:00:00.000Z', '2025-04-15', null],
      // clawback: ROUND(10000 × 7500/10000) − 10000 = −2500
      ['a', 'clawback', 'direct', 'in_p1', 're_1', 'referral', '1', 10_000, -2_500, -2_500, 'due', '2025-03-01T12:00:00.000Z', '2025-04-15', null],
      // A: Referral tier, monthly first payment 100%: 10000 × 1 = 10000
      ['a', 'direct', null, 'in_p1', 'in_p1', 'referral', '1', 10_000, 10_000, 10_000, 'due', '2025-02-17T12:00:00.000Z', '2025-03-15', null],
      ['a', 'direct', null, 'in_tr2', 'in_tr2', null, '0', 100, 0, 0, 'void', null, null, 'trial_charge'],
      // annual first qualified payment (after the trial) at Referral (p1 not cleared on 02-01): 120000 × 0.20 = 24000
      ['a', 'direct', null, 'in_p2', 'in_p2', 'referral', '0.2', 120_000, 24_000, 24_000, 'reserve', '2025-03-18T12:00:00.000Z', '2025-04-15', null],
      // B wins C3 (latest claim): 5000 × 1 = 5000, cleared 01-10 + 45 d = 02-24
      ['b', 'direct', null, 'in_p3', 'in_p3', 'referral', '1', 5_000, 5_000, 5_000, 'due', '2025-02-24T12:00:00.000Z', '2025-03-15', null],
    ]);
    expect(rows.find((r) => r.partner_key === 'b')!.flags).toEqual(['multiple_attributions']);
    expect(rows.every((r) => r.network === 'partnerstack' && r.billing_system === 'stripe')).toBe(true);
    expect(rows.find((r) => r.partner_key === 'r')!.partner_external_id).toBe('ps-r');
    expect(rows.some((r) => r.document_id === 'in_px')).toBe(false); // deleted in billing
    expect(rows.every((r) => r.rule_version === 'kartra-tiers-2024')).toBe(true);

    // Totals by kind/status: due 1000 − 250 + 10000 − 2500 + 5000 = 13250; reserve 12000 + 24000 = 36000
    expect(s.totals).toEqual({ rows: 9, amountUsdMinor: 49_250, dueUsdMinor: 13_250, reserveUsdMinor: 36_000, paidUsdMinor: 0 });

    // Filters: partner by network external id, payment by document id (refund → its clawbacks too)
    expect((await listCommissions(t.db, { partner: 'ps-b' })).map((r) => r.partner_key)).toEqual(['b']);
    expect((await listCommissions(t.db, { payment: 're_1' })).map((r) => r.kind).sort()).toEqual(['clawback', 'clawback']);
    expect((await listCommissions(t.db, { payment: 'in_p1' })).length).toBe(4);
    await expect(listCommissions(t.db, { partner: 'nobody' })).rejects.toThrow(/--partner: no partner/);
  });

  it('recomputing is idempotent; vanished keys are deleted, paid rows are kept untouched', async () => {
    await computeAndStore(t.db, config, AS_OF);
    const first = await storedRows(t.db);
    const s2 = await computeAndStore(t.db, config, AS_OF);
    expect(await storedRows(t.db)).toEqual(first); // same ids, same values, no duplicates
    expect(s2.deleted).toBe(0);
    const dup = await t.db('computed_commissions').groupBy('commission_key').havingRaw('count(*) > 1').select('commission_key');
    expect(dup).toEqual([]);

    // Pay A's p1 row; then the refund disappears from billing: clawbacks go, the paid row stays as it was.
    const paidKey = `direct:${ids.p1}:${ids.a}`;
    await t.db('computed_commissions').where('commission_key', paidKey).update({ status: 'paid', amount_minor: 9_999 });
    await t.db('billing_events').where('id', ids.re1).update({ deleted_at: '2025-03-05T00:00:00Z' });
    const s3 = await computeAndStore(t.db, config, AS_OF);
    expect(s3.deleted).toBe(2);
    const keys = (await storedRows(t.db)).map((r) => r.commission_key);
    expect(keys.filter((k) => String(k).startsWith('clawback'))).toEqual([]);
    const paid = await t.db('computed_commissions').where('commission_key', paidKey).first();
    expect(paid.status).toBe('paid');
    expect(Number(paid.amount_minor)).toBe(9_999);
  });

  it('batch size does not change the rows (1 partner per batch vs 500)', async () => {
    const s500 = await computeAndStore(t.db, config, AS_OF, { batchSize: 500 });
    const big = await storedRows(t.db);
    // full: the second run would otherwise be incremental (nothing changed → no batch at all)
    const s1 = await computeAndStore(t.db, config, AS_OF, { batchSize: 1, full: true });
    expect(s500.batches).toBe(1);
    expect(s1.batches).toBe(3);
    expect(await storedRows(t.db)).toEqual(big);
    expect(s1.deleted).toBe(0);
  });

  it('a failed batch write stops the compute: the batch computed beside it is never written', async () => {
    // Partners are batched in id order, one per batch here: R (no customers), A (A's direct rows and
    // R's second-tier rows), B. A's write fails; on PostgreSQL B is computed while it is written.
    await t.db.raw(`CREATE FUNCTION refuse_partner_a() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.partner_id = ${ids.a} THEN RAISE EXCEPTION 'test: refusing partner %', NEW.partner_id; END IF; RETURN NEW; END $$`);
    await t.db.raw(`CREATE TRIGGER refuse_partner_a BEFORE INSERT ON computed_commissions FOR EACH ROW EXECUTE FUNCTION refuse_partner_a()`);
    await expect(computeAndStore(t.db, config, AS_OF, { batchSize: 1 })).rejects.toThrow(`test: refusing partner ${ids.a}`);
    const count = async (): Promise<number> => Number((await t.db('computed_commissions').count({ n: '*' }))[0]!.n);
    expect(await count()).toBe(0); // A's batch rolled back whole (R's second-tier rows with it)
    await new Promise((r) => setTimeout(r, 100));
    expect(await count()).toBe(0); // and B's batch was not written after the failure
    expect(await t.db('change_cursors').where('consumer', 'compute').first()).toBeUndefined();

    await t.db.raw('DROP TRIGGER refuse_partner_a ON computed_commissions');
    const s = await computeAndStore(t.db, config, AS_OF, { batchSize: 1 });
    expect([s.batches, s.computed, await count()]).toEqual([3, 9, 9]);
  });

  it('builds payout statements idempotently (minimum carry-forward, reasons)', async () => {
    await computeAndStore(t.db, config, AS_OF);
    const b1 = await buildPayouts(t.db, config, '2025-03-15');
    expect(b1).toMatchObject({ statements: 3, byStatus: { payable: 2, carried_forward: 1 }, payableUsdMinor: 15_000, carriedOutUsdMinor: 1_000 });
    const first = await listPayouts(t.db, '2025-03-15');
    const pick = (p: (typeof first)[number]) => [p.partner_key, p.network, p.carried_in_usd_minor, p.new_usd_minor, p.balance_usd_minor, p.payable_usd_minor, p.carried_out_usd_minor, p.minimum_usd_minor, p.status, p.reasons, p.items];
    expect(first.map(pick)).toEqual([
      // R: 1000 < PartnerStack minimum 2500 → carried forward
      ['r', 'partnerstack', 0, 1_000, 1_000, 0, 1_000, 2_500, 'carried_forward', ['below_minimum'], 1],
      ['a', 'partnerstack', 0, 10_000, 10_000, 10_000, 0, 2_500, 'payable', [], 1],
      ['b', 'partnerstack', 0, 5_000, 5_000, 5_000, 0, 2_500, 'payable', [], 1],
    ]);
    const row = await t.db('payouts').where('partner_id', ids.r).first();
    expect(row.blocked_reason).toBe('below_minimum');
    await buildPayouts(t.db, config, '2025-03-15');
    expect(await listPayouts(t.db, '2025-03-15')).toEqual(first);
    expect(Number((await t.db('payouts').count({ n: '*' }))[0]!.n)).toBe(3);
    expect(Number((await t.db('payout_items').count({ n: '*' }))[0]!.n)).toBe(3);

    // April: A's unpaid March 10000 carries in; new = −2500 clawback + 24000 (reserve: projected) = 21500
    await buildPayouts(t.db, config, '2025-04-15');
    const april = (await listPayouts(t.db, '2025-04-15')).find((p) => p.partner_key === 'a')!;
    expect([april.carried_in_usd_minor, april.new_usd_minor, april.balance_usd_minor, april.status, april.projected]).toEqual([10_000, 21_500, 31_500, 'payable', true]);
  });

  it('marks the payable statements of a date paid; paid lines stay put on recompute and do not carry into the next payout', async () => {
    await computeAndStore(t.db, config, AS_OF);
    await buildPayouts(t.db, config, '2025-03-15');
    // Payable on 2025-03-15: A $100.00 and B $50.00 (R's $10.00 is carried forward, so not paid).
    expect(await markPayoutsPaid(t.db, '2025-03-15')).toEqual({ statements: 2, commissions: 2, usdMinor: 15_000 });
    expect(await markPayoutsPaid(t.db, '2025-03-15')).toEqual({ statements: 0, commissions: 0, usdMinor: 0 }); // idempotent
    const statuses = (await listPayouts(t.db, '2025-03-15')).map((p) => [p.partner_key, p.status]);
    expect(statuses).toEqual([['r', 'carried_forward'], ['a', 'paid'], ['b', 'paid']]);
    const paidLines = (await listCommissions(t.db)).filter((r) => r.status === 'paid').map((r) => [r.partner_key, r.amount_usd_minor]);
    expect(paidLines).toEqual([['a', 10_000], ['b', 5_000]]);
    // Recompute and rebuild leave paid lines and statements as they are.
    await computeAndStore(t.db, config, AS_OF);
    await buildPayouts(t.db, config, '2025-03-15');
    expect((await listCommissions(t.db)).filter((r) => r.status === 'paid').map((r) => [r.partner_key, r.amount_usd_minor])).toEqual(paidLines);
    expect((await listPayouts(t.db, '2025-03-15')).map((p) => [p.partner_key, p.status])).toEqual(statuses);
    // April: A's March $100.00 was paid, so nothing carries in any more: new = −2500 + 24000 = 21500.
    await buildPayouts(t.db, config, '2025-04-15');
    const april = (await listPayouts(t.db, '2025-04-15')).find((p) => p.partner_key === 'a')!;
    expect([april.carried_in_usd_minor, april.new_usd_minor, april.balance_usd_minor]).toEqual([0, 21_500, 21_500]);
  });

  it('is what the main job finds and calls as compute(db, config, asOf)', async () => {
    const fn = await findComputeAndStore();
    expect(fn).toBe(computeAndStore);
    const r = (await fn!(t.db, config, AS_OF)) as { computed: number };
    expect(r.computed).toBe(9);
  });

  it('loads config.fxRatesFile into fx_rates and prices a EUR payment by it', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(tmpdir(), 'cs-fx-'));
    try {
      const file = path.join(dir, 'fx.csv');
      writeFileSync(file, 'currency,date,usd_per_unit\nEUR,2025-01-01,1.0825\n');
      const c4 = Number((await t.db('customers').insert({ customer_key: 'c4' }).returning('id'))[0]!.id);
      await t.db('attributions').insert({ customer_id: c4, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c4', attributed_at: '2025-01-01T00:00:00Z' });
      const s4 = Number((await t.db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: 'sub_4', customer_id: c4, plan_interval: 'month', status: 'active' }).returning('id'))[0]!.id);
      // No settlement USD: 4999 EUR cents × 1.0825 = 5411.4175 → 5411 USD cents (half away from zero)
      await t.db('billing_events').insert({ connection: 'stripe', billing_system: 'stripe', kind: 'payment', external_id: 'ch_eur', document_id: 'in_eur', customer_id: c4, subscription_id: s4, occurred_at: '2025-01-12T00:00:00Z', amount_minor: 4_999, currency: 'EUR', classification: 'qualified' });
      const s = await computeAndStore(t.db, { ...config, fxRatesFile: file }, AS_OF);
      expect(s.fxRatesLoaded).toBe(1);
      const [row] = await listCommissions(t.db, { payment: 'in_eur' });
      // B's second Referral-tier monthly first payment: 4999 EUR × 1 = 4999 EUR = 5411 USD cents
      expect([row!.base_minor, row!.base_currency, row!.base_usd_minor, row!.amount_minor, row!.amount_currency, row!.amount_usd_minor]).toEqual([4_999, 'EUR', 5_411, 4_999, 'EUR', 5_411]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('keeps the by-kind-and-status totals by difference, whoever writes the rows (migration 014)', async () => {
    const aggregate = async () =>
      (await t.db('computed_commissions').groupBy('kind', 'status').orderBy(['kind', 'status']).select('kind', 'status').count({ n: '*' }).sum({ usd: 'amount_usd_minor' })).map(
        (r: Record<string, unknown>) => ({ kind: r.kind, status: r.status, rows: Number(r.n), amountUsdMinor: Number(r.usd ?? 0) }),
      );
    const s = await computeAndStore(t.db, config, AS_OF);
    expect(s.byKindStatus).toEqual(await aggregate());
    expect(s.byKindStatus.length).toBeGreaterThan(2);
    await buildPayouts(t.db, config, '2025-03-15');
    await markPayoutsPaid(t.db, '2025-03-15'); // due → paid, outside the compute
    expect(await readComputeTotals(t.db)).toEqual(await aggregate());
    expect((await readComputeTotals(t.db)).some((k) => k.status === 'paid')).toBe(true);
    // Manual SQL: an update of amounts, a delete, and a rolled-back delete.
    await t.db('computed_commissions').where('status', 'reserve').update({ amount_usd_minor: t.db.raw('amount_usd_minor + 7') });
    await t.db('computed_commissions').where('kind', 'clawback').delete();
    await t.db
      .transaction(async (trx) => {
        await trx('computed_commissions').where('status', 'void').delete();
        throw new Error('roll back');
      })
      .catch(() => undefined);
    const after = await aggregate();
    expect(after.some((k) => k.kind === 'clawback')).toBe(false);
    expect(after.some((k) => k.status === 'void')).toBe(true);
    expect(await readComputeTotals(t.db)).toEqual(after);
    // Folded: one row per (kind, status) left, the same totals read again.
    expect(Number((await t.db('compute_totals').count({ n: '*' }))[0]!.n)).toBe(after.length);
    expect(await readComputeTotals(t.db)).toEqual(after);
    // A full recompute puts back the clawbacks and the amounts: the totals follow.
    const again = await computeAndStore(t.db, config, AS_OF, { full: true });
    expect(again.byKindStatus).toEqual(await aggregate());
    // TRUNCATE (manual maintenance, e.g. to force a rebuild) fires no DELETE trigger: the kept
    // totals must empty with the table, not count the old rows under the rebuilt ones.
    await t.db.raw('TRUNCATE computed_commissions CASCADE');
    expect(await readComputeTotals(t.db)).toEqual([]);
    const rebuilt = await computeAndStore(t.db, config, AS_OF, { full: true });
    expect(rebuilt.byKindStatus).toEqual(await aggregate());
    expect(rebuilt.byKindStatus.reduce((a, k) => a + k.rows, 0)).toBe(Number((await t.db('computed_commissions').count({ n: '*' }))[0]!.n));
  });

  // Compute's batch writes re-explain discrepancies (migration 015's trigger), which the reconcile's
  // write phase writes too: a batch waits while a reconcile holds the lock, instead of deadlocking.
  (usingPostgres() ? it : it.skip)('a compute batch waits for a reconcile write phase in progress', async () => {
    const other = await openDb({ url: t.url!, poolMax: 1 });
    try {
      const trx = await other.transaction();
      await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))', [DISCREPANCY_WRITE_LOCK]);
      const compute = computeAndStore(t.db, config, AS_OF);
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        const r = await trx.raw(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = ? AND objsubid = 2 AND NOT granted AND mode = 'ShareLock'`, [DISCREPANCY_WRITE_LOCK]);
        waiting = (r.rows[0] as { n: number }).n > 0;
        if (!waiting) await new Promise((res) => setTimeout(res, 50));
      }
      expect(waiting).toBe(true);
      expect(Number((await trx('computed_commissions').count({ n: '*' }))[0]!.n)).toBe(0);
      await trx.commit();
      expect((await compute).written).toBe(9);
    } finally {
      await other.destroy();
    }
    expect(Number((await t.db('computed_commissions').count({ n: '*' }))[0]!.n)).toBe(9);
  });
});
