// Hand-worked scenarios for the engine. Expected figures are literals; comments show the arithmetic.
import { describe, expect, test } from 'vitest';
import { computePartnerCommissions, computeCommissionsDetailed } from '../../src/rules/engine.ts';
import { createFxTable } from '../../src/rules/money.ts';
import { d, kartra, row, Scenario, tiersOnly } from './helpers.ts';

const money = (rows: ReturnType<Scenario['compute']>, key: string) => {
  const r = row(rows, key);
  return { tier: r.tier, rate: r.rate, amountMinor: r.amountMinor, amountUsdMinor: r.amountUsdMinor, status: r.status, exclusionReason: r.exclusionReason };
};

describe('R4 tier boundaries (priced from earlier cleared sales)', () => {
  // Two filler customers pay on 2025-01-10 (clear 2025-02-24). A new customer's first monthly
  // payment of $100.00 on 2025-03-10 is priced from those two sales.
  const priceAfter = (a: number, b: number) =>
    new Scenario().partner('A').sales('A', '2025-01-10', [a, b]).customer('c', 'A').pay('p', 'c', '2025-03-10', 10000).compute('2025-06-01');

  test('$1,000.00 exactly is Tier 1 (20%)', () => {
    // 50000 + 50000 = 100000 cents = $1,000.00, not over $1,000 → Tier 1; 10000 × 0.20 = 2000
    expect(money(priceAfter(50000, 50000), 'direct:p:A')).toMatchObject({ tier: 'tier1', rate: '0.20', amountMinor: 2000 });
  });
  test('$1,000.01 is Tier 2 (30%)', () => {
    // 50000 + 50001 = 100001 cents > 100000 → Tier 2; 10000 × 0.30 = 3000
    expect(money(priceAfter(50000, 50001), 'direct:p:A')).toMatchObject({ tier: 'tier2', rate: '0.30', amountMinor: 3000 });
  });
  test('$10,000.00 exactly is Tier 2 (30%)', () => {
    // 500000 + 500000 = 1000000 cents = $10,000.00, not over → Tier 2; 10000 × 0.30 = 3000
    expect(money(priceAfter(500000, 500000), 'direct:p:A')).toMatchObject({ tier: 'tier2', amountMinor: 3000 });
  });
  test('$10,000.01 is Tier 3 (40%)', () => {
    // 500000 + 500001 = 1000001 > 1000000 → Tier 3; 10000 × 0.40 = 4000
    expect(money(priceAfter(500000, 500001), 'direct:p:A')).toMatchObject({ tier: 'tier3', amountMinor: 4000 });
  });
  test('explanation lists the counted sales behind the tier', () => {
    const r = row(priceAfter(50000, 50001), 'direct:p:A');
    expect(r.explanation['tier']).toMatchObject({
      id: 'tier2',
      distinctCustomers: 2,
      revenueUsdMinor: 100001,
      countedSalesTotal: 2,
      countedSalesListed: 2,
      countedSalesColumns: ['paymentEventId', 'customerId', 'usdMinor'],
      countedSales: [
        ['p-fill1', 'fill1', 50000],
        ['p-fill2', 'fill2', 50001],
      ],
    });
  });
  test('the payment being priced and uncleared sales do not count', () => {
    // Fillers on 2025-03-01 clear 2025-04-15, after the 2025-03-10 payment → 0 counted → Referral 100%.
    const rows = new Scenario().partner('A').sales('A', '2025-03-01', [900000, 900000]).customer('c', 'A').pay('p', 'c', '2025-03-10', 10000).compute('2025-06-01');
    expect(money(rows, 'direct:p:A')).toMatchObject({ tier: 'referral', rate: '1.00', amountMinor: 10000 });
  });
});

