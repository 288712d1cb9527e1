// Incremental compute (src/rules/incremental.ts): after every kind of change, an incremental run
// leaves exactly the rows a full recompute gives. Two databases get the same canonical writes in the
// same order (so the same ids): `inc` is computed incrementally, `ref` fully, and their
// computed_commissions are compared on every column but the run stamps (id, as_of, computed_at,
// change_seq). Each incremental run must also recompute fewer partners than exist, where the change
// allows it, so the property cannot hold by always running in full.
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { computeAndStore, loadProgramVersions, type ComputeOptions, type ComputeSummary } from '../../src/rules/store.ts';
import type { ProgramVersion } from '../../src/rules/program.ts';
import { ensureCustomers, upsertBillingEvents, upsertCustomers } from '../../src/model/index.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { AS_OF, seedWorld, type Ids } from './world.ts';

const config = configSchema.parse({ program: { dir: fileURLToPath(new URL('../../config/programs', import.meta.url)), name: 'kartra' } });

type Change = (db: Knex) => Promise<unknown>;

async function content(db: Knex): Promise<Array<Record<string, unknown>>> {
  const rows = await db('computed_commissions').orderBy('commission_key').select('*');
  return rows.map((r: Record<string, unknown>) => {
    const { id: _i, as_of: _a, computed_at: _c, change_seq: _s, ...rest } = r;
    return rest;
  });
}

async function facts(db: Knex): Promise<Array<Record<string, unknown>>> {
  return db('compute_partner_payments').orderBy(['partner_id', 'paid_at', 'payment_event_id']).select('*');
}

/** The stored rows by kind and status, aggregated from computed_commissions itself. */
async function aggregate(db: Knex): Promise<ComputeSummary['byKindStatus']> {
  const rows = await db('computed_commissions').groupBy('kind', 'status').orderBy(['kind', 'status']).select('kind', 'status').count({ n: '*' }).sum({ usd: 'amount_usd_minor' });
  return rows.map((r: Record<string, unknown>) => ({ kind: r.kind, status: r.status, rows: Number(r.n), amountUsdMinor: Number(r.usd ?? 0) })) as ComputeSummary['byKindStatus'];
}

const one = async (q: PromiseLike<unknown>): Promise<number> => Number(((await q) as Array<{ id: number }>)[0]!.id);
const at = (iso: string): Date => new Date(iso);

