import { describe, expect, test } from 'vitest';
import { applyFraction, applyRate, convertToUsdMinor, createFxTable, usdToMinor } from '../../src/rules/money.ts';
import { matchingMailbox, normalizeEmail } from '../../src/rules/email.ts';
import { clearedAtFor, nextPayoutDayOnOrAfter, payoutDateFor } from '../../src/rules/dates.ts';
import { selectTier } from '../../src/rules/tiers.ts';
import { parseProgramYaml, versionAt } from '../../src/rules/program.ts';
import { kartra, tiersOnly } from './helpers.ts';

describe('money (R10)', () => {
  test('rounds half away from zero', () => {
    expect(applyRate(1005, '0.30')).toBe(302); // 1005 × 0.30 = 301.5 → 302
    expect(applyRate(-1005, '0.30')).toBe(-302); // −301.5 → −302 (away from zero, not up)
    expect(applyRate(1004, '0.30')).toBe(301); // 301.2 → 301
    expect(applyRate(9999, '0.20')).toBe(2000); // 1999.8 → 2000
    expect(applyFraction(2000, 6666, 9999)).toBe(1333); // 2000 × 6666 / 9999 = 1333.33… → 1333
  });
  test('no binary floating point drift', () => {
    expect(applyRate(10, '0.1')).toBe(1);
    expect(applyRate(29, '0.15')).toBe(4); // 4.35 → 4 (float would say 4.3499…)
    expect(applyRate(35, '0.1')).toBe(4); // 3.5 → 4
  });
  test('FX conversion respects minor units', () => {
    expect(convertToUsdMinor(2000, 'EUR', '1.08275')).toBe(2166); // 2000 × 1.08275 = 2165.5 → 2166
    expect(convertToUsdMinor(1000, 'JPY', '0.0067')).toBe(670); // ¥1000 × 0.0067 = $6.70
    expect(convertToUsdMinor(1000, 'KWD', '3.25')).toBe(325); // 1.000 KWD × 3.25 = $3.25
    expect(usdToMinor('1000.00')).toBe(100000);
  });
  test('rate table: latest on or before the date, never a guess', () => {
    const fx = createFxTable([
      { currency: 'EUR', date: '2025-01-05', rate: '1.09' },
      { currency: 'EUR', date: '2025-01-01', rate: '1.08' },
    ]);
    expect(fx.lookup('EUR', '2025-01-04')).toEqual({ rate: '1.08', date: '2025-01-01' });
    expect(fx.lookup('EUR', '2025-01-05')).toEqual({ rate: '1.09', date: '2025-01-05' });
    expect(fx.lookup('EUR', '2024-12-31')).toBeNull();
    expect(fx.lookup('GBP', '2025-01-04')).toBeNull();
  });
});

describe('email normalization (R2)', () => {
  test('gmail: dots, +tag, case, googlemail', () => {
    expect(normalizeEmail('John.Smith+aff@Gmail.com')).toBe('johnsmith@gmail.com');
    expect(normalizeEmail('j.o.h.n.smith@googlemail.com')).toBe('johnsmith@gmail.com');
  });
  test('other domains: only +tag', () => {
    expect(normalizeEmail('J.Smith+promo@Corp.com')).toBe('j.smith@corp.com');
    expect(matchingMailbox(['jsmith@corp.com'], ['j.smith@corp.com'])).toBeNull();
  });
  test('configured Google Workspace domain behaves like Gmail', () => {
    expect(normalizeEmail('j.smith+x@acme.io', ['gmail.com', 'acme.io'])).toBe('jsmith@acme.io');
  });
  test('garbage is not an address', () => {
    expect(normalizeEmail('nobody')).toBeNull();
    expect(normalizeEmail('+tag@gmail.com')).toBeNull();
  });
});

describe('dates (R7)', () => {
  test('FAQ example: Jan 3 / Jan 17 2025 clear Feb 17 / Mar 3, paid Mar 15 / Apr 15', () => {
    // Jan 3 + 45 days: 28 days to Jan 31, 17 more → Feb 17. Jan 17 + 45: 14 → Jan 31, 28 → Feb 28, 3 → Mar 3.
    const a = clearedAtFor(new Date('2025-01-03T10:00:00Z'), 45, 'UTC');
    const b = clearedAtFor(new Date('2025-01-17T10:00:00Z'), 45, 'UTC');
    expect(a.toISOString()).toBe('2025-02-17T10:00:00.000Z');
    expect(b.toISOString()).toBe('2025-03-03T10:00:00.000Z');
    expect(payoutDateFor(a, 15, 1, 'UTC')).toBe('2025-03-15');
    expect(payoutDateFor(b, 15, 1, 'UTC')).toBe('2025-04-15');
  });
  test('payout calendar time zone decides the month', () => {
    // 2025-01-31T23:30Z is already Feb 1 in Tokyo → Mar 15 there, Feb 15 in UTC.
    const t = new Date('2025-01-31T23:30:00Z');
    expect(payoutDateFor(t, 15, 1, 'UTC')).toBe('2025-02-15');
    expect(payoutDateFor(t, 15, 1, 'Asia/Tokyo')).toBe('2025-03-15');
    expect(payoutDateFor(new Date('2025-12-20T00:00:00Z'), 15, 1, 'UTC')).toBe('2026-01-15');
  });
  test('next payout day on or after', () => {
    expect(nextPayoutDayOnOrAfter(new Date('2025-03-05T00:00:00Z'), 15, 'UTC')).toBe('2025-03-15');
    expect(nextPayoutDayOnOrAfter(new Date('2025-03-15T08:00:00Z'), 15, 'UTC')).toBe('2025-03-15');
    expect(nextPayoutDayOnOrAfter(new Date('2025-03-16T00:00:00Z'), 15, 'UTC')).toBe('2025-04-15');
  });
});