describe('Referral tier (R5)', () => {
  test("the second customer's sale is still priced at Referral", () => {
    const s = new Scenario()
      .partner('A')
      .customer('c1', 'A')
      .customer('c2', 'A')
      .customer('c3', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000) // nothing counted → Referral: 10000 × 1.00 = 10000
      .pay('p2', 'c2', '2025-03-01', 10000) // p1 cleared 02-17: 1 customer → still Referral: 10000
      .pay('p3', 'c3', '2025-05-01', 10000); // p1 + p2 (cleared 04-15): 2 customers, $200 → Tier 1: 2000
    const rows = s.compute('2025-08-01');
    expect(money(rows, 'direct:p1:A')).toMatchObject({ tier: 'referral', amountMinor: 10000 });
    expect(money(rows, 'direct:p2:A')).toMatchObject({ tier: 'referral', amountMinor: 10000 });
    expect(money(rows, 'direct:p3:A')).toMatchObject({ tier: 'tier1', amountMinor: 2000 });
  });

  test('monthly first payment 100%, annual first payment 20%', () => {
    const rows = new Scenario()
      .partner('A')
      .customer('m', 'A', 'month')
      .customer('y', 'A', 'year')
      .pay('pm', 'm', '2025-01-03', 9900) // 9900 × 1.00 = 9900
      .pay('py', 'y', '2025-01-04', 99000) // 99000 × 0.20 = 19800
      .compute('2025-01-10');
    expect(money(rows, 'direct:pm:A')).toMatchObject({ tier: 'referral', rate: '1.00', amountMinor: 9900, status: 'reserve' });
    expect(money(rows, 'direct:py:A')).toMatchObject({ tier: 'referral', rate: '0.20', amountMinor: 19800, status: 'reserve' });
  });

  test('renewal at Referral earns 0 (recorded), renewal once at Tier 1 earns 20% (Decision)', () => {
    const rows = new Scenario()
      .partner('A')
      .customer('c1', 'A')
      .customer('c2', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000) // Referral first: 10000
      .pay('p2', 'c2', '2025-01-10', 5000) // Referral first (nothing cleared yet): 5000
      .pay('r1', 'c1', '2025-02-03', 10000) // renewal; nothing cleared yet → Referral → 0, referral_tier_renewal
      // 2025-03-03: p1 (cleared 02-17) + p2 (cleared 02-24) → 2 customers, $150 → Tier 1 → 10000 × 0.20 = 2000
      .pay('r2', 'c1', '2025-03-03', 10000)
      .compute('2025-06-01');
    expect(money(rows, 'direct:r1:A')).toMatchObject({ tier: 'referral', rate: '0', amountMinor: 0, status: 'void', exclusionReason: 'referral_tier_renewal' });
    expect(money(rows, 'direct:r2:A')).toMatchObject({ tier: 'tier1', rate: '0.20', amountMinor: 2000, status: 'due', exclusionReason: null });
    expect(row(rows, 'direct:r2:A').explanation['firstQualifiedPaymentOfSubscription']).toBe(false);
  });

  test('Decision off: a subscription sold at Referral stays at 0 on later payments', () => {
    const v = [{ ...tiersOnly[0]!, laterPaymentsUseCurrentTier: false }];
    const rows = new Scenario()
      .partner('A')
      .customer('c1', 'A')
      .customer('c2', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000)
      .pay('p2', 'c2', '2025-01-10', 5000)
      .pay('r2', 'c1', '2025-03-03', 10000) // Tier 1 by now, but first sold at Referral → 0
      .compute('2025-06-01', v);
    expect(money(rows, 'direct:r2:A')).toMatchObject({ amountMinor: 0, exclusionReason: 'referral_tier_renewal' });
  });
});

test('R4 tier falls as sales leave the 12-month window', () => {
  const rows = new Scenario()
    .partner('A')
    .customer('c1', 'A')
    .customer('c2', 'A')
    .customer('c3', 'A')
    .customer('c4', 'A')
    .customer('c5', 'A')
    .pay('p1', 'c1', '2024-01-10', 60000)
    .pay('p2', 'c2', '2024-01-15', 60000)
    // 2024-06-01: p1 + p2 = 2 customers, $1,200 > $1,000 → Tier 2: 10000 × 0.30 = 3000
    .pay('p3', 'c3', '2024-06-01', 10000)
    // 2025-01-12: window starts 2024-01-12, p1 left → p2 + p3 = 2 customers, $700 → Tier 1: 2000
    .pay('p4', 'c4', '2025-01-12', 10000)
    // 2025-01-20: window starts 2024-01-20, p2 left → p3 only (p4 not cleared) → Referral: 10000
    .pay('p5', 'c5', '2025-01-20', 10000)
    .compute('2025-06-01');
  expect(money(rows, 'direct:p3:A')).toMatchObject({ tier: 'tier2', amountMinor: 3000 });
  expect(money(rows, 'direct:p4:A')).toMatchObject({ tier: 'tier1', amountMinor: 2000 });
  expect(money(rows, 'direct:p5:A')).toMatchObject({ tier: 'referral', amountMinor: 10000 });
});

