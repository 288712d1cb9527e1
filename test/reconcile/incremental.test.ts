// Incremental reconciliation equals a full one: two identical databases get the same sequence of
// changes; one reconciles incrementally, the other in full each time; after every step the
// discrepancies tables (everything but ids and timestamps) and the run summaries must agree, and the
// incremental run must have evaluated fewer units than the full one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation, type ReconcileSummary } from '../../src/reconcile/run.ts';
import { decideDiscrepancies, detailSql, readDiscrepancyCounts } from '../../src/reconcile/discrepancies.ts';
import { standardWorld, world } from './world.ts';

const config = configSchema.parse({});
type Ids = Awaited<ReturnType<typeof standardWorld>>;

async function snapshot(db: Knex) {
  // The detail as readers see it: the explanation put back from the commission or the kept copy.
  const rows = await db('discrepancies as d').orderBy('fingerprint').select(
    'fingerprint', 'kind', 'severity', 'status', 'network', 'connection', 'partner_id', 'partner_account_id', 'billing_event_id', 'network_commission_id',
    'computed_commission_key', 'period', 'expected_minor', 'reported_minor', 'currency', 'usd_at_stake_minor', 'reason', db.raw(`${detailSql('d')} AS detail`),
  );
  return rows.map((r) => ({ ...r, detail: typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail }));
}

async function fingerprints(db: Knex, ids: number[]): Promise<string[]> {
  return ids.length ? (await db('discrepancies').whereIn('id', ids).select('fingerprint')).map((r) => String(r.fingerprint)).sort() : [];
}

async function keptTotals(db: Knex) {
  const rows = await db('reconcile_totals').where('items', '>', 0).orderBy('key').select('network', 'partner_id', 'items', 'reported_usd_minor', 'owed_usd_minor', 'collected_usd_minor');
  return rows.map((r) => Object.values(r).map(String));
}
async function itemTotals(db: Knex) {
  const r = await db.raw(
    `SELECT network, partner_id, count(*) AS items, sum(reported_usd_minor) AS r, sum(owed_usd_minor) AS o, sum(collected_usd_minor) AS c
       FROM reconcile_items WHERE counted GROUP BY network, partner_id ORDER BY network || '|' || coalesce(partner_id::text, 'null')`,
  );
  return (r.rows as Array<Record<string, unknown>>).map((x) => Object.values(x).map(String));
}

/** The counts kept by difference (migration 015's triggers) and the table's own. */
async function counts(db: Knex) {
  const r = await db.raw(`SELECT kind, status, count(*)::int AS n FROM discrepancies GROUP BY kind, status ORDER BY kind, status`);
  return { kept: await readDiscrepancyCounts(db), actual: r.rows as Array<{ kind: string; status: string; n: number }> };
}

const comparable = (s: ReconcileSummary) => ({ status: s.status, found: s.found, new: s.new, stillOpen: s.stillOpen, resolved: s.resolved, byKind: s.byKind, totals: s.totals });

