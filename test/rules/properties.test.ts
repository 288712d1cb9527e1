// fast-check properties over random partners, customers, payments, refunds and disputes.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { computeCommissions, type EngineInput } from '../../src/rules/engine.ts';
import type { BillingEvent, ComputedCommission } from '../../src/rules/types.ts';
import { kartra } from './helpers.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2023-10-01T00:00:00Z'); // spans the flat → tier version change (2024-01-01)

const adjustmentArb = fc.record({
  kind: fc.constantFrom<BillingEvent['kind']>('refund', 'chargeback', 'reversal', 'dispute_opened', 'dispute_won', 'dispute_lost'),
  afterDays: fc.integer({ min: 0, max: 120 }),
  fraction: fc.integer({ min: 0, max: 120 }), // percent of base; > 100 tests the cap
});

const paymentArb = fc.record({
  customer: fc.integer({ min: 0, max: 5 }),
  day: fc.integer({ min: 0, max: 900 }),
  hour: fc.integer({ min: 0, max: 23 }),
  cents: fc.oneof(fc.integer({ min: -500, max: 200_000 }), fc.constantFrom(0, 1, 100, 2999, 9999)),
  currency: fc.constantFrom('USD', 'USD', 'EUR', 'JPY'),
  trial: fc.boolean(),
  adjustments: fc.array(adjustmentArb, { maxLength: 3 }),
});

const scenarioArb = fc.record({
  payments: fc.array(paymentArb, { minLength: 1, maxLength: 25 }),
  intervals: fc.array(fc.constantFrom<'month' | 'year'>('month', 'year'), { minLength: 6, maxLength: 6 }),
  owners: fc.array(fc.constantFrom('A', 'B'), { minLength: 6, maxLength: 6 }),
  selfCustomer: fc.integer({ min: 0, max: 8 }),
  asOfDay: fc.integer({ min: 0, max: 1100 }),
});

type ScenarioShape = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function build(s: ScenarioShape): EngineInput {
  const events: BillingEvent[] = [];
  s.payments.forEach((p, i) => {
    const at = new Date(T0 + p.day * DAY + p.hour * 3_600_000);
    const id = `p${i}`;
    events.push({
      id,
      kind: 'payment',
      billingSystem: 'stripe',
      documentId: `in_${i}`,
      customerId: `c${p.customer}`,
      subscriptionId: `sub${p.customer}`,
      occurredAt: at,
      amountMinor: p.cents,
      currency: p.currency,
      usdMinor: p.currency === 'USD' ? p.cents : null,
      isTrialCharge: p.trial && p.cents <= 100,
    });
    p.adjustments.forEach((a, j) => {
      events.push({
        id: `${id}-a${j}`,
        kind: a.kind,
        billingSystem: 'stripe',
        documentId: `re_${i}_${j}`,
        customerId: `c${p.customer}`,
        subscriptionId: `sub${p.customer}`,
        paymentId: id,
        occurredAt: new Date(at.getTime() + a.afterDays * DAY + 1000),
        amountMinor: Math.floor((Math.max(p.cents, 0) * a.fraction) / 100),
        currency: p.currency,
        usdMinor: null,
      });
    });
  });
  const customers = [0, 1, 2, 3, 4, 5].map((n) => ({
    id: `c${n}`,
    emails: [n === s.selfCustomer ? 'a.ffiliate+me@gmail.com' : `c${n}@x.example`],
    billingCustomerIds: [`cus${n}`],
    isTest: false,
  }));
  return {
    partners: [{ id: 'R', email: 'r@x.example' }, { id: 'A', email: 'affiliate@gmail.com', recruiterPartnerId: 'R' }, { id: 'B', recruiterPartnerId: 'R' }],
    partnerAccounts: [
      { id: 'acct-R', partnerId: 'R', network: 'partnerstack', externalId: 'r' },
      { id: 'acct-A', partnerId: 'A', network: 'partnerstack', externalId: 'a' },
      { id: 'acct-B', partnerId: 'B', network: 'awin', externalId: 'b' },
    ],
    customers,
    attributions: customers.map((c, n) => ({ customerId: c.id, partnerId: s.owners[n]!, partnerAccountId: `acct-${s.owners[n]!}`, network: s.owners[n] === 'B' ? 'awin' : 'partnerstack' })),
    subscriptions: customers.map((c, n) => ({ id: `sub${n}`, customerId: c.id, interval: s.intervals[n]! })),
    events,
    programVersions: kartra.versions,
    asOf: new Date(T0 + s.asOfDay * DAY),
    fxRates: [
      { currency: 'EUR', date: '2023-01-01', rate: '1.08275' },
      { currency: 'JPY', date: '2024-06-01', rate: '0.0067' }, // JPY before this date → missing_fx_rate
    ],
  };
}