test("R7 FAQ example: Jan 3 / Jan 17 2025 → cleared Feb 17 / Mar 3 → paid Mar 15 / Apr 15", () => {
  const s = new Scenario().partner('A').customer('c1', 'A').customer('c2', 'A').pay('p1', 'c1', '2025-01-03', 8000).pay('p2', 'c2', '2025-01-17', 8000);
  const mar1 = s.compute('2025-03-01');
  const a = row(mar1, 'direct:p1:A');
  const b = row(mar1, 'direct:p2:A');
  expect(a.amountMinor).toBe(8000); // Referral monthly first: 8000 × 1.00 = $80
  expect(a.clearedAt?.toISOString()).toBe('2025-02-17T12:00:00.000Z');
  expect(a.payoutDate).toBe('2025-03-15');
  expect(a.status).toBe('due');
  expect(b.clearedAt?.toISOString()).toBe('2025-03-03T12:00:00.000Z');
  expect(b.payoutDate).toBe('2025-04-15');
  expect(b.status).toBe('reserve'); // not cleared on Mar 1
  expect(row(s.compute('2025-03-03T12:00:00Z'), 'direct:p2:A').status).toBe('due');
});

test('R2 $1 trial then full-price rebill: the rebill is the first qualified payment', () => {
  const rows = new Scenario()
    .partner('A')
    .customer('c1', 'A')
    .pay('t', 'c1', '2025-01-01', 100, { isTrialCharge: true }) // $1 trial
    .pay('t0', 'c1', '2025-01-01T13:00:00Z', 0, { isTrialCharge: true }) // $0 trial invoice
    .pay('p1', 'c1', '2025-01-15', 9900) // first qualified: Referral monthly 9900 × 1.00 = 9900
    .pay('p2', 'c1', '2025-02-15', 9900) // later payment at Referral → 0
    .compute('2025-06-01');
  expect(money(rows, 'direct:t:A')).toMatchObject({ amountMinor: 0, status: 'void', exclusionReason: 'trial_charge' });
  expect(money(rows, 'direct:t0:A')).toMatchObject({ amountMinor: 0, status: 'void', exclusionReason: 'trial_charge' });
  expect(money(rows, 'direct:p1:A')).toMatchObject({ tier: 'referral', amountMinor: 9900, status: 'due' });
  expect(row(rows, 'direct:p1:A').explanation['firstQualifiedPaymentOfSubscription']).toBe(true);
  expect(money(rows, 'direct:p2:A')).toMatchObject({ amountMinor: 0, exclusionReason: 'referral_tier_renewal' });
});

test('R2 zero and negative amounts never qualify', () => {
  const rows = new Scenario().partner('A').customer('c1', 'A').pay('z', 'c1', '2025-01-01', 0).pay('n', 'c1', '2025-01-02', -500).compute('2025-02-01');
  expect(money(rows, 'direct:z:A').exclusionReason).toBe('zero_amount');
  expect(money(rows, 'direct:n:A').exclusionReason).toBe('negative_amount');
});

