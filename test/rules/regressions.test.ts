// Review regressions: each figure worked by hand from R1–R11 (arithmetic in the comments), never
// recomputed with the engine's own helpers.
import { describe, expect, test } from 'vitest';
import { buildPayoutStatements } from '../../src/rules/payouts.ts';
import { row, Scenario, tiersOnly } from './helpers.ts';

describe('R8/R10 clawbacks round the refunded share half away from zero', () => {
  test('second tier: half of a $1.001 commission taken back is −$5.01, not −$5.00', () => {
    // A (recruited by R) sells a monthly plan: $100.10 on 2025-01-03, clears 2025-02-17.
    //   A direct, Referral monthly first payment: 10010 × 1.00 = 10010
    //   R second tier: 10010 × 0.10 = 1001.0 = 1001
    // Refund 5005 on 2025-03-01 (after clearing) → clawbacks for the refunded share:
    //   A: −ROUND(10010 × 5005/10010) = −5005
    //   R: −ROUND(1001 × 5005/10010) = −ROUND(500.5) = −501 (half away from zero)
    // Refund the other 5005 on 2025-03-02: R's cumulative share ROUND(1001 × 10010/10010) = 1001,
    //   so −(1001 − 501) = −500; −501 − 500 = −1001 nets R's commission to exactly 0.
    const rows = new Scenario()
      .partner('R')
      .partner('A', { recruiterPartnerId: 'R' })
      .customer('c1', 'A')
      .pay('p1', 'c1', '2025-01-03', 10010)
      .adjust('r1', 'refund', 'p1', '2025-03-01', 5005)
      .adjust('r2', 'refund', 'p1', '2025-03-02', 5005)
      .compute('2025-03-03');
    expect(row(rows, 'second_tier:p1:R')).toMatchObject({ amountMinor: 1001, status: 'due' });
    expect(row(rows, 'clawback:second_tier:r1:R')).toMatchObject({ amountMinor: -501, amountUsdMinor: -501 });
    expect(row(rows, 'clawback:second_tier:r2:R')).toMatchObject({ amountMinor: -500, amountUsdMinor: -500 });
    expect(row(rows, 'clawback:direct:r1:A')).toMatchObject({ amountMinor: -5005, amountUsdMinor: -5005 });
    expect(row(rows, 'clawback:direct:r2:A')).toMatchObject({ amountMinor: -5005, amountUsdMinor: -5005 });
  });

  test('EUR payment: the USD clawback −216.5 rounds to −217', () => {
    // Annual plan, €20.00 (2000 EUR cents) settled at $21.66 (2166 USD cents) on 2025-01-03.
    //   Referral annual first payment 20%: 2000 × 0.20 = 400 EUR; USD ROUND(2166 × 0.20 = 433.2) = 433
    // Refund €10.00 (1000) on 2025-03-01, after clearing on 2025-02-17:
    //   EUR −ROUND(400 × 1000/2000) = −200; USD −ROUND(433 × 1000/2000) = −ROUND(216.5) = −217
    const rows = new Scenario()
      .partner('A')
      .customer('y', 'A', 'year')
      .pay('p', 'y', '2025-01-03', 2000, { currency: 'EUR', usdMinor: 2166 })
      .adjust('r', 'refund', 'p', '2025-03-01', 1000)
      .compute('2025-03-02');
    expect(row(rows, 'direct:p:A')).toMatchObject({ amountMinor: 400, amountUsdMinor: 433 });
    expect(row(rows, 'clawback:direct:r:A')).toMatchObject({ amountMinor: -200, amountUsdMinor: -217 });
  });

  test('after a reduction before clearing, a full refund after clearing nets the row to 0', () => {
    // Annual plan $0.14 (14 cents) on 2025-01-03: Referral annual 20% → ROUND(2.8) = 3.
    // Refund 7 on 2025-01-10 (before clearing): 3 × (1 − 7/14) = 1.5 → 2 paid on the row.
    // Refund the other 7 on 2025-03-01 (after clearing): refunded share after clearing
    //   ROUND(3 × 7/14) = ROUND(1.5) = 2 → −2; row 2 − 2 = 0.
    const rows = new Scenario()
      .partner('A')
      .customer('y', 'A', 'year')
      .pay('p', 'y', '2025-01-03', 14)
      .adjust('r1', 'refund', 'p', '2025-01-10', 7)
      .adjust('r2', 'refund', 'p', '2025-03-01', 7)
      .compute('2025-03-02');
    expect(row(rows, 'direct:p:A')).toMatchObject({ amountMinor: 2, status: 'due' });
    expect(row(rows, 'clawback:direct:r2:A').amountMinor).toBe(-2);
  });
});