describe('incremental reconciliation', () => {
  let inc: TestDb;
  let full: TestDb;
  let incIds: Ids;
  let fullIds: Ids;
  beforeAll(async () => {
    inc = await createTestDb();
    full = await createTestDb();
    incIds = await standardWorld(inc.db);
    fullIds = await standardWorld(full.db);
  }, 120_000);
  afterAll(async () => {
    await inc?.destroy();
    await full?.destroy();
  });

  /** Applies the same change to both databases, reconciles each, and compares. */
  async function step(name: string, at: string, change: (db: Knex, ids: Ids) => Promise<unknown>, expectUnits: (incUnits: number, fullUnits: number) => void = (i, f) => expect(i).toBeLessThan(f)) {
    await change(inc.db, incIds);
    await change(full.db, fullIds);
    const now = new Date(at);
    const a = await runReconciliation({ db: inc.db, config }, { now });
    const b = await runReconciliation({ db: full.db, config }, { now, full: true });
    expect(a.mode, name).toBe('incremental');
    expect(b.mode).toBe('full');
    expect(await snapshot(inc.db), name).toEqual(await snapshot(full.db));
    expect(comparable(a), name).toEqual(comparable(b));
    expect(await fingerprints(inc.db, a.newIds), name).toEqual(await fingerprints(full.db, b.newIds));
    expectUnits(a.units, b.units);
    // The totals kept by difference (reconcile_totals) equal the aggregate of the items.
    expect(await keptTotals(inc.db), name).toEqual(await itemTotals(inc.db));
    // So do the discrepancy counts by kind and status (decisions included).
    for (const db of [inc.db, full.db]) {
      const c = await counts(db);
      expect(c.kept, name).toEqual(c.actual);
    }
    return { a, b };
  }

  it('leaves the same discrepancies as a full run after each kind of change', async () => {
    const t0 = new Date('2025-03-01T00:00:00Z');
    const first = await runReconciliation({ db: inc.db, config }, { now: t0 });
    expect(first.mode).toBe('full');
    expect(first.fullReason).toBe('no cursor yet');
    await runReconciliation({ db: full.db, config }, { now: t0, full: true });
    expect(await snapshot(inc.db)).toEqual(await snapshot(full.db));

    // Nothing changed: nothing evaluated, everything still found.
    const idle = await step('no change', '2025-03-01T00:00:00Z', async () => undefined, (i) => expect(i).toBe(0));
    expect(idle.a.found).toBe(10);

    // Decisions carry over (same fingerprints in both databases).
    await step('decisions', '2025-03-01T00:00:00Z', async (db) => {
      const pm = await db('discrepancies').where('kind', 'partner_mismatch').first('id');
      const dup = await db('discrepancies').where('kind', 'duplicate_in_network').first('id');
      await decideDiscrepancies(db, [Number(pm.id)], 'ignore', { reason: 'shared agency' });
      await decideDiscrepancies(db, [Number(dup.id)], 'approve');
    }, (i) => expect(i).toBe(0));

    // New payments and network commissions: a new customer (clean + missing), and a second month for
    // customer 1 (its unit spans two periods) reported 500 short.
    await step('new payments', '2025-03-02T00:00:00Z', async (db, ids) => {
      const w = world(db);
      const c12 = await w.customer('c12');
      const p12 = await w.payment({ id: 'ch_12', invoice: 'in_12', customerId: c12, at: '2025-02-10T10:00:00Z', amountMinor: 10000 });
      await w.computed({ key: 'cc-12-d', partnerId: ids.partners.A, accountId: ids.accounts.accA, network: 'partnerstack', paymentId: p12, amountMinor: 2000, at: '2025-02-10T10:00:00Z' });
      await w.network({ id: 'rw-12', connection: 'ps', network: 'partnerstack', accountId: ids.accounts.accA, customerId: c12, tx: 'in_12', amountMinor: 2000, at: '2025-02-10T10:01:00Z' });
      const c13 = await w.customer('c13');
      const p13 = await w.payment({ id: 'ch_13', invoice: 'in_13', customerId: c13, at: '2025-02-11T10:00:00Z', amountMinor: 30000 });
      await w.computed({ key: 'cc-13-d', partnerId: ids.partners.A, accountId: ids.accounts.accA, network: 'partnerstack', paymentId: p13, amountMinor: 6000, at: '2025-02-11T10:00:00Z' });
      const c1 = ids.customers[0]!;
      const p1b = await w.payment({ id: 'ch_1b', invoice: 'in_1b', customerId: c1, subscriptionId: ids.subs.sub1, at: '2025-02-05T10:00:00Z', amountMinor: 10000 });
      await w.computed({ key: 'cc-1b-d', partnerId: ids.partners.A, accountId: ids.accounts.accA, network: 'partnerstack', paymentId: p1b, amountMinor: 2000, at: '2025-02-05T10:00:00Z' });
      await w.network({ id: 'rw-1b', connection: 'ps', network: 'partnerstack', accountId: ids.accounts.accA, customerId: c1, tx: 'in_1b', amountMinor: 1500, at: '2025-02-05T10:05:00Z' });
    });

    // The network fixes an amount and declines another reward.
    await step('network amount / status change', '2025-03-02T00:00:00Z', async (db) => {
      await db('network_commissions').where({ external_id: 'rw-4' }).update({ amount_minor: 3000, amount_usd_minor: 3000 });
      await db('network_commissions').where({ external_id: 'rw-12' }).update({ status: 'declined' });
    });

    // Only dates move: a reward is re-dated a month after its payment (it leaves the payment's slice),
    // and a payment is re-dated. The row signatures must see dates (a key-sorted stringify saw
    // a Date as {} and skipped both).
    await step('dates only', '2025-03-02T00:00:00Z', async (db) => {
      await db('network_commissions').where({ external_id: 'rw-4' }).update({ occurred_at: '2025-02-20T10:00:00Z' });
      await db('billing_events').where({ external_id: 'ch_6', kind: 'payment' }).update({ occurred_at: '2025-02-25T10:00:00Z' });
    });
    await step('dates back', '2025-03-02T00:00:00Z', async (db) => {
      await db('network_commissions').where({ external_id: 'rw-4' }).update({ occurred_at: '2025-01-15T10:01:00Z' });
      await db('billing_events').where({ external_id: 'ch_6', kind: 'payment' }).update({ occurred_at: '2025-01-20T10:00:00Z' });
    });

    // A refund in full of a clean payment whose reward stays approved.
    await step('refund', '2025-03-03T00:00:00Z', async (db, ids) => {
      await world(db).takeBack({ id: 're_1b', paymentId: ids.payments.p1, at: '2025-01-25T10:00:00Z', amountMinor: 10000, customerId: ids.customers[0]! });
    });

    // Deleted on the network: the partner-mismatched reward disappears → missing.
    await step('deleted on the network', '2025-03-03T00:00:00Z', async (db) => {
      await db('network_commissions').where({ external_id: 'rw-7' }).update({ status: 'deleted' });
    });

    // Recomputed: one commission rewritten (delete + insert, new amount), one updated in place.
    await step('recomputed commissions', '2025-03-03T00:00:00Z', async (db, ids) => {
      await db('computed_commissions').where({ commission_key: 'cc-13-d' }).delete();
      await world(db).computed({ key: 'cc-13-d', partnerId: ids.partners.A, accountId: ids.accounts.accA, network: 'partnerstack', paymentId: await paymentId(db, 'ch_13'), amountMinor: 6500, at: '2025-02-11T10:00:00Z' });
      await db('computed_commissions').where({ commission_key: 'cc-8-d' }).update({ amount_minor: 1300, amount_usd_minor: 1300 });
    });

    // Only explanations change: an open discrepancy's commission (re-evaluated: the detail shows the
    // new one) and the commission of one resolved earlier (cc-13-d's first version was deleted above;
    // rw-7's partner mismatch is resolved: both keep what they showed).
    await step('explanations only', '2025-03-03T00:00:00Z', async (db) => {
      await db('computed_commissions').where({ commission_key: 'cc-4-d' }).update({ explanation: JSON.stringify({ note: 'recomputed cc-4-d' }) });
      await db('computed_commissions').where({ commission_key: 'cc-7-d' }).update({ explanation: JSON.stringify({ note: 'recomputed cc-7-d' }) });
    });

    // Recomputed by the compute, which stores a content_hash with every row: the signature follows
    // the hash (md5 of the explanation only for rows without one). These steps fail if a hashed
    // row's signature is blind to its changes; they do not tell the hash from the md5 (both see them).
    await step('explanations recomputed with a content hash', '2025-03-03T00:00:00Z', async (db) => {
      for (const k of ['cc-4-d', 'cc-7-d']) await db('computed_commissions').where({ commission_key: k }).update({ explanation: JSON.stringify({ note: `hashed ${k}` }), content_hash: `h-${k}-1` });
    });
    await step('explanation and content hash change again', '2025-03-03T00:00:00Z', async (db) => {
      for (const k of ['cc-4-d', 'cc-7-d']) await db('computed_commissions').where({ commission_key: k }).update({ explanation: JSON.stringify({ note: `hashed again ${k}` }), content_hash: `h-${k}-2` });
    });

    // Attribution moved: customer 11's commission now belongs to bob (new key), and a network row
    // moves customer — the second-tier reward of customer 1 is now reported on customer 3, so its
    // old partner (cc-1-s) is left unmatched (found only through the old unit).
    await step('attribution / customer moves', '2025-03-03T00:00:00Z', async (db, ids) => {
      await db('computed_commissions').where({ commission_key: 'cc-11-d' }).delete();
      await world(db).computed({ key: 'cc-11-b', partnerId: ids.partners.B, accountId: ids.accounts.accB, network: 'partnerstack', paymentId: ids.payments.p11, amountMinor: 2000, at: '2025-01-28T10:00:00Z' });
      await db('network_commissions').where({ external_id: 'rw-1s' }).update({ customer_id: ids.customers[2]! });
      await db('network_commissions').where({ external_id: 'rw-10' }).update({ customer_id: ids.customers[1]!, transaction_key: 'in_2', amount_minor: 4000, amount_usd_minor: 4000 });
    });

    // A new partner account with its first sale, reported short: the new account's commissions are
    // seeds through their own change (the account itself is not looked up in computed_commissions).
    await step('new account', '2025-03-03T00:00:00Z', async (db, ids) => {
      const w = world(db);
      const accD = await w.account(ids.partners.B, 'ps', 'partnerstack', 'ps-d');
      const c15 = await w.customer('c15');
      const p15 = await w.payment({ id: 'ch_15', invoice: 'in_15', customerId: c15, at: '2025-02-12T10:00:00Z', amountMinor: 10000 });
      await w.computed({ key: 'cc-15-d', partnerId: ids.partners.B, accountId: accD, network: 'partnerstack', paymentId: p15, amountMinor: 2000, at: '2025-02-12T10:00:00Z' });
      await w.network({ id: 'rw-15', connection: 'ps', network: 'partnerstack', accountId: accD, customerId: c15, tx: 'in_15', amountMinor: 1500, at: '2025-02-12T10:01:00Z' });
    });

    // An account changes hands (no row of the commissions changes).
    await step('account moved to another partner', '2025-03-03T00:00:00Z', async (db, ids) => {
      await db('partner_accounts').where({ id: ids.accounts.accB }).update({ partner_id: ids.partners.A });
    });

    // Time: a payment inside the 72 h grace is not missing yet, and is once now moves on.
    const fresh = async (db: Knex, ids: Ids) => {
      const w = world(db);
      const c14 = await w.customer('c14');
      const p14 = await w.payment({ id: 'ch_14', invoice: 'in_14', customerId: c14, at: '2025-03-03T00:00:00Z', amountMinor: 5000 });
      await w.computed({ key: 'cc-14-d', partnerId: ids.partners.A, accountId: ids.accounts.accA, network: 'partnerstack', paymentId: p14, amountMinor: 1000, at: '2025-03-03T00:00:00Z' });
    };
    const young = await step('young payment', '2025-03-03T12:00:00Z', fresh);
    expect(young.a.byKind.missing_in_network).toBe(3);
    const later = await step('now advances past the grace', '2025-03-10T00:00:00Z', async () => undefined, (i) => expect(i).toBe(1));
    expect(later.a.byKind.missing_in_network).toBe(4);

    // The ignored partner mismatch went away with rw-7 (stale: kept ignored, not counted); a user
    // reopens it — a full run resolves it, so must the incremental one, with nothing else changed.
    const reopened = await step('stale ignored reopened', '2025-03-10T00:00:00Z', async (db) => {
      const pm = await db('discrepancies').where('kind', 'partner_mismatch').first('id', 'status');
      expect(pm.status).toBe('ignored');
      await decideDiscrepancies(db, [Number(pm.id)], 'reopen');
    }, (i) => expect(i).toBe(0));
    expect(reopened.a.resolved).toBe(1);
  }, 600_000);
});

async function paymentId(db: Knex, externalId: string): Promise<number> {
  return Number((await db('billing_events').where({ external_id: externalId, kind: 'payment' }).first('id')).id);
}