describe('R8 refunds', () => {
  const base = () => new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000); // 10000 commission, clears 02-17

  test('partial refund before clearing reduces the commission (no clawback row)', () => {
    const rows = base().adjust('r1', 'refund', 'p1', '2025-01-20', 2500).compute('2025-03-01');
    // 10000 × (1 − 2500/10000) = 7500
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 7500, amountUsdMinor: 7500, status: 'due' });
    expect(rows.filter((r) => r.kind === 'clawback')).toHaveLength(0);
  });

  test('partial refund before clearing rounds half away from zero', () => {
    // Tier-1 style rate via a year plan at Referral: 9999 × 0.20 = 1999.8 → 2000;
    // refund 3333: 2000 × (1 − 3333/9999) = 2000 × 6666/9999 = 1333.33 → 1333
    const rows = new Scenario().partner('A').customer('y', 'A', 'year').pay('p', 'y', '2025-01-03', 9999).adjust('r', 'refund', 'p', '2025-01-05', 3333).compute('2025-01-10');
    expect(money(rows, 'direct:p:A')).toMatchObject({ amountMinor: 1333, status: 'reserve' });
  });

  test('full refund before clearing voids the commission', () => {
    const rows = base().adjust('r1', 'refund', 'p1', '2025-01-20', 10000).compute('2025-03-01');
    expect(row(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 0, status: 'void', clearedAt: null, payoutDate: null });
  });

  test('partial refund after clearing: original untouched, negative clawback due at the refund date', () => {
    const rows = base().adjust('r1', 'refund', 'p1', '2025-03-05', 4000).compute('2025-03-10');
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 10000, status: 'due' });
    const c = row(rows, 'clawback:direct:r1:A');
    // ROUND(10000 × (1 − 4000/10000)) − 10000 = 6000 − 10000 = −4000
    expect(c).toMatchObject({ kind: 'clawback', clawbackOf: 'direct', amountMinor: -4000, amountUsdMinor: -4000, status: 'due', sourceEventId: 'r1', payoutDate: '2025-04-15' });
    expect(c.clearedAt?.toISOString()).toBe('2025-03-05T12:00:00.000Z');
  });

  test('refund before and after clearing, and a paid row is never edited', () => {
    const s = base().adjust('r1', 'refund', 'p1', '2025-01-20', 2000).adjust('r2', 'refund', 'p1', '2025-04-01', 3000);
    const rows = s.compute('2025-04-10', tiersOnly, { paidCommissionKeys: ['direct:p1:A'] });
    // before clearing: 10000 × (1 − 2000/10000) = 8000 (paid on Mar 15)
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 8000, status: 'paid' });
    // after: ROUND(10000 × (1 − 5000/10000)) − 8000 = 5000 − 8000 = −3000
    expect(money(rows, 'clawback:direct:r2:A')).toMatchObject({ amountMinor: -3000, status: 'due' });
  });

  test('cancellation takes nothing back: later payments just stop', () => {
    const rows = base().compute('2025-12-31');
    expect(rows.map((r) => r.key)).toEqual(['direct:p1:A']);
  });
});

describe('R8 disputes', () => {
  const base = () => new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('o', 'dispute_opened', 'p1', '2025-01-20', 10000);

  test('open dispute holds: no clearing, no payout date', () => {
    const r = row(base().compute('2025-03-01'), 'direct:p1:A');
    expect(r).toMatchObject({ amountMinor: 10000, status: 'reserve', clearedAt: null, payoutDate: null });
    expect(r.flags).toEqual(['dispute_open', 'held_by_dispute']);
  });
  test('won after the normal date clears at the win', () => {
    const r = row(base().adjust('w', 'dispute_won', 'p1', '2025-03-10', 0).compute('2025-03-11'), 'direct:p1:A');
    expect(r).toMatchObject({ amountMinor: 10000, status: 'due', payoutDate: '2025-04-15' });
    expect(r.clearedAt?.toISOString()).toBe('2025-03-10T12:00:00.000Z');
  });
  test('won before the normal date clears on the normal date, not before', () => {
    const r = row(base().adjust('w', 'dispute_won', 'p1', '2025-01-25', 0).compute('2025-02-01'), 'direct:p1:A');
    expect(r).toMatchObject({ status: 'reserve', payoutDate: '2025-03-15' });
    expect(r.clearedAt?.toISOString()).toBe('2025-02-17T12:00:00.000Z');
  });
  test('lost is a full refund: void', () => {
    const r = row(base().adjust('l', 'dispute_lost', 'p1', '2025-03-10', 10000).compute('2025-03-11'), 'direct:p1:A');
    expect(r).toMatchObject({ amountMinor: 0, status: 'void', clearedAt: null });
  });
  test('chargeback after clearing becomes a clawback', () => {
    const rows = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('cb', 'chargeback', 'p1', '2025-03-01', 0).compute('2025-03-02');
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 10000, status: 'due' });
    expect(money(rows, 'clawback:direct:cb:A')).toMatchObject({ amountMinor: -10000 }); // amount 0 on a chargeback = whole base
  });
});