describe('R8 a lost dispute written as chargeback + dispute_lost (Stripe) takes the money back once', () => {
  // Stripe's mapping writes a lost dispute as two events on the dispute's document, same amount.
  const disputed = () =>
    new Scenario()
      .partner('R')
      .partner('A', { recruiterPartnerId: 'R' })
      .customer('c1', 'A')
      .customer('c2', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000); // Referral monthly: A 10000 × 1.00 = 10000; R 10000 × 0.10 = 1000

  test('partial dispute opened before clearing, lost: reduced by 4000 of 10000, not 8000', () => {
    // Held from 01-20 until the loss on 03-10 (normal clearing 02-17) → lost at clearing = refund
    // before clearing: A 10000 × (1 − 4000/10000) = 6000; R 1000 × (1 − 4000/10000) = 600.
    // Cleared 03-10 → payout 04-15.
    const rows = disputed()
      .adjust('o', 'dispute_opened', 'p1', '2025-01-20', 4000, { documentId: 'dp_1' })
      .adjust('cb', 'chargeback', 'p1', '2025-03-10', 4000, { documentId: 'dp_1' })
      .adjust('l', 'dispute_lost', 'p1', '2025-03-10', 4000, { documentId: 'dp_1' })
      .compute('2025-03-11');
    expect(row(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 6000, status: 'due', payoutDate: '2025-04-15' });
    expect(row(rows, 'second_tier:p1:R')).toMatchObject({ amountMinor: 600 });
    expect(rows.some((r) => r.kind === 'clawback')).toBe(false);
  });

  test('partial dispute opened after clearing, lost: one clawback of the 3000 share', () => {
    // Cleared 02-17 with 10000 / 1000. Dispute of 3000 opened 03-01, lost 03-20:
    //   A −ROUND(10000 × 3000/10000) = −3000; R −ROUND(1000 × 3000/10000) = −300; payout 04-15.
    const rows = disputed()
      .adjust('o', 'dispute_opened', 'p1', '2025-03-01', 3000, { documentId: 'dp_2' })
      .adjust('cb', 'chargeback', 'p1', '2025-03-20', 3000, { documentId: 'dp_2' })
      .adjust('l', 'dispute_lost', 'p1', '2025-03-20', 3000, { documentId: 'dp_2' })
      .compute('2025-03-21');
    const claws = rows.filter((r) => r.kind === 'clawback');
    expect(claws.map((r) => [r.key, r.amountMinor, r.payoutDate])).toEqual([
      ['clawback:direct:cb:A', -3000, '2025-04-15'],
      ['clawback:second_tier:cb:R', -300, '2025-04-15'],
    ]);
  });

  test('the tier counts the disputed sale net of one take-back', () => {
    // p1 $100.00 loses a $40.00 dispute before clearing (cleared 03-10, net $60.00);
    // p2 $50.00 from c2 on 2025-01-05 clears 02-19. On 2025-04-01 both counted: 2 customers,
    // $60 + $50 = $110 → Tier 1. (Counting the loss twice would leave $20 + $50.)
    const rows = disputed()
      .customer('c3', 'A')
      .pay('p2', 'c2', '2025-01-05', 5000)
      .adjust('o', 'dispute_opened', 'p1', '2025-01-20', 4000, { documentId: 'dp_1' })
      .adjust('cb', 'chargeback', 'p1', '2025-03-10', 4000, { documentId: 'dp_1' })
      .adjust('l', 'dispute_lost', 'p1', '2025-03-10', 4000, { documentId: 'dp_1' })
      .pay('p3', 'c3', '2025-04-01', 10000) // Tier 1: 10000 × 0.20 = 2000
      .compute('2025-04-02');
    expect(row(rows, 'direct:p3:A')).toMatchObject({ tier: 'tier1', amountMinor: 2000 });
    expect(row(rows, 'direct:p3:A').explanation['tier']).toMatchObject({ distinctCustomers: 2, revenueUsdMinor: 11000 });
  });
});

test('R5 a first payment is priced by the plan it paid for, not the plan the subscription switched to', () => {
  // Monthly first payment $49.00 on 2025-01-03 at Referral → 4900 × 1.00 = 4900.
  // The subscription is annual today (switched later); the $490.00 annual renewal on 2025-02-03 is
  // a later payment at Referral (nothing cleared yet) → 0, referral_tier_renewal.
  const rows = new Scenario()
    .partner('A')
    .customer('c1', 'A', 'year')
    .pay('p1', 'c1', '2025-01-03', 4900, { planInterval: 'month' })
    .pay('p2', 'c1', '2025-02-03', 49000, { planInterval: 'year' })
    .compute('2025-02-04');
  expect(row(rows, 'direct:p1:A')).toMatchObject({ tier: 'referral', rate: '1.00', amountMinor: 4900 });
  expect(row(rows, 'direct:p2:A')).toMatchObject({ amountMinor: 0, exclusionReason: 'referral_tier_renewal' });
});

test('R9 tax info and payout method block per network: a PartnerStack gap does not block the Awin payout', () => {
  // A sells on Awin only: $30.00 on 2025-01-03 at Referral → 3000, cleared 02-17 → payout 03-15.
  // Awin minimum $20.00: 3000 ≥ 2000 → payable, although A's PartnerStack account reports no tax form.
  const rows = new Scenario().partner('A', {}, 'awin').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 3000).compute('2025-03-01');
  const [st] = buildPayoutStatements({
    commissions: rows,
    partners: [{ id: 'A', taxInfoOnFile: false }],
    payoutDate: '2025-03-15',
    programVersions: tiersOnly,
    accounts: [
      { partnerId: 'A', network: 'partnerstack', taxInfoOnFile: false, payoutMethodOnFile: true },
      { partnerId: 'A', network: 'awin', taxInfoOnFile: true, payoutMethodOnFile: null },
    ],
  });
  expect(st).toMatchObject({ network: 'awin', status: 'payable', reasons: [], balanceUsdMinor: 3000, payableUsdMinor: 3000, minimumUsdMinor: 2000 });
});
