// The hand-written parse of ShareASale's report timestamps must give exactly what luxon gives for
// the same text (the first TIME_FORMATS entry that matches), including wall clocks inside a DST gap
// or overlap, whose result luxon makes depend on the zone's offset at the current time.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DateTime } from 'luxon';
import { parseSasTime, parseUsTimeFast, TIME_FORMATS } from '../mapping.ts';

function viaLuxon(t: string, zone: string): { instant: string; localDate: string } | null {
  for (const f of TIME_FORMATS) {
    const dt = DateTime.fromFormat(t, f, { zone, locale: 'en-US' });
    if (dt.isValid) return { instant: dt.toJSDate().toISOString(), localDate: dt.toFormat('MM/dd/yyyy') };
  }
  return null;
}

const ZONES = ['America/Chicago', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata', 'Asia/Kathmandu', 'UTC', 'utc+3'];

/** Every 10 minutes of the days around each DST change of 2024–2025 in the zone, as SAS prints them. */
function texts(zone: string): string[] {
  const out: string[] = [];
  const starts: number[] = [];
  for (let d = Date.UTC(2024, 0, 1); d < Date.UTC(2026, 0, 1); d += 86_400_000) {
    if (DateTime.fromMillis(d, { zone }).offset !== DateTime.fromMillis(d + 86_400_000, { zone }).offset) starts.push(d - 86_400_000);
  }
  starts.push(Date.UTC(2025, 0, 15), Date.UTC(2024, 1, 28)); // plain days, and a leap day next
  for (const s of starts) {
    for (let m = 0; m < 3 * 24 * 60; m += 10) {
      // Wall clocks, not instants: every local time of those days, including ones that do not exist or exist twice.
      const w = DateTime.fromMillis(s + m * 60_000, { zone: 'UTC' });
      out.push(w.toFormat('MM/dd/yyyy hh:mm:ss a'), w.toFormat('M/d/yyyy h:mm:ssa'));
      if (m % 1440 === 0) out.push(w.toFormat('MM/dd/yyyy'), w.toFormat('M/d/yyyy'));
    }
  }
  return out;
}

describe('ShareASale timestamp parsing without luxon', () => {
  afterEach(() => vi.useRealTimers());

  for (const now of ['2025-07-01T12:00:00Z', '2025-12-01T12:00:00Z']) {
    it(`matches luxon for every local time around DST changes (now ${now})`, () => {
      vi.useFakeTimers({ now: new Date(now), toFake: ['Date'] });
      let compared = 0;
      for (const zone of ZONES) {
        for (const t of texts(zone)) {
          const fast = parseUsTimeFast(t, zone);
          expect(fast, `${t} ${zone}`).toBeDefined();
          expect({ instant: fast!.instant.toISOString(), localDate: fast!.localDate }, `${t} ${zone}`).toEqual(viaLuxon(t, zone));
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(10_000);
    });
  }

  it('leaves other forms and impossible dates to luxon, with the same answer as before', () => {
    for (const t of ['02/30/2025', '13/01/2025', '01/15/2025 13:04:05 PM', '01/15/2025 00:04:05 AM', '1/2/25', '2025-01-15 10:00:00', '01/15/2025 3:04 PM', '01/15/1975 03:04:05 PM', 'soon']) {
      expect(parseUsTimeFast(t, 'America/Chicago'), t).toBeUndefined();
      const r = parseSasTime(t, 'America/Chicago');
      expect(r && { instant: r.instant.toISOString(), localDate: r.localDate }, t).toEqual(viaLuxon(t, 'America/Chicago'));
    }
    expect(parseUsTimeFast('01/15/2025 03:04:05 PM', 'Not/AZone')).toBeUndefined();
    expect(parseSasTime('01/15/2025 03:04:05 PM', 'Not/AZone')).toBeNull();
  });
});
