// The engine's fast paths (src/rules/money.ts integer arithmetic, src/rules/dates.ts plain UTC
// calendar) give exactly what decimal.js and luxon give — signed zeros included.
import { Decimal } from 'decimal.js';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { applyFraction, applyRate } from '../../src/rules/money.ts';
import { clearedAtFor, localDate, nextPayoutDayOnOrAfter, payoutDateFor, windowStart } from '../../src/rules/dates.ts';

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });
const refRate = (a: number, rate: string): number => new D(a).times(new D(rate)).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
const refFraction = (a: number, n: number, d: number): number => (d === 0 ? 0 : new D(a).times(n).dividedBy(d).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber());

// 'Etc/UTC' is the same zone as 'UTC' but takes the luxon path.
const LUXON_UTC = 'Etc/UTC';

describe('money fast paths equal decimal.js', () => {
  it('applyRate', () => {
    const rate = fc.oneof(fc.constantFrom('0', '1', '0.2', '0.20', '0.1', '0.125', '1.00', '0.333333', '0.005'), fc.tuple(fc.nat(1000), fc.nat(999_999)).map(([i, f]) => `${i}.${f}`));
    const amount = fc.oneof(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }), fc.constantFrom(0, -1, 1, 5, -5, 25, -25, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER));
    fc.assert(fc.property(amount, rate, (a, r) => Object.is(applyRate(a, r), refRate(a, r))), { numRuns: 5000 });
    // Exact ties round away from zero; negative results that round to zero keep decimal.js's −0.
    expect([applyRate(5, '0.5'), applyRate(-5, '0.5'), applyRate(-1, '0.2'), applyRate(0, '0.2')]).toEqual([3, -3, -0, 0]);
    expect(Object.is(applyRate(-1, '0.2'), refRate(-1, '0.2'))).toBe(true);
  });

  it('applyFraction', () => {
    const int = fc.oneof(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.constantFrom(0, -0, 1, -1, 2, -2, 3));
    fc.assert(fc.property(int, int, int, (a, n, d) => Object.is(applyFraction(a, n, d), refFraction(a, n, d))), { numRuns: 5000 });
    const big = fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
    fc.assert(fc.property(big, big, big, (a, n, d) => Object.is(applyFraction(a, n, d), refFraction(a, n, d))), { numRuns: 500 });
  });
});

describe('UTC calendar fast paths equal luxon', () => {
  const instant = fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }).map((ms) => new Date(ms));
  const edgy = fc.constantFrom(
    new Date('2024-02-29T23:59:59.999Z'), new Date('2025-03-31T12:00:00Z'), new Date('2024-12-31T00:00:00Z'), new Date('2025-01-31T08:30:00Z'),
    new Date('2025-05-31T00:00:00.001Z'), new Date('2025-03-15T00:00:00Z'), new Date('2025-03-16T00:00:00Z'), new Date('2025-03-14T23:59:59.999Z'),
  );
  const t = fc.oneof(instant, edgy);

  it('clearedAtFor, windowStart, localDate', () => {
    fc.assert(
      fc.property(t, fc.nat(400), fc.integer({ min: 1, max: 60 }), (d, days, months) => {
        expect(clearedAtFor(d, days, 'UTC').getTime()).toBe(DateTime.fromJSDate(d, { zone: LUXON_UTC }).plus({ days }).toJSDate().getTime());
        expect(windowStart(d, months, 'UTC').getTime()).toBe(DateTime.fromJSDate(d, { zone: LUXON_UTC }).minus({ months }).toJSDate().getTime());
        expect(localDate(d, 'UTC')).toBe(DateTime.fromJSDate(d, { zone: LUXON_UTC }).toFormat('yyyy-MM-dd'));
      }),
      { numRuns: 3000 },
    );
  });

  it('payoutDateFor, nextPayoutDayOnOrAfter', () => {
    fc.assert(
      fc.property(t, fc.integer({ min: 1, max: 28 }), fc.nat(14), (d, day, after) => {
        expect(payoutDateFor(d, day, after, 'UTC')).toBe(payoutDateFor(d, day, after, LUXON_UTC));
        expect(nextPayoutDayOnOrAfter(d, day, 'UTC')).toBe(nextPayoutDayOnOrAfter(d, day, LUXON_UTC));
      }),
      { numRuns: 3000 },
    );
    expect(payoutDateFor(new Date('2025-02-17T00:00:00Z'), 15, 1, 'UTC')).toBe('2025-03-15'); // R7 worked example
    expect(payoutDateFor(new Date('2025-12-03T00:00:00Z'), 15, 1, 'UTC')).toBe('2026-01-15');
  });
});