describe('R6 second tier', () => {
  test("recruiter earns 10% on a recruit's renewal, even when the recruit's renewal earns 0", () => {
    const rows = new Scenario()
      .partner('R')
      .partner('A', { recruiterPartnerId: 'R' })
      .customer('c1', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000) // A: 10000 × 1.00 = 10000; R: 10000 × 0.10 = 1000
      .pay('p2', 'c1', '2025-02-03', 10000) // A: Referral renewal 0; R: 1000
      .adjust('rf', 'refund', 'p2', '2025-04-01', 5000) // after p2 cleared (03-20): R clawback 500 − 1000 = −500
      .compute('2025-04-02');
    expect(money(rows, 'second_tier:p1:R')).toMatchObject({ tier: null, rate: '0.10', amountMinor: 1000, status: 'due' });
    expect(money(rows, 'direct:p2:A')).toMatchObject({ amountMinor: 0, exclusionReason: 'referral_tier_renewal' });
    expect(money(rows, 'second_tier:p2:R')).toMatchObject({ amountMinor: 1000, status: 'due' });
    expect(row(rows, 'second_tier:p2:R')).toMatchObject({ partnerAccountId: 'acct-R', network: 'partnerstack' });
    expect(money(rows, 'clawback:second_tier:rf:R')).toMatchObject({ amountMinor: -500 });
  });
  test('never to the affiliate itself; not on a payment that is the recruiter’s own purchase', () => {
    const rows = new Scenario()
      .partner('R', { email: 'boss@corp.com' })
      .partner('A', { recruiterPartnerId: 'R' })
      .partner('S', { recruiterPartnerId: 'S' })
      .customer('c1', 'A', 'month', { emails: ['Boss+kartra@corp.com'] })
      .customer('c2', 'S')
      .pay('p1', 'c1', '2025-01-03', 10000)
      .pay('p2', 'c2', '2025-01-03', 10000)
      .compute('2025-01-10');
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 10000 });
    expect(money(rows, 'second_tier:p1:R')).toMatchObject({ amountMinor: 0, exclusionReason: 'self_referral' });
    expect(rows.some((r) => r.key.startsWith('second_tier:p2'))).toBe(false);
  });
});

describe('R2 personal use and agency sub-accounts', () => {
  test('self-referral through Gmail dots and +tags', () => {
    const rows = new Scenario()
      .partner('A', { email: 'John.Smith+aff@gmail.com' })
      .customer('c1', 'A', 'month', { emails: ['johnsmith@googlemail.com'] })
      .customer('c2', 'A', 'month', { emails: ['j.o.h.n.s.m.i.t.h+kartra@gmail.com'] })
      .pay('p1', 'c1', '2025-01-03', 10000)
      .pay('p2', 'c2', '2025-01-04', 10000)
      .compute('2025-01-10');
    const r = row(rows, 'direct:p1:A');
    expect(r).toMatchObject({ amountMinor: 0, status: 'void', exclusionReason: 'self_referral' });
    expect(r.explanation['qualification']).toMatchObject({ reason: 'self_referral', matchedEmail: 'johnsmith@gmail.com' });
    expect(row(rows, 'direct:p2:A').exclusionReason).toBe('self_referral');
  });
  test('self-referral through a shared billing customer id', () => {
    const rows = new Scenario().partner('A', { billingCustomerIds: ['cus_c1'] }).customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).compute('2025-01-10');
    expect(row(rows, 'direct:p1:A').exclusionReason).toBe('self_referral');
  });
  test('agency sub-account owned by the affiliate', () => {
    const rows = new Scenario().partner('A').customer('c1', 'A', 'month', { agencyOwnerPartnerId: 'A' }).pay('p1', 'c1', '2025-01-03', 10000).compute('2025-01-10');
    expect(money(rows, 'direct:p1:A')).toMatchObject({ amountMinor: 0, exclusionReason: 'agency_sub_account' });
  });
  test('test customer', () => {
    const rows = new Scenario().partner('A').customer('c1', 'A', 'month', { isTest: true }).pay('p1', 'c1', '2025-01-03', 10000).compute('2025-01-10');
    expect(row(rows, 'direct:p1:A').exclusionReason).toBe('test_customer');
  });
  test('excluded sales do not count toward the tier', () => {
    const rows = new Scenario()
      .partner('A')
      .customer('t1', 'A', 'month', { isTest: true })
      .customer('t2', 'A', 'month', { isTest: true })
      .customer('c', 'A')
      .pay('x1', 't1', '2025-01-01', 90000)
      .pay('x2', 't2', '2025-01-01', 90000)
      .pay('p', 'c', '2025-03-01', 10000) // nothing counted → Referral 100% = 10000
      .compute('2025-03-02');
    expect(money(rows, 'direct:p:A')).toMatchObject({ tier: 'referral', amountMinor: 10000 });
  });
});

