import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { parsePeriod, periodOf } from '../../src/reconcile/run.ts';

describe('periodOf', () => {
  it('puts instants either side of a month start in the right month, per zone (worked by hand)', () => {
    // Chicago is UTC−6 in February (CST): March starts at 06:00Z.
    expect(periodOf(new Date('2025-03-01T05:59:59.999Z'), 'America/Chicago')).toBe('2025-02');
    expect(periodOf(new Date('2025-03-01T06:00:00Z'), 'America/Chicago')).toBe('2025-03');
    // Kolkata is UTC+5:30: 2025 starts at 18:30Z on Dec 31.
    expect(periodOf(new Date('2024-12-31T18:29:59Z'), 'Asia/Kolkata')).toBe('2024-12');
    expect(periodOf(new Date('2024-12-31T18:30:00Z'), 'Asia/Kolkata')).toBe('2025-01');
    expect(periodOf(new Date('2025-01-31T23:59:59Z'), 'UTC')).toBe('2025-01');
    expect(periodOf(new Date('2025-02-01T00:00:00Z'), 'UTC')).toBe('2025-02');
    // Padding at the edges of what yyyy covers.
    expect(periodOf(new Date('0999-07-15T00:00:00Z'), 'UTC')).toBe('0999-07');
    expect(periodOf(new Date('9999-12-31T00:00:00Z'), 'UTC')).toBe('9999-12');
  });

  it("agrees with luxon's yyyy-MM format around every month start and DST change of 2024–2026", () => {
    const zones = ['UTC', 'America/Chicago', 'America/Santiago', 'Europe/London', 'Asia/Kolkata', 'Pacific/Chatham', 'Australia/Lord_Howe'];
    let checked = 0;
    for (const zone of zones) {
      for (let m = 0; m < 36; m++) {
        const { from } = parsePeriod(`${2024 + Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`, zone);
        for (const offsetMin of [-90, -61, -60, -59, -30, -1, 0, 1, 30, 59, 60, 61, 90]) {
          const at = new Date(from.getTime() + offsetMin * 60_000);
          expect(periodOf(at, zone), `${zone} ${at.toISOString()}`).toBe(DateTime.fromJSDate(at, { zone }).toFormat('yyyy-MM'));
          checked++;
        }
      }
      // Each hour of the year: covers the DST changes, whatever day they fall on.
      for (let h = 0; h < 366 * 24; h++) {
        const at = new Date(Date.UTC(2025, 0, 1) + h * 3_600_000 + 1_799_000);
        if (periodOf(at, zone) !== DateTime.fromJSDate(at, { zone }).toFormat('yyyy-MM')) expect.fail(`${zone} ${at.toISOString()}`);
        checked++;
      }
    }
    expect(checked).toBe(zones.length * (36 * 13 + 366 * 24));
  });

  it('falls back to the formatter outside the years it pads (and for an invalid zone)', () => {
    const far = new Date('+010000-01-01T00:00:00Z');
    expect(periodOf(far, 'UTC')).toBe(DateTime.fromJSDate(far, { zone: 'UTC' }).toFormat('yyyy-MM'));
    expect(periodOf(new Date('2025-01-01T00:00:00Z'), 'Not/AZone')).toBe(DateTime.fromJSDate(new Date('2025-01-01T00:00:00Z'), { zone: 'Not/AZone' }).toFormat('yyyy-MM'));
  });
});