describe('tier selection (R4 thresholds, strict "over")', () => {
  const tiers = tiersOnly[0]!.tiers;
  test.each([
    [1, 500_000_00, 'referral'], // fewer than 2 customers: Referral whatever the revenue
    [2, 0, 'tier1'],
    [2, 100_000, 'tier1'], // exactly $1,000.00
    [2, 100_001, 'tier2'], // $1,000.01
    [2, 1_000_000, 'tier2'], // exactly $10,000.00
    [2, 1_000_001, 'tier3'], // $10,000.01
  ])('%i customers, %i cents → %s', (customers, cents, id) => {
    expect(selectTier(tiers, customers, cents).id).toBe(id);
  });
});

describe('program file', () => {
  test('kartra.yaml: two versions, decisions at their defaults', () => {
    expect(kartra.versions.map((v) => v.version)).toEqual(['kartra-flat-2000', 'kartra-tiers-2024']);
    const v = tiersOnly[0]!;
    expect(v.tierWindow).toEqual({ months: 12, countOnlyClearedSales: true, windowAppliesToCustomerCount: true, subtractRefunds: true });
    expect(v.laterPaymentsUseCurrentTier).toBe(true);
    expect(v.hold.days).toBe(45);
    expect(v.payout.minimumUsd).toEqual({ partnerstack: 2500, shareasale: 5000, awin: 2000 });
    expect(v.tiers.map((t) => [t.id, t.revenueOverUsd])).toEqual([
      ['referral', null],
      ['tier1', null],
      ['tier2', 100000],
      ['tier3', 1000000],
    ]);
    expect(versionAt(kartra.versions, new Date('2023-12-31T23:59:59Z'))?.version).toBe('kartra-flat-2000');
    expect(versionAt(kartra.versions, new Date('2024-01-01T00:00:00Z'))?.version).toBe('kartra-tiers-2024');
    expect(versionAt(kartra.versions, new Date('1999-01-01T00:00:00Z'))).toBeNull();
  });

  const minimal = (tiersYaml: string, extra = ''): string => `
program: other
versions:
  - version: v1
    effectiveFrom: 2025-01-01
    tiers:
${tiersYaml}
    secondTier: null
    payout:
      minimumUsd: { partnerstack: 10, shareasale: "10.00", awin: "5.5" }
${extra}`;

  test('another program is data: two tiers, defaults filled in', () => {
    const p = parseProgramYaml(
      minimal(`      - id: bronze
        minDistinctCustomers: 0
        revenueOverUsd: null
        rates: { first: { month: "0.25", year: "0.15" }, later: { month: "0.10", year: "0.10" } }
      - id: gold
        minDistinctCustomers: 5
        revenueOverUsd: 500
        rates: { first: { month: "0.50", year: "0.50" }, later: { month: "0.50", year: "0.50" } }`),
    );
    const v = p.versions[0]!;
    expect(v.hold.days).toBe(45);
    expect(v.payout.dayOfMonth).toBe(15);
    expect(v.payout.minimumUsd).toEqual({ partnerstack: 1000, shareasale: 1000, awin: 550 });
    expect(v.tiers[1]!.revenueOverUsd).toBe(50000);
    expect(v.secondTier).toBeNull();
  });

  test('rejects float-ish rates, unknown keys and a first tier that does not always apply', () => {
    const tier = (rate: string, min = 0): string => `      - id: t
        minDistinctCustomers: ${min}
        revenueOverUsd: null
        rates: { first: { month: ${rate}, year: "0.1" }, later: { month: "0.1", year: "0.1" } }`;
    expect(() => parseProgramYaml(minimal(tier('"1e-1"')))).toThrow();
    expect(() => parseProgramYaml(minimal(tier('"-0.1"')))).toThrow();
    expect(() => parseProgramYaml(minimal(tier('"0.1"', 2)))).toThrow(/always apply/);
    expect(() => parseProgramYaml(minimal(tier('"0.1"'), '    holdDays: 30'))).toThrow();
    expect(() => parseProgramYaml(minimal(tier('"0.1"')).replace('minimumUsd: {', 'timeZone: Mars/Base\n      minimumUsd: {'))).toThrow(/time zone/);
  });
});

test('loadProgramsFromDir reads the shipped programs', async () => {
  const { loadProgramsFromDir } = await import('../../src/rules/program-loader.ts');
  const { fileURLToPath } = await import('node:url');
  const programs = await loadProgramsFromDir(fileURLToPath(new URL('../../config/programs', import.meta.url)));
  expect(programs.map((p) => p.program)).toContain('kartra');
});
