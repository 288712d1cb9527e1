import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation, storedStats, STORED_PARTNER_TOTALS, type TotalsRow } from '../../src/reconcile/run.ts';
import { decideDiscrepancies, listDiscrepancies } from '../../src/reconcile/discrepancies.ts';
import { standardWorld } from './world.ts';
import { loadChangeCursor, saveChangeCursor } from '../../src/db/changes.ts';

const config = configSchema.parse({});
const now = new Date('2025-03-01T00:00:00Z');

describe('reconciliation run', () => {
  const t = useTestDb();

  it('finds each discrepancy kind with the right amount and nothing else', async () => {
    const { partners, accounts } = await standardWorld(t.db);
    const s = await runReconciliation({ db: t.db, config }, { now });
    expect(s.status).toBe('succeeded');
    const list = await listDiscrepancies(t.db);
    const got = list.map((d) => ({ kind: d.kind, key: d.computedCommissionKey, usd: d.usdAtStakeMinor, reason: (d.detail.reason as string | undefined) ?? null })).sort((a, b) => (`${a.kind}|${a.key ?? ''}` < `${b.kind}|${b.key ?? ''}` ? -1 : 1));
    expect(got).toEqual([
      // 6000 reported − 3000 owed = 3000 over
      { kind: 'amount_mismatch', key: 'cc-4-d', usd: 3000, reason: null },
      // rw-9: click 2024-12-17, sign-up (payment) 2025-01-26 = 40 days > 30
      { kind: 'attribution_window_exceeded', key: 'cc-9-d', usd: 0, reason: null },
      // second reward on in_8: 1200
      { kind: 'duplicate_in_network', key: 'cc-8-d', usd: 1200, reason: null },
      // 20% × $200.00 = 4000 never reported
      { kind: 'missing_in_network', key: 'cc-2-d', usd: 4000, reason: null },
      // 20% × $80.00 = 1600 credited to bob instead of alice
      { kind: 'partner_mismatch', key: 'cc-7-d', usd: 1600, reason: null },
      // refunded in full, network approved 2000
      { kind: 'status_mismatch', key: 'cc-5-d', usd: 2000, reason: 'network_approved_billing_refunded' },
      // declined, but 20% × $50.00 = 1000 owed
      { kind: 'status_mismatch', key: 'cc-6-d', usd: 1000, reason: 'network_declined_owed' },
      { kind: 'unexpected_in_network', key: null, usd: 500, reason: 'no_matching_payment' },
      { kind: 'unexpected_in_network', key: 'cc-11-d', usd: 2000, reason: 'self_referral' },
      { kind: 'unexpected_in_network', key: 'cc-3-d', usd: 40, reason: 'trial_charge' },
    ]);
    expect(s.new).toBe(10);
    expect(s.byKind).toMatchObject({ missing_in_network: 1, status_mismatch: 2, unexpected_in_network: 3 });
    const pm = list.find((d) => d.kind === 'partner_mismatch')!;
    expect(pm.partnerId).toBe(partners.A);
    expect(pm.detail.reportedPartnerId).toBe(partners.B);
    const missing = list.find((d) => d.kind === 'missing_in_network')!;
    expect(missing.connection).toBe('ps');
    expect(missing.partnerAccountId).toBe(accounts.accA);
    expect(missing.billingEventId).not.toBeNull();
    expect(missing.period).toBe('2025-01');
    // severity from USD at stake: 4000 ≥ 1000 (medium) and < 10000 (high)
    expect(missing.severity).toBe('medium');
    expect(list.find((d) => d.kind === 'attribution_window_exceeded')!.severity).toBe('info');

    // Totals, partnerstack, January. reported (not declined): 2000+1000+40+6000+2000+1600+1200+1200+500+2000 = 17540
    // owed: 2000+1000+4000+0+3000+0+1000+1600+1200+0 = 13800; delta 3740
    // collected (direct rows): 10000+20000+100+15000+(10000−10000)+5000+8000+6000+10000 = 74100
    const ps = s.totals.byNetwork.find((r) => r.network === 'partnerstack')!;
    expect(ps).toMatchObject({ reportedUsdMinor: 17540, owedUsdMinor: 13800, deltaUsdMinor: 3740, collectedUsdMinor: 74100 });
    const bob = s.totals.byPartner.find((r) => r.partnerName === 'bob')!;
    expect(bob).toMatchObject({ reportedUsdMinor: 1600, owedUsdMinor: 0, deltaUsdMinor: 1600 });
  });

  it('stores a bounded summary on the run row: every network, the partners with the largest differences', async () => {
    await standardWorld(t.db);
    const s = await runReconciliation({ db: t.db, config }, { now });
    const row = await t.db('reconciliation_runs').where({ id: s.runId }).first('stats');
    const stats = (typeof row.stats === 'string' ? JSON.parse(row.stats) : row.stats) as { totals: { byNetwork: unknown[]; byPartner: unknown[]; byPartnerCount: number }; found: number };
    expect(stats.found).toBe(s.found);
    expect(stats.totals.byNetwork).toEqual(JSON.parse(JSON.stringify(s.totals.byNetwork)));
    expect(stats.totals.byPartnerCount).toBe(s.totals.byPartner.length);

    const partner = (i: number, delta: number): TotalsRow => ({ key: `p${i}`, network: 'partnerstack', partnerId: i, partnerName: `p${i}`, reportedUsdMinor: delta, owedUsdMinor: 0, collectedUsdMinor: 0, deltaUsdMinor: delta });
    // 150 partners, deltas ±i: the 100 kept are those with |delta| 51..150, largest first.
    const many = { ...s, totals: { byNetwork: s.totals.byNetwork, byPartner: Array.from({ length: 150 }, (_, i) => partner(i + 1, (i % 2 ? -1 : 1) * (i + 1))) } };
    const kept = storedStats(many).totals as { byPartner: TotalsRow[]; byPartnerCount: number };
    expect(kept.byPartnerCount).toBe(150);
    expect(kept.byPartner).toHaveLength(STORED_PARTNER_TOTALS);
    expect(kept.byPartner.map((p) => Math.abs(p.deltaUsdMinor))).toEqual(Array.from({ length: 100 }, (_, i) => 150 - i));
  });

  it('a cursor written by another state version (other row signatures) makes the next run a full one', async () => {
    await standardWorld(t.db);
    await runReconciliation({ db: t.db, config }, { now });
    expect((await runReconciliation({ db: t.db, config }, { now })).mode).toBe('incremental');
    const cur = await loadChangeCursor(t.db, 'reconcile');
    await saveChangeCursor(t.db, 'reconcile', cur!.changeSeq, { ...cur!.state, v: 1 });
    const s = await runReconciliation({ db: t.db, config }, { now });
    expect(s).toMatchObject({ mode: 'full', fullReason: 'cursor state from another version', new: 0, stillOpen: 10, resolved: 0 });
    expect((await runReconciliation({ db: t.db, config }, { now })).mode).toBe('incremental');
  });

  it('keeps identity across runs: nothing new, fixed ones resolve, ignored and approved keep their decision', async () => {
    const { w, accounts, customers } = await standardWorld(t.db);
    await runReconciliation({ db: t.db, config }, { now });
    const first = await listDiscrepancies(t.db);
    const again = await runReconciliation({ db: t.db, config }, { now });
    expect(again.new).toBe(0);
    expect(again.stillOpen).toBe(10);
    expect(again.resolved).toBe(0);

    const byKind = (k: string) => first.find((d) => d.kind === k)!;
    await decideDiscrepancies(t.db, [byKind('partner_mismatch').id], 'ignore', { reason: 'bob and alice share an agency' });
    await decideDiscrepancies(t.db, [byKind('duplicate_in_network').id], 'approve');
    await expect(decideDiscrepancies(t.db, [byKind('amount_mismatch').id], 'ignore')).rejects.toThrow(/reason/);

    // The network fixes the amount and reports the missing reward.
    await t.db('network_commissions').where({ external_id: 'rw-4' }).update({ amount_minor: 3000, amount_usd_minor: 3000 });
    await w.network({ id: 'rw-2', connection: 'ps', network: 'partnerstack', accountId: accounts.accA, customerId: customers[1]!, tx: 'in_2', amountMinor: 4000, at: '2025-01-10T10:02:00Z' });
    const third = await runReconciliation({ db: t.db, config }, { now });
    expect(third.new).toBe(0);
    expect(third.resolved).toBe(2);
    const after = await listDiscrepancies(t.db);
    expect(after.find((d) => d.kind === 'amount_mismatch')!.status).toBe('resolved');
    expect(after.find((d) => d.kind === 'missing_in_network')!.status).toBe('resolved');
    expect(after.find((d) => d.kind === 'partner_mismatch')!.status).toBe('ignored');
    expect(after.find((d) => d.kind === 'partner_mismatch')!.reason).toBe('bob and alice share an agency');
    expect(after.find((d) => d.kind === 'duplicate_in_network')!.status).toBe('approved');

    // It breaks again: the same discrepancy is reopened (same id), reported as new once.
    await t.db('network_commissions').where({ external_id: 'rw-4' }).update({ amount_minor: 6000, amount_usd_minor: 6000 });
    const fourth = await runReconciliation({ db: t.db, config }, { now });
    expect(fourth.new).toBe(1);
    expect(fourth.newIds).toEqual([byKind('amount_mismatch').id]);
  });

  it('scopes by period and network, and respects tolerance and grace', async () => {
    await standardWorld(t.db);
    const feb = await runReconciliation({ db: t.db, config }, { now, period: '2025-02' });
    expect(feb.found).toBe(0);
    const awin = await runReconciliation({ db: t.db, config }, { now, period: '2025-01', network: 'awin' });
    expect(awin.found).toBe(1);
    // 3000 over on 3000 owed is within a 100% relative tolerance; a payment 1 day old is not missing yet.
    const lenient = configSchema.parse({ reconcile: { tolerance: { partnerstack: { absMinor: 0, relative: 1 } } } });
    const s = await runReconciliation({ db: t.db, config: lenient }, { now: new Date('2025-01-11T10:00:00Z'), network: 'partnerstack' });
    const kinds = (await listDiscrepancies(t.db, { status: ['open'], network: 'partnerstack' })).map((d) => d.kind);
    expect(kinds).not.toContain('amount_mismatch');
    expect(kinds).not.toContain('missing_in_network');
    expect(s.resolved).toBe(0);
  });
});