describe('incremental compute equals a full recompute', () => {
  let inc: TestDb;
  let ref: TestDb;
  let ids: Ids;
  let partnersTotal: number;

  beforeEach(async () => {
    [inc, ref] = await Promise.all([createTestDb(), createTestDb()]);
    ids = await seedWorld(inc.db);
    const idsRef = await seedWorld(ref.db);
    expect(idsRef).toEqual(ids); // same writes, same ids
    partnersTotal = 3;
  });
  afterEach(async () => {
    await Promise.all([inc.destroy(), ref.destroy()]);
  });

  /** Applies `change` to both databases, computes `inc` incrementally and `ref` fully, compares. */
  async function step(change: Change | null, asOf: Date, opts: ComputeOptions = {}): Promise<ComputeSummary> {
    if (change) {
      await change(inc.db);
      await change(ref.db);
    }
    const s = await computeAndStore(inc.db, config, asOf, opts);
    const full = await computeAndStore(ref.db, config, asOf, { ...opts, full: true });
    expect(full.mode).toBe('full');
    expect(await content(inc.db)).toEqual(await content(ref.db));
    // The tier facts later incremental runs read are those a full recompute writes.
    expect(await facts(inc.db)).toEqual(await facts(ref.db));
    // The summary comes from the totals kept by difference (migration 014): equal to the rows' own aggregate.
    expect(s.byKindStatus).toEqual(await aggregate(inc.db));
    expect(full.byKindStatus).toEqual(await aggregate(ref.db));
    return s;
  }

  const eventRow = (e: { ext: string; kind?: string; customerId: number | null; subId?: number | null; paymentId?: number | null; at: string; amount: number; currency?: string; usd?: number | null }) => ({
    connection: 'stripe',
    billing_system: 'stripe',
    kind: e.kind ?? 'payment',
    external_id: e.ext,
    document_id: e.ext,
    customer_id: e.customerId,
    subscription_id: e.subId ?? null,
    payment_event_id: e.paymentId ?? null,
    occurred_at: e.at,
    amount_minor: e.amount,
    currency: e.currency ?? 'USD',
    amount_usd_minor: e.usd === undefined ? e.amount : e.usd,
    classification: (e.kind ?? 'payment') === 'payment' ? 'qualified' : null,
  });
  const subOf = async (db: Knex, ext: string): Promise<number> => Number((await db('subscriptions').where('external_id', ext).first('id')).id);

  it('follows new payments, refunds, moved attributions, merges, recruits, FX, time and program changes', async () => {
    // 0. First run: no cursor → full.
    let s = await step(null, AS_OF);
    expect([s.mode, s.fullReason, s.partners]).toEqual(['full', 'no cursor (first run)', 3]);

    // 1. Nothing changed: nothing recomputed, nothing written.
    s = await step(null, AS_OF);
    expect([s.mode, s.partners, s.written, s.deleted]).toEqual(['incremental', 0, 0, 0]);

    // 2. A new payment of C1 (A's customer): only A is recomputed (R's second tier on it comes from A).
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_p4', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2025-02-03T12:00:00Z', amount: 10_000 })), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);
    expect(s.written).toBeGreaterThan(0);

    // 3. A full refund of p3 (B, before clearing? p3 cleared 02-24; refund 03-05 → clawback) filed without a customer.
    s = await step((db) => db('billing_events').insert(eventRow({ ext: 're_p3', kind: 'refund', customerId: null, paymentId: ids.p3, at: '2025-03-05T00:00:00Z', amount: 5_000 })), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);

    // 4. A moved attribution: B claims C1 later than A → B wins C1; A's rows on C1 go, B's appear.
    s = await step((db) => db('attributions').insert({ customer_id: ids.c1, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c1-b', attributed_at: '2025-01-01T00:00:00Z' }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 2]);
    expect(s.deleted).toBeGreaterThan(0);

    // 5. ... and back: the claim is hard-deleted (tombstone) → A wins C1 again.
    s = await step((db) => db('attributions').where('source_ref', 'att-c1-b').delete(), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 2]);

    // 6. A placeholder customer (payment first seen in billing, claimed by B through the network)
    //    is merged into C2 (A's): its payment and B's claim move to C2; B's later claim wins C2.
    s = await step(async (db) => {
      await db.transaction(async (trx) => {
        const x = (await ensureCustomers(trx, 'stripe', 'stripe', ['cus_9'])).get('cus_9')!;
        await trx('customer_identities').where({ system: 'stripe', external_id: 'cus_9' }).first();
        await trx('billing_events').insert(eventRow({ ext: 'ch_x1', customerId: x, subId: await subOf(trx, 'sub_2'), at: '2025-02-20T12:00:00Z', amount: 30_000 }));
        await trx('attributions').insert({ customer_id: x, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-x', attributed_at: '2025-02-10T00:00:00Z' });
      });
    }, AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]); // B (the placeholder's winner)
    s = await step((db) => db.transaction((trx) => upsertCustomers(trx, [{ identity: { system: 'stripe', connection: 'stripe', externalId: 'cus_9' }, customerKey: 'c2' }])), AS_OF);
    expect(await inc.db('customers').where('customer_key', '~stripe:cus_9').first()).toBeUndefined();
    expect([s.mode, s.partners]).toEqual(['incremental', 2]); // A (lost C2) and B (won it)

    // 7. A new recruit: D joins through R's JV link with a customer and a payment; later B is found to be R's recruit too.
    s = await step(async (db) => {
      const d = await one(db('partners').insert({ partner_key: 'd', name: 'D', email: 'd@partners.example', email_normalized: 'd@partners.example', recruiter_partner_id: ids.r }).returning('id'));
      const accD = await one(db('partner_accounts').insert({ partner_id: d, connection: 'partnerstack', network: 'partnerstack', external_id: 'ps-d' }).returning('id'));
      const c5 = await one(db('customers').insert({ customer_key: 'c5', email: 'c5@cust.example', email_normalized: 'c5@cust.example' }).returning('id'));
      await db('attributions').insert({ customer_id: c5, partner_account_id: accD, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c5', attributed_at: '2025-01-02T00:00:00Z' });
      const s5 = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: 'sub_5', customer_id: c5, plan_interval: 'month', status: 'active', currency: 'USD' }).returning('id'));
      await db('billing_events').insert(eventRow({ ext: 'ch_p5', customerId: c5, subId: s5, at: '2025-01-06T12:00:00Z', amount: 20_000 }));
    }, AS_OF);
    partnersTotal = 4;
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);
    s = await step((db) => db('partners').where('id', ids.b).update({ recruiter_partner_id: ids.r }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);

    // 8. Personal use: R's account reports C2's address → R's second tier on C2's payments is excluded
    //    (R changed → its recruits A, B, D are recomputed; R itself too).
    s = await step((db) => db('partner_accounts').where('id', ids.accR).update({ email: 'C2@cust.example' }), AS_OF);
    expect(s.mode).toBe('incremental');

    // 9. Agency owner ref resolved through ANOTHER partner's change: C3 (B's) names "shared", which is
    //    B's email → agency_sub_account; then A takes partner_key "shared" (partner_key wins) → C3 counts again.
    await step(async (db) => {
      await db('partners').where('id', ids.b).update({ email_normalized: 'shared' });
      await db('customers').where('id', ids.c3).update({ agency_owner_ref: 'shared' });
    }, AS_OF);
    s = await step((db) => db('partners').where('id', ids.a).update({ partner_key: 'shared' }), AS_OF);
    expect(s.mode).toBe('incremental');
    expect(s.changes.customersAgencyRef).toBe(1);
    expect(s.partners).toBeLessThan(partnersTotal);

    // 10. FX: a EUR payment of C3 without settlement USD, then its rate, then a revised rate, then a delete.
    await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_eur', customerId: ids.c3, subId: await subOf(db, 'sub_3'), at: '2025-01-25T00:00:00Z', amount: 4_999, currency: 'EUR', usd: null })), AS_OF);
    s = await step((db) => db('fx_rates').insert({ currency: 'EUR', rate_date: '2025-01-01', usd_per_unit: '1.0825' }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);
    s = await step((db) => db('fx_rates').where({ currency: 'EUR', rate_date: '2025-01-01' }).update({ usd_per_unit: '1.1' }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);
    s = await step((db) => db('fx_rates').where({ currency: 'EUR' }).delete(), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);

    // 11. A customer's email and a billing event soft-deleted.
    s = await step((db) => db('customer_emails').insert({ customer_id: ids.c3, email_normalized: 'b@partners.example' }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);
    s = await step((db) => db('billing_events').where('id', ids.re1).update({ deleted_at: '2025-03-09T00:00:00Z' }), AS_OF);
    expect([s.mode, s.partners]).toEqual(['incremental', 1]);

    // 12. Time: a payment dated after asOf is stored now (not known yet); asOf then moves past it and
    //     past p2's clearing (03-18): p2's rows flip reserve → due without recomputing A.
    await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_future', customerId: ids.c3, subId: await subOf(db, 'sub_3'), at: '2025-03-15T12:00:00Z', amount: 5_000 })), AS_OF);
    s = await step(null, at('2025-03-20T00:00:00Z'));
    expect([s.mode, s.partners]).toEqual(['incremental', 1]); // B (the future payment became known)
    expect(s.advanced).toBeGreaterThanOrEqual(1); // p2's direct row (cleared 03-18)
    s = await step(null, at('2025-06-01T00:00:00Z'));
    expect(s.mode).toBe('incremental');

    // 13. asOf backwards → full; program definition changed → full (and back → full again).
    s = await step(null, at('2025-04-01T00:00:00Z'));
    expect([s.mode, s.fullReason]).toEqual(['full', 'asOf moved backwards']);
    const versions = await loadProgramVersions(config);
    const changed = structuredClone(versions) as ProgramVersion[];
    for (const v of changed) if (v.secondTier) (v.secondTier as { rate: string }).rate = '0.15';
    s = await step(null, at('2025-04-01T00:00:00Z'), { programVersions: changed });
    expect([s.mode, s.fullReason]).toEqual(['full', 'program definition changed']);
    s = await step(null, at('2025-04-01T00:00:00Z'));
    expect([s.mode, s.fullReason]).toEqual(['full', 'program definition changed']);

    // A full run on the incrementally maintained database finds nothing to change.
    const f = await computeAndStore(inc.db, config, at('2025-04-01T00:00:00Z'), { full: true });
    expect([f.written, f.deleted]).toEqual([0, 0]);
  });

  it('random sequences of changes (seeded) keep incremental == full', async () => {
    const rnd = mulberry32(20250310);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    await step(null, AS_OF);
    let asOf = AS_OF;
    let n = 0;
    const touched: number[] = [];
    for (let i = 0; i < 24; i++) {
      const op = Math.floor(rnd() * 8);
      const k = `r${i}`;
      const customer = pick([ids.c1, ids.c2, ids.c3]);
      const account = pick([ids.accA, ids.accB, ids.accR]);
      const day = 1 + Math.floor(rnd() * 27);
      const month = 1 + Math.floor(rnd() * 4);
      const when = `2025-0${month}-${String(day).padStart(2, '0')}T10:00:00Z`;
      const amount = 1_000 * (1 + Math.floor(rnd() * 20));
      // Every random draw happens here, never inside `change` (it runs once per database).
      const takeBack = pick(['refund', 'chargeback']);
      const partner = pick([ids.a, ids.b]);
      const recruiter = pick([ids.r, null]);
      const change: Change = async (db) => {
        const sub = Number((await db('subscriptions').where('customer_id', customer).first('id'))?.id ?? 0) || null;
        const payments = await db('billing_events').where({ customer_id: customer, kind: 'payment' }).orderBy('id').pluck('id');
        switch (op) {
          case 0:
          case 1:
            return db('billing_events').insert(eventRow({ ext: `ch_${k}`, customerId: customer, subId: sub, at: when, amount }));
          case 2:
            if (payments.length === 0) return;
            return db('billing_events').insert(eventRow({ ext: `re_${k}`, kind: takeBack, customerId: null, paymentId: Number(payments[payments.length - 1]), at: when, amount: Math.floor(amount / 3) }));
          case 3:
            return db('attributions').insert({ customer_id: customer, partner_account_id: account, connection: 'partnerstack', network: 'partnerstack', source_ref: `att-${k}`, attributed_at: when });
          case 4:
            return db('attributions').where('customer_id', customer).orderBy('id', 'desc').limit(1).update({ deleted_at: when });
          case 5:
            return db('partners').where('id', partner).update({ recruiter_partner_id: recruiter });
          case 6:
            return db('billing_events').insert(eventRow({ ext: `ch_${k}`, customerId: customer, subId: sub, at: when, amount, currency: 'EUR', usd: null })).then(() =>
              db('fx_rates').insert({ currency: 'EUR', rate_date: `2025-0${month}-01`, usd_per_unit: `1.0${day}` }).onConflict(['currency', 'rate_date']).merge(),
            );
          default:
            return db('billing_events').where({ customer_id: customer, kind: 'payment' }).orderBy('id').limit(1).update({ deleted_at: when });
        }
      };
      if (rnd() < 0.3) asOf = new Date(asOf.getTime() + Math.floor(rnd() * 20) * 86_400_000);
      const s = await step(change, asOf);
      expect(s.mode).toBe('incremental');
      touched.push(s.partners);
      n++;
    }
    expect(n).toBe(24);
    expect(touched.some((p) => p < partnersTotal)).toBe(true);
    const f = await computeAndStore(inc.db, config, asOf, { full: true });
    expect([f.written, f.deleted]).toEqual([0, 0]);
  });

  it('new payments after a partner\'s whole history take the append-only shortcut; backdated ones recompute the partner', async () => {
    let s = await step(null, AS_OF);
    expect(s.mode).toBe('full');
    // A's latest known event is re1 (2025-03-01): a renewal of C1 on 03-08 comes after all of it.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_ren1', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2025-03-08T12:00:00Z', amount: 10_000 })), AS_OF);
    expect([s.mode, s.partners, s.appendOnlyPartners]).toEqual(['incremental', 1, 1]);
    expect(s.computed).toBe(2); // the renewal's direct row and R's second tier on it, nothing else
    expect(s.written).toBe(2);
    // Two more renewals at once (C1 and C2, both A's), still after everything A knew.
    s = await step(async (db) => {
      await db('billing_events').insert(eventRow({ ext: 'ch_ren2', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2025-03-09T12:00:00Z', amount: 10_000 }));
      await db('billing_events').insert(eventRow({ ext: 'ch_ren3', customerId: ids.c2, subId: await subOf(db, 'sub_2'), at: '2025-03-09T13:00:00Z', amount: 120_000 }));
    }, AS_OF);
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 4]);
    // A BACKDATED qualified payment of sub_2 (before p2, 02-01): it becomes sub_2's first qualified
    // payment, so p2 is no longer first and its rate changes — a shortcut would miss that (the
    // comparison with the full run below fails if p2's row is left as it was).
    // A is loaded through a window, so the rows of every payment from ch_back on are recomputed.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_back', customerId: ids.c2, subId: await subOf(db, 'sub_2'), at: '2025-01-25T12:00:00Z', amount: 120_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    expect(s.written).toBeGreaterThan(2);
    // A payment dated after asOf: not known yet, nothing computed; once asOf passes it, appended.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_later', customerId: ids.c3, subId: await subOf(db, 'sub_3'), at: '2025-03-12T00:00:00Z', amount: 5_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 0]);
    s = await step(null, at('2025-03-13T00:00:00Z'));
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 1]);
    // A brand-new customer of B (new customer, claim, subscription and payment): fresh → appended.
    s = await step(async (db) => {
      const c = await one(db('customers').insert({ customer_key: 'c6', email: 'c6@cust.example', email_normalized: 'c6@cust.example' }).returning('id'));
      await db('attributions').insert({ customer_id: c, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c6', attributed_at: '2025-03-12T00:00:00Z' });
      const sub = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: 'sub_6', customer_id: c, plan_interval: 'month', status: 'active', currency: 'USD' }).returning('id'));
      await db('billing_events').insert(eventRow({ ext: 'ch_c6', customerId: c, subId: sub, at: '2025-03-12T12:00:00Z', amount: 7_000 }));
    }, at('2025-03-13T00:00:00Z'));
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 1]);
    // A fresh customer whose payment is OLDER than B's history (a late-synced customer): B whole.
    s = await step(async (db) => {
      const c = await one(db('customers').insert({ customer_key: 'c7', email: 'c7@cust.example', email_normalized: 'c7@cust.example' }).returning('id'));
      await db('attributions').insert({ customer_id: c, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c7', attributed_at: '2024-11-01T00:00:00Z' });
      const sub = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: 'sub_7', customer_id: c, plan_interval: 'month', status: 'active', currency: 'USD' }).returning('id'));
      await db('billing_events').insert(eventRow({ ext: 'ch_c7', customerId: c, subId: sub, at: '2024-11-05T12:00:00Z', amount: 200_000 }));
    }, at('2025-03-13T00:00:00Z'));
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    // A renewal together with a refund of an earlier payment: not append-only (the refund is old input's).
    s = await step(async (db) => {
      await db('billing_events').insert(eventRow({ ext: 'ch_ren4', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2025-03-12T12:00:00Z', amount: 10_000 }));
      await db('billing_events').insert(eventRow({ ext: 're_ren1', kind: 'refund', customerId: ids.c1, paymentId: ids.p1, at: '2025-03-12T13:00:00Z', amount: 1_000 }));
    }, at('2025-03-13T00:00:00Z'));
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 0]);
    const f = await computeAndStore(inc.db, config, at('2025-03-13T00:00:00Z'), { full: true });
    expect([f.written, f.deleted]).toEqual([0, 0]);
  });

  it('append-only partners load only recent history, and still see what older history decides', async () => {
    // A gets C8 (sub_8, first paid 2024-01-05: long before any load window) and C9 (paid 2024-04-10,
    // inside the tier window of a payment on 2025-03-09: with C1's p1 it makes A Tier 1 then).
    let s = await step(async (db) => {
      for (const [key, sub, at] of [['c8', 'sub_8', '2024-01-05T12:00:00Z'], ['c9', 'sub_9', '2024-04-10T12:00:00Z']] as const) {
        const c = await one(db('customers').insert({ customer_key: key, email: `${key}@cust.example`, email_normalized: `${key}@cust.example` }).returning('id'));
        await db('attributions').insert({ customer_id: c, partner_account_id: ids.accA, connection: 'partnerstack', network: 'partnerstack', source_ref: `att-${key}`, attributed_at: '2023-12-20T00:00:00Z' });
        const sid = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: sub, customer_id: c, plan_interval: 'month', status: 'active', currency: 'USD' }).returning('id'));
        await db('billing_events').insert(eventRow({ ext: `ch_${key}`, customerId: c, subId: sid, at, amount: 10_000 }));
      }
    }, AS_OF);
    expect(s.mode).toBe('full');
    // A renewal of sub_8 after all of A's history: computed from a window that starts ~13 months
    // earlier, so sub_8's first payment (2024-01-05) is outside it — it is loaded with the
    // subscription's other payments, so the renewal is not taken for the first qualified payment;
    // C9's sale (2024-04-10) is inside the tier window (Tier 1 with C1, not Referral).
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_r8', customerId: (await db('customers').where('customer_key', 'c8').first('id')).id, subId: await subOf(db, 'sub_8'), at: '2025-03-09T12:00:00Z', amount: 10_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 2]);
    const row = await inc.db('computed_commissions').where('commission_key', 'like', 'direct:%').whereIn('payment_event_id', inc.db('billing_events').where('external_id', 'ch_r8').select('id')).first();
    expect([row.tier, String(Number(row.rate)), Number(row.amount_minor)]).toEqual(['tier1', '0.2', 2_000]); // 10,000 × 0.20
    expect(row.explanation.firstQualifiedPaymentOfSubscription).toBe(false);
    // A renewal of sub_9 dated just BEFORE ch_r8: the rows of ch_r8 are recomputed too (from a
    // window starting ~13 months before 2025-03-08, without sub_8's first payment) — sub_8's
    // payments are loaded as those of a subscription paid in the recomputed range, so ch_r8 is
    // still not taken for sub_8's first qualified payment.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_r9', customerId: (await db('customers').where('customer_key', 'c9').first('id')).id, subId: await subOf(db, 'sub_9'), at: '2025-03-08T12:00:00Z', amount: 10_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    expect(s.computed).toBeGreaterThan(2);
  });

  it('new payments in the middle of a partner\'s history recompute its rows from the first of them on', async () => {
    expect((await step(null, AS_OF)).mode).toBe('full');
    let s: ComputeSummary;
    const rowOf = async (ext: string, kind = 'direct') =>
      inc.db('computed_commissions').where('kind', kind).where((q) => (kind === 'clawback' ? q.where('clawback_of', 'direct') : q)).whereIn('payment_event_id', inc.db('billing_events').where('external_id', ext).select('id')).first();
    expect(await rowOf('ch_p1', 'clawback')).toBeDefined(); // p1 (first of sub_1, Referral 100%) has a direct clawback for re1
    // A payment of sub_1 BEFORE p1: it becomes sub_1's first qualified payment, so p1 is a renewal
    // at Referral tier → 0 (referral_tier_renewal), and p1's clawback row disappears. Everything of
    // A's from 2024-12-20 on is recomputed; rows before it are left as they are.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_b1', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2024-12-20T12:00:00Z', amount: 10_000 })), AS_OF);
    expect([s.mode, s.partners, s.appendOnlyPartners]).toEqual(['incremental', 1, 1]);
    expect(s.deleted).toBeGreaterThan(0);
    expect((await rowOf('ch_p1')).exclusion_reason).toBe('referral_tier_renewal');
    expect(await rowOf('ch_p1', 'clawback')).toBeUndefined();
    // A tier boundary crossed from the past: two fresh customers of A paid $600 each in October
    // 2024 (cleared by December). From then on A has 2 distinct customers and $1,200 > $1,000 in
    // its window: the later payments move from Referral to Tier 2.
    const before = (await rowOf('ch_p2')).tier;
    s = await step(async (db) => {
      for (const [key, at] of [['c11', '2024-10-01T12:00:00Z'], ['c12', '2024-10-02T12:00:00Z']] as const) {
        const c = await one(db('customers').insert({ customer_key: key, email: `${key}@cust.example`, email_normalized: `${key}@cust.example` }).returning('id'));
        await db('attributions').insert({ customer_id: c, partner_account_id: ids.accA, connection: 'partnerstack', network: 'partnerstack', source_ref: `att-${key}`, attributed_at: '2024-09-20T00:00:00Z' });
        const sid = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: `sub_${key}`, customer_id: c, plan_interval: 'year', status: 'active', currency: 'USD' }).returning('id'));
        await db('billing_events').insert(eventRow({ ext: `ch_${key}`, customerId: c, subId: sid, at, amount: 60_000 }));
      }
    }, AS_OF);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    expect([before, (await rowOf('ch_p2')).tier]).toEqual(['referral', 'tier2']);
    // A refund of the backdated payment, filed after A's latest payments, plus a new renewal: not
    // append-only (the refund is old input's), A whole — still equal.
    s = await step(async (db) => {
      await db('billing_events').insert(eventRow({ ext: 'ch_ren9', customerId: ids.c1, subId: await subOf(db, 'sub_1'), at: '2025-03-09T12:00:00Z', amount: 10_000 }));
      await db('billing_events').insert(eventRow({ ext: 're_b1', kind: 'refund', customerId: ids.c1, paymentId: await one(db('billing_events').where('external_id', 'ch_b1').select('id')), at: '2025-03-09T13:00:00Z', amount: 10_000 }));
    }, AS_OF);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 0]);
    // Another backdated payment, before a refund filed later (re1, 2025-03-01, of p1) and the
    // renewal ch_ren9: the range from 2025-02-20 on holds ch_ren9 (not p1 nor its refund); still equal.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_b2', customerId: ids.c2, subId: await subOf(db, 'sub_2'), at: '2025-02-20T12:00:00Z', amount: 120_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    const f = await computeAndStore(inc.db, config, AS_OF, { full: true });
    expect([f.written, f.deleted]).toEqual([0, 0]);
  });

  it('append-only partners read earlier sales from the stored tier facts: refunds, disputes, window exits, tier boundaries, back-dated payments', async () => {
    // A's earlier sales (2024), each a way the stored facts could be read wrong:
    //   c20 $600 2024-02-10          leaves the tier window before 2025-03 (counted: Tier 2)
    //   c21 $400 2024-05-01          refunded $200 on 2024-05-20 (not subtracted: Tier 2)
    //   c22 $700 2024-09-01          disputed 09-20, won 11-20: clears 11-20 instead of 10-16
    //   c23 $300 2024-12-01          refunded in full 12-05: never counts
    const subs: Record<string, number> = {};
    const pay: Record<string, number> = {};
    let s = await step(async (db) => {
      for (const [key, interval, at, amount] of [['c20', 'year', '2024-02-10T12:00:00Z', 60_000], ['c21', 'month', '2024-05-01T12:00:00Z', 40_000], ['c22', 'year', '2024-09-01T12:00:00Z', 70_000], ['c23', 'month', '2024-12-01T12:00:00Z', 30_000]] as const) {
        const c = await one(db('customers').insert({ customer_key: key, email: `${key}@cust.example`, email_normalized: `${key}@cust.example` }).returning('id'));
        await db('attributions').insert({ customer_id: c, partner_account_id: ids.accA, connection: 'partnerstack', network: 'partnerstack', source_ref: `att-${key}`, attributed_at: '2024-01-20T00:00:00Z' });
        subs[key] = await one(db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: `sub_${key}`, customer_id: c, plan_interval: interval, status: 'active', currency: 'USD' }).returning('id'));
        pay[key] = await one(db('billing_events').insert(eventRow({ ext: `ch_${key}`, customerId: c, subId: subs[key], at, amount })).returning('id'));
      }
      await db('billing_events').insert(eventRow({ ext: 're_c21', kind: 'refund', customerId: null, paymentId: pay.c21!, at: '2024-05-20T12:00:00Z', amount: 20_000 }));
      await db('billing_events').insert(eventRow({ ext: 'dp_c22', kind: 'dispute_opened', customerId: null, paymentId: pay.c22!, at: '2024-09-20T12:00:00Z', amount: 70_000 }));
      await db('billing_events').insert(eventRow({ ext: 'dw_c22', kind: 'dispute_won', customerId: null, paymentId: pay.c22!, at: '2024-11-20T12:00:00Z', amount: 70_000 }));
      await db('billing_events').insert(eventRow({ ext: 're_c23', kind: 'refund', customerId: null, paymentId: pay.c23!, at: '2024-12-05T12:00:00Z', amount: 30_000 }));
    }, AS_OF);
    expect(s.mode).toBe('full');
    const customerOf = async (db: Knex, key: string): Promise<number> => Number((await db('customers').where('customer_key', key).first('id')).id);
    const directOf = async (ext: string) => inc.db('computed_commissions').where('kind', 'direct').whereIn('payment_event_id', inc.db('billing_events').where('external_id', ext).select('id')).first();

    // A renewal of c21 on 2025-03-05, after all of A's history. Counted then: c21 $200, c22 $700,
    // p1 $75 (re1 on 03-01) = $975 → Tier 1 (p2 clears 03-18; c20 left the window on 03-05's start).
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_c21_r', customerId: await customerOf(db, 'c21'), subId: subs.c21!, at: '2025-03-05T12:00:00Z', amount: 40_000 })), AS_OF);
    expect([s.partners, s.appendOnlyPartners, s.computed]).toEqual([1, 1, 2]);
    expect(s.payments).toBeLessThanOrEqual(2); // the renewal and its subscription's first payment, not A's history
    const r1 = await directOf('ch_c21_r');
    expect([r1.tier, r1.explanation.tier.revenueUsdMinor, r1.explanation.tier.distinctCustomers]).toEqual(['tier1', 97_500, 3]);

    // asOf moves past p2's clearing: a renewal of c22 on 03-20 counts p2 too ($2,175) → Tier 2.
    const later = at('2025-03-25T00:00:00Z');
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_c22_r', customerId: await customerOf(db, 'c22'), subId: subs.c22!, at: '2025-03-20T12:00:00Z', amount: 70_000 })), later);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    expect((await directOf('ch_c22_r')).tier).toBe('tier2');

    // A back-dated renewal of c20 (2024-06-01): every payment of A from then on is recomputed, with
    // the sales before it read from the stored facts.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_c20_b', customerId: await customerOf(db, 'c20'), subId: subs.c20!, at: '2024-06-01T12:00:00Z', amount: 60_000 })), later);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);
    expect(s.computed).toBeGreaterThan(2);

    // A refund inside the window of an earlier sale (c22's): not append-only, A whole.
    s = await step((db) => db('billing_events').insert(eventRow({ ext: 're_c22', kind: 'refund', customerId: null, paymentId: pay.c22!, at: '2025-03-21T12:00:00Z', amount: 35_000 })), later);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 0]);
    // ... and a renewal after it reads the refund from the facts the whole recompute wrote.
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_c21_r2', customerId: await customerOf(db, 'c21'), subId: subs.c21!, at: '2025-03-22T12:00:00Z', amount: 40_000 })), later);
    expect([s.partners, s.appendOnlyPartners]).toEqual([1, 1]);

    // A program change recomputes in full (facts rewritten under the new program); appends read those.
    const changed = structuredClone(await loadProgramVersions(config)) as ProgramVersion[];
    for (const v of changed) for (const t of v.tiers) if (t.revenueOverUsd !== null) (t as { revenueOverUsd: number }).revenueOverUsd = Math.floor(t.revenueOverUsd / 2);
    s = await step(null, later, { programVersions: changed });
    expect([s.mode, s.fullReason]).toEqual(['full', 'program definition changed']);
    s = await step(async (db) => db('billing_events').insert(eventRow({ ext: 'ch_c22_r2', customerId: await customerOf(db, 'c22'), subId: subs.c22!, at: '2025-03-23T12:00:00Z', amount: 70_000 })), later, { programVersions: changed });
    expect([s.mode, s.partners, s.appendOnlyPartners]).toEqual(['incremental', 1, 1]);
    const f = await computeAndStore(inc.db, config, later, { full: true, programVersions: changed });
    expect([f.written, f.deleted]).toEqual([0, 0]);
  });

  it('upserts from a re-sync that change nothing do not rewrite rows (written 0)', async () => {
    await step(null, AS_OF);
    // The same refund re-upserted by a look-back rescan: a new change_seq, same content.
    const s = await step(
      (db) =>
        db.transaction((trx) =>
          upsertBillingEvents(trx, [{ connection: 'stripe', billingSystem: 'stripe', kind: 'refund', externalId: 're_1', documentId: 're_1', customerId: null, paymentExternalId: 'ch_p1', occurredAt: new Date('2025-03-01T12:00:00Z'), amountMinor: 2_500, currency: 'USD', amountUsdMinor: 2_500 }]),
        ),
      AS_OF,
    );
    expect([s.mode, s.partners, s.written, s.deleted]).toEqual(['incremental', 1, 0, 0]);
  });
});
