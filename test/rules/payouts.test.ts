import { describe, expect, test } from 'vitest';
import { buildPayoutStatements } from '../../src/rules/payouts.ts';
import { Scenario, tiersOnly } from './helpers.ts';

// A: $20.00 on Jan 3 (Referral 100% → 2000, clears 02-17 → payout 03-15) and
//    $10.00 on Feb 3 (Referral 100%, p1 not cleared yet → 1000, clears 03-20 → payout 04-15).
const scenario = (partnerExtra = {}, network: 'partnerstack' | 'shareasale' | 'awin' = 'partnerstack') =>
  new Scenario().partner('A', partnerExtra, network).customer('c1', 'A').customer('c2', 'A').pay('p1', 'c1', '2025-01-03', 2000).pay('p2', 'c2', '2025-02-03', 1000);

describe('R9 payout statements', () => {
  test('below $25 on PartnerStack: carried forward, then paid with the next month', () => {
    const rows = scenario().compute('2025-04-20');
    const [mar] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-03-15', programVersions: tiersOnly });
    // 2000 < 2500 minimum → carried forward
    expect(mar).toMatchObject({ partnerId: 'A', network: 'partnerstack', status: 'carried_forward', reasons: ['below_minimum'], minimumUsdMinor: 2500, carriedInUsdMinor: 0, newUsdMinor: 2000, balanceUsdMinor: 2000, payableUsdMinor: 0, carriedOutUsdMinor: 2000 });
    const [apr] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    // carried in 2000 + new 1000 = 3000 ≥ 2500 → payable
    expect(apr).toMatchObject({ status: 'payable', reasons: [], carriedInUsdMinor: 2000, newUsdMinor: 1000, balanceUsdMinor: 3000, payableUsdMinor: 3000, carriedOutUsdMinor: 0, projected: false });
    expect(apr!.lines.map((l) => l.key)).toEqual(['direct:p1:A', 'direct:p2:A']);
  });

  test('ShareASale minimum $50: 3000 is still carried forward', () => {
    const rows = scenario({}, 'shareasale').compute('2025-04-20');
    const [apr] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(apr).toMatchObject({ network: 'shareasale', status: 'carried_forward', minimumUsdMinor: 5000, balanceUsdMinor: 3000 });
  });

  test('paid rows are not paid twice', () => {
    const rows = scenario().compute('2025-04-20', tiersOnly, { paidCommissionKeys: ['direct:p1:A'] });
    const [apr] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(apr).toMatchObject({ carriedInUsdMinor: 0, newUsdMinor: 1000, status: 'carried_forward' });
  });

  test('missing tax info or payout method (explicit false) blocks; null does not', () => {
    const rows = scenario().compute('2025-04-20');
    const blocked = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A', taxInfoOnFile: false, payoutMethodOnFile: false }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(blocked[0]).toMatchObject({ status: 'blocked', reasons: ['missing_tax_info', 'missing_payout_method'], payableUsdMinor: 0, carriedOutUsdMinor: 3000 });
    const unknown = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A', taxInfoOnFile: null, payoutMethodOnFile: null }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(unknown[0]!.status).toBe('payable');
  });

  test('a clawback alone gives a negative balance, carried forward', () => {
    // 10000 paid in March; refund 4000 on 03-05 → clawback −4000, payout 04-15.
    const rows = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('r1', 'refund', 'p1', '2025-03-05', 4000).compute('2025-04-20', tiersOnly, { paidCommissionKeys: ['direct:p1:A'] });
    const [apr] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(apr).toMatchObject({ status: 'carried_forward', reasons: ['negative_balance'], balanceUsdMinor: -4000, carriedOutUsdMinor: -4000 });
  });

  test('a statement for a future date is marked projected', () => {
    const rows = scenario().compute('2025-03-01'); // p2 still in reserve, payout 04-15
    const [apr] = buildPayoutStatements({ commissions: rows, partners: [{ id: 'A' }], payoutDate: '2025-04-15', programVersions: tiersOnly });
    expect(apr).toMatchObject({ projected: true, balanceUsdMinor: 3000 });
  });
});