// Largest direct rate any version allows (Referral monthly first payment, 1.00) + second tier 0.10.
const MAX_COMBINED_RATE_TENTHS = 11; // 1.10 = 11/10

function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let x = seed || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const json = (rows: ComputedCommission[]): string => JSON.stringify(rows);

describe('engine properties', () => {
  test('per payment, commissions after clawbacks stay within [0, base × 1.10]', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const input = build(s);
        const rows = computeCommissions(input);
        const byPayment = new Map<string, { total: number; totalUsd: number; direct: number; second: number }>();
        for (const r of rows) {
          const t = byPayment.get(r.paymentEventId) ?? { total: 0, totalUsd: 0, direct: 0, second: 0 };
          t.total += r.amountMinor;
          t.totalUsd += r.amountUsdMinor;
          const of = r.kind === 'clawback' ? r.clawbackOf : r.kind;
          if (of === 'direct') t.direct += r.amountMinor;
          else t.second += r.amountMinor;
          byPayment.set(r.paymentEventId, t);
        }
        for (const [pid, t] of byPayment) {
          const p = input.events.find((e) => e.id === pid)!;
          const base = Math.max(p.amountMinor, 0);
          expect(t.direct).toBeGreaterThanOrEqual(0);
          expect(t.second).toBeGreaterThanOrEqual(0);
          expect(t.totalUsd).toBeGreaterThanOrEqual(0);
          // total ≤ base × 1.10, allowing the half unit each row may round up: 20·total ≤ 22·base + 10
          expect(20 * t.total).toBeLessThanOrEqual(2 * MAX_COMBINED_RATE_TENTHS * base + 10);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('recompute gives identical rows', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const input = build(s);
        expect(json(computeCommissions(input))).toBe(json(computeCommissions(build(s))));
      }),
      { numRuns: 150 },
    );
  });

  test('input order does not matter', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: 1, max: 1_000_000 }), (s, seed) => {
        const input = build(s);
        const shuffled: EngineInput = {
          ...input,
          partners: shuffle(input.partners, seed),
          partnerAccounts: shuffle(input.partnerAccounts, seed + 1),
          customers: shuffle(input.customers, seed + 2),
          attributions: shuffle(input.attributions, seed + 3),
          subscriptions: shuffle(input.subscriptions, seed + 4),
          events: shuffle(input.events, seed + 5),
          programVersions: shuffle(input.programVersions, seed + 6),
          fxRates: shuffle(input.fxRates ?? [], seed + 7),
        };
        expect(json(computeCommissions(shuffled))).toBe(json(computeCommissions(input)));
      }),
      { numRuns: 150 },
    );
  });

  test('a paid row is never edited: later refunds become clawbacks', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: 1, max: 400 }), (s, laterDays) => {
        const first = build(s);
        const paidRows = computeCommissions(first).filter((r) => r.status === 'due');
        const later = computeCommissions({ ...first, asOf: new Date(first.asOf.getTime() + laterDays * DAY), paidCommissionKeys: new Set(paidRows.map((r) => r.key)) });
        for (const p of paidRows) {
          const now = later.find((r) => r.key === p.key)!;
          expect(now).toMatchObject({ status: 'paid', amountMinor: p.amountMinor, amountUsdMinor: p.amountUsdMinor, clearedAt: p.clearedAt, payoutDate: p.payoutDate });
        }
      }),
      { numRuns: 150 },
    );
  });

  test('every payment of an attributed customer yields a direct row (nothing excluded silently)', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const input = build(s);
        const rows = computeCommissions(input);
        const keys = new Set(rows.map((r) => r.key));
        for (const e of input.events) {
          if (e.kind !== 'payment' || e.occurredAt.getTime() > input.asOf.getTime()) continue;
          const owner = input.attributions.find((a) => a.customerId === e.customerId)!.partnerId;
          expect(keys.has(`direct:${e.id}:${owner}`)).toBe(true);
          expect(keys.has(`second_tier:${e.id}:R`)).toBe(true);
        }
        for (const r of rows) if (r.amountMinor === 0 && r.kind !== 'clawback' && r.status !== 'paid') expect(r.status === 'void' || r.exclusionReason === null).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});

test('the generator reaches the interesting cases (guards the properties above from being vacuous)', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(scenarioArb, (s) => {
      for (const r of computeCommissions(build(s))) {
        seen.add(r.kind);
        seen.add(r.status);
        if (r.exclusionReason) seen.add(r.exclusionReason);
        if (r.tier) seen.add(r.tier);
        for (const f of r.flags) seen.add(f);
      }
    }),
    { numRuns: 300, seed: 42 },
  );
  for (const k of ['direct', 'second_tier', 'clawback', 'reserve', 'due', 'void', 'referral', 'tier1', 'referral_tier_renewal', 'trial_charge', 'self_referral', 'missing_fx_rate', 'held_by_dispute', 'refund_beyond_base']) {
    expect(seen, k).toContain(k);
  }
});
