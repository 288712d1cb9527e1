// The incremental TierTracker must agree with the plain tierAt() reference on every query.
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { tierAt, TierTracker, type CountableSale } from '../../src/rules/tiers.ts';
import { tiersOnly } from './helpers.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2024-01-01T00:00:00Z');
const base = tiersOnly[0]!;
const variants = [
  base,
  { ...base, tierWindow: { ...base.tierWindow, countOnlyClearedSales: false } },
  { ...base, tierWindow: { ...base.tierWindow, windowAppliesToCustomerCount: false } },
  { ...base, tierWindow: { ...base.tierWindow, months: 3, subtractRefunds: false } },
];

const saleArb = fc.record({
  customer: fc.integer({ min: 0, max: 4 }),
  day: fc.integer({ min: 0, max: 700 }),
  usd: fc.integer({ min: 1, max: 400_000 }),
  clearing: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 90 })),
  refunds: fc.array(fc.record({ afterDays: fc.integer({ min: 0, max: 200 }), usd: fc.integer({ min: 1, max: 400_000 }) }), { maxLength: 2 }),
});

test('TierTracker ≡ tierAt', () => {
  fc.assert(
    fc.property(fc.array(saleArb, { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 3 }), (raw, queries, v) => {
      const sales: CountableSale[] = raw
        .map((r, i) => {
          const paidAt = new Date(T0 + r.day * DAY + i);
          return {
            paymentEventId: `p${i}`,
            customerId: `c${r.customer}`,
            paidAt,
            clearedAt: r.clearing === null ? null : new Date(paidAt.getTime() + r.clearing * DAY),
            usdMinor: r.usd,
            refunds: r.refunds.map((f) => ({ at: new Date(paidAt.getTime() + f.afterDays * DAY), usdMinor: f.usd })),
          };
        })
        .sort((a, b) => a.paidAt.getTime() - b.paidAt.getTime());
      const version = variants[v]!;
      const tracker = new TierTracker(sales, 50);
      for (const q of [...queries].sort((a, b) => a - b)) {
        const t = new Date(T0 + q * DAY);
        const want = tierAt(t, sales, version);
        const got = tracker.at(t, version);
        expect(got.tier.id).toBe(want.tier.id);
        expect(got.distinctCustomers).toBe(want.distinctCustomers);
        expect(got.revenueUsdMinor).toBe(want.revenueUsdMinor);
        expect(got.countedSalesTotal).toBe(want.countedSalesTotal);
        expect(got.countedSales).toEqual(want.countedSales.slice(0, 50));
      }
    }),
    { numRuns: 300 },
  );
});