describe('R3 currency', () => {
  const eur = (extra = {}) =>
    new Scenario()
      .partner('A')
      .customer('y', 'A', 'year')
      .pay('p', 'y', '2025-01-03', 2000, { currency: 'EUR', usdMinor: null, ...extra });
  const fxRates = [
    { currency: 'EUR', date: '2025-01-01', rate: '1.08275' },
    { currency: 'EUR', date: '2025-01-05', rate: '1.20' }, // after the payment date: not used
  ];
  test('EUR payment converted by the rate table and rounded half away from zero', () => {
    const r = row(eur().compute('2025-01-10', tiersOnly, { fxRates }), 'direct:p:A');
    // base USD: 2000 × 1.08275 = 2165.5 → 2166; commission EUR: 2000 × 0.20 = 400; USD: 2166 × 0.20 = 433.2 → 433
    expect(r).toMatchObject({ baseCurrency: 'EUR', baseMinor: 2000, baseUsdMinor: 2166, amountMinor: 400, amountUsdMinor: 433 });
    expect(r.explanation['payment']).toMatchObject({ usdSource: 'rate_table', fxRate: '1.08275', fxRateDate: '2025-01-01' });
  });
  test('settlement rate wins over the table', () => {
    const r = row(eur({ exchangeRate: '1.0825' }).compute('2025-01-10', tiersOnly, { fxRates }), 'direct:p:A');
    expect(r.baseUsdMinor).toBe(2165); // 2000 × 1.0825 = 2165
  });
  test('missing rate: excluded with missing_fx_rate, never guessed', () => {
    const r = row(eur().compute('2025-01-10', tiersOnly, { fxRates: [{ currency: 'EUR', date: '2025-02-01', rate: '1.1' }] }), 'direct:p:A');
    expect(r).toMatchObject({ amountMinor: 0, baseUsdMinor: null, exclusionReason: 'missing_fx_rate', status: 'void' });
  });
});

test('R11 a version change mid-year: each payment priced by the version at its paid time', () => {
  const flat = kartra.versions[0]!;
  const tiered = { ...kartra.versions[1]!, effectiveFrom: new Date('2025-07-01T00:00:00Z') };
  const rows = new Scenario()
    .partner('R')
    .partner('A', { recruiterPartnerId: 'R' })
    .customer('c1', 'A')
    .customer('c2', 'A')
    .pay('p1', 'c1', '2025-06-15', 10000) // flat: 10000 × 0.40 = 4000; second tier 1000
    .pay('p2', 'c1', '2025-07-15', 10000) // tiers: renewal, p1 not cleared (07-30) → Referral → 0
    .pay('p3', 'c2', '2025-07-15', 10000) // tiers: first payment at Referral → 10000
    .compute('2025-09-01', [flat, tiered]);
  expect(row(rows, 'direct:p1:A')).toMatchObject({ ruleVersion: 'kartra-flat-2000', tier: null, rate: '0.40', amountMinor: 4000 });
  expect(row(rows, 'second_tier:p1:R')).toMatchObject({ ruleVersion: 'kartra-flat-2000', amountMinor: 1000 });
  expect(row(rows, 'direct:p2:A')).toMatchObject({ ruleVersion: 'kartra-tiers-2024', tier: 'referral', amountMinor: 0, exclusionReason: 'referral_tier_renewal' });
  expect(row(rows, 'direct:p3:A')).toMatchObject({ ruleVersion: 'kartra-tiers-2024', tier: 'referral', amountMinor: 10000 });
  expect(row(rows, 'second_tier:p2:R')).toMatchObject({ ruleVersion: 'kartra-tiers-2024', amountMinor: 1000 });
});

describe('R1 attribution and diagnostics', () => {
  test('attribution_window_exceeded flags without changing money', () => {
    const s = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000);
    s.attributions[0] = { ...s.attributions[0]!, clickAt: d('2024-11-01'), signupAt: d('2025-01-02') };
    const r = row(s.compute('2025-01-10'), 'direct:p1:A');
    expect(r.amountMinor).toBe(10000);
    expect(r.flags).toContain('attribution_window_exceeded');
  });
  test('competing attributions: latest wins, flagged; orphan refunds reported', () => {
    const s = new Scenario().partner('A').partner('B').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000);
    s.attributions[0] = { ...s.attributions[0]!, attributedAt: d('2024-12-01') };
    s.attributions.push({ customerId: 'c1', partnerId: 'B', partnerAccountId: 'acct-B', network: 'partnerstack', attributedAt: d('2024-12-20') });
    s.adjust('orphan', 'refund', 'p1', '2025-01-05', 100);
    s.events[s.events.length - 1]!.paymentId = 'nope';
    const res = computeCommissionsDetailed(s.input('2025-01-10'));
    expect(res.commissions.map((r) => r.key)).toEqual(['direct:p1:B']);
    expect(res.commissions[0]!.flags).toContain('multiple_attributions');
    expect(res.unmatchedEvents).toEqual([{ eventId: 'orphan', reason: 'payment_not_found' }]);
  });
  test('per-partner computation gives the same rows as the whole-table call', () => {
    const s = new Scenario().partner('R').partner('A', { recruiterPartnerId: 'R' }).customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000);
    const all = s.compute('2025-03-01');
    const one = computePartnerCommissions({
      partner: s.partners[1]!,
      recruiter: s.partners[0]!,
      recruiterAccounts: [s.accounts[0]!],
      attributions: s.attributions,
      customers: s.customers,
      subscriptions: s.subscriptions,
      events: s.events,
      programVersions: tiersOnly,
      asOf: d('2025-03-01'),
      fx: createFxTable([]),
    });
    expect(one.commissions).toEqual(all);
  });
});

describe('more R8 edges', () => {
  test('partially lost dispute: reduced by the lost share, clears at the loss', () => {
    const rows = new Scenario()
      .partner('A')
      .customer('c1', 'A')
      .pay('p1', 'c1', '2025-01-03', 10000)
      .adjust('o', 'dispute_opened', 'p1', '2025-01-20', 4000)
      .adjust('l', 'dispute_lost', 'p1', '2025-03-10', 4000)
      .compute('2025-03-11');
    // 10000 × (1 − 4000/10000) = 6000; held until the loss on 03-10 → payout 04-15
    const r = row(rows, 'direct:p1:A');
    expect(r).toMatchObject({ amountMinor: 6000, status: 'due', payoutDate: '2025-04-15' });
    expect(r.clearedAt?.toISOString()).toBe('2025-03-10T12:00:00.000Z');
    expect(rows.some((x) => x.kind === 'clawback')).toBe(false);
  });
  test('two partial refunds after clearing never claw back more than the commission', () => {
    // 3 cents commission: year plan at Referral, base 15 × 0.20 = 3.
    // refund 7 then 8 of 15 → owed ROUND(3 × 8/15) = ROUND(1.6) = 2, then ROUND(3 × 0/15) = 0
    const rows = new Scenario()
      .partner('A')
      .customer('y', 'A', 'year')
      .pay('p', 'y', '2025-01-03', 15)
      .adjust('r1', 'refund', 'p', '2025-03-01', 7)
      .adjust('r2', 'refund', 'p', '2025-03-02', 8)
      .compute('2025-03-03');
    expect(row(rows, 'direct:p:A').amountMinor).toBe(3);
    expect(row(rows, 'clawback:direct:r1:A').amountMinor).toBe(-1); // 2 − 3
    expect(row(rows, 'clawback:direct:r2:A').amountMinor).toBe(-2); // 0 − 2
  });
  test('clawback payout date can be the next payout day (setting)', () => {
    const v = [{ ...tiersOnly[0]!, payout: { ...tiersOnly[0]!.payout, clawbackPayoutDate: 'next_payout_day' as const } }];
    const rows = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('r1', 'refund', 'p1', '2025-03-05', 4000).compute('2025-03-10', v);
    expect(row(rows, 'clawback:direct:r1:A').payoutDate).toBe('2025-03-15');
  });
  test('a paid clawback stays paid', () => {
    const rows = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('r1', 'refund', 'p1', '2025-03-05', 4000).compute('2025-05-01', tiersOnly, { paidCommissionKeys: new Set(['direct:p1:A', 'clawback:direct:r1:A']) });
    expect(row(rows, 'clawback:direct:r1:A')).toMatchObject({ status: 'paid', amountMinor: -4000 });
  });
});

test('another program, from YAML only: two tiers, different thresholds, hold and payout day', async () => {
  const { parseProgramYaml } = await import('../../src/rules/program.ts');
  const other = parseProgramYaml(`
program: other
versions:
  - version: other-v1
    effectiveFrom: 2025-01-01
    tiers:
      - id: bronze
        minDistinctCustomers: 0
        revenueOverUsd: null
        rates: { first: { month: "0.25", year: "0.15" }, later: { month: "0.10", year: "0.10" } }
      - id: gold
        minDistinctCustomers: 1
        revenueOverUsd: "50.00"
        rates: { first: { month: "0.50", year: "0.50" }, later: { month: "0.50", year: "0.50" } }
    secondTier: { rate: "0.05" }
    hold: { days: 10 }
    payout: { dayOfMonth: 1, minimumUsd: { partnerstack: 1, shareasale: 1, awin: 1 } }
`);
  const rows = new Scenario()
    .partner('R')
    .partner('A', { recruiterPartnerId: 'R' })
    .customer('c1', 'A')
    .pay('p1', 'c1', '2025-01-03', 10000) // bronze first monthly: 10000 × 0.25 = 2500; R: 10000 × 0.05 = 500
    .pay('p2', 'c1', '2025-02-03', 10000) // p1 cleared 01-13, $100 > $50 with 1 customer → gold later: 5000
    .compute('2025-03-01', other.versions);
  expect(row(rows, 'direct:p1:A')).toMatchObject({ tier: 'bronze', amountMinor: 2500, payoutDate: '2025-02-01' }); // cleared 01-13 → Feb 1
  expect(row(rows, 'second_tier:p1:R').amountMinor).toBe(500);
  expect(row(rows, 'direct:p2:A')).toMatchObject({ tier: 'gold', amountMinor: 5000 });
});

test('data gaps are recorded, not dropped: no program version, unknown subscription', () => {
  const s = new Scenario().partner('A').customer('c1', 'A').pay('old', 'c1', '2023-06-01', 10000).pay('p1', 'c1', '2025-01-03', 10000, { subscriptionId: 'sub-missing' });
  const rows = s.compute('2025-02-01');
  expect(row(rows, 'direct:old:A')).toMatchObject({ exclusionReason: 'no_program_version', ruleVersion: null, amountMinor: 0 });
  expect(row(rows, 'direct:p1:A')).toMatchObject({ exclusionReason: 'unknown_subscription', amountMinor: 0 });
});

test('explainCommission lists the counted sales behind the tier, as rows or (older rows) objects', async () => {
  const { explainCommission } = await import('../../src/rules/explain.ts');
  // Two fillers' sales of 2025-01-10 (cleared 2025-02-24) price a payment of 2025-03-10 (as in R4 above).
  const r = row(new Scenario().partner('A').sales('A', '2025-01-10', [50000, 50001]).customer('c', 'A').pay('p', 'c', '2025-03-10', 10000).compute('2025-06-01'), 'direct:p:A');
  const line = 'counted sales, payment (customer, USD cents): p-fill1 (customer fill1, 50000), p-fill2 (customer fill2, 50001)';
  expect(explainCommission(r)).toContain(`  ${line}`);
  const tier = r.explanation['tier'] as Record<string, unknown>;
  const { countedSalesColumns: _, ...withoutColumns } = tier;
  const older = { ...withoutColumns, countedSales: [{ paymentEventId: 'p-fill1', customerId: 'fill1', usdMinor: 50000 }, { paymentEventId: 'p-fill2', customerId: 'fill2', usdMinor: 50001 }] };
  expect(explainCommission({ ...r, explanation: { ...r.explanation, tier: older } as typeof r.explanation })).toContain(`  ${line}`);
  // A list cut short says how many more the tier counted.
  const cut = { ...tier, countedSalesTotal: 25 };
  expect(explainCommission({ ...r, explanation: { ...r.explanation, tier: cut } as typeof r.explanation }).join('\n')).toContain('p-fill2 (customer fill2, 50001), and 23 more');
});

test('explainCommission renders the arithmetic for ops', async () => {
  const { explainCommission } = await import('../../src/rules/explain.ts');
  const rows = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 10000).adjust('r1', 'refund', 'p1', '2025-01-20', 2500).compute('2025-03-01');
  const text = explainCommission(row(rows, 'direct:p1:A')).join('\n');
  expect(text).toContain('tier referral at 2025-01-03T12:00:00.000Z: 0 distinct customers');
  expect(text).toContain('ROUND(10000 × 1.00) = 10000 USD');
  expect(text).toContain('refund r1 at 2025-01-20T12:00:00.000Z: 2500 → before_clearing_reduces_commission');
  expect(text).toContain('amount 7500 USD minor units (7500 USD cents), status due');
  // Explanations are plain JSON.
  expect(JSON.parse(JSON.stringify(row(rows, 'direct:p1:A').explanation))).toEqual(row(rows, 'direct:p1:A').explanation);
});
