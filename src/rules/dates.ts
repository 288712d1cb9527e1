// R7 calendar: clearing and payout dates in the program's payout time zone (default UTC).
// In UTC (the default, and what the shipped program uses) the calendar is plain Date.UTC arithmetic
// with exactly luxon's results (a calendar day is 24 h; month steps keep the day and time of day,
// clamped to the month's last day); other zones go through luxon. test/rules/units.test.ts checks
// both paths agree.
import { DateTime } from 'luxon';

const DAY_MS = 86_400_000;
const isUtc = (zone: string): boolean => zone === 'UTC';
/** Years the plain arithmetic covers (Date.UTC maps years 0–99 to 1900s; 4-digit output). */
const plainYear = (t: Date): boolean => {
  const y = t.getUTCFullYear();
  return y >= 1100 && y <= 9000;
};
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
/** yyyy-mm-dd of year y, month index m (may be out of 0..11), day d (d <= 28). */
function ymd(y: number, m: number, d: number): string {
  const yy = y + Math.floor(m / 12);
  const mm = ((m % 12) + 12) % 12;
  return `${yy}-${pad2(mm + 1)}-${pad2(d)}`;
}

/** cleared_at = paid_at + hold days, counted in calendar days of `zone` (DST-safe wall clock). */
export function clearedAtFor(paidAt: Date, holdDays: number, zone: string): Date {
  if (isUtc(zone) && plainYear(paidAt)) return new Date(paidAt.getTime() + holdDays * DAY_MS);
  return DateTime.fromJSDate(paidAt, { zone }).plus({ days: holdDays }).toJSDate();
}

/**
 * Payout date for something that became payable at `at`: day `dayOfMonth` of the month
 * `monthsAfter` months after the month of `at` (Kartra: the 15th of the next month).
 */
export function payoutDateFor(at: Date, dayOfMonth: number, monthsAfter: number, zone: string): string {
  if (isUtc(zone) && plainYear(at) && dayOfMonth >= 1 && dayOfMonth <= 28) return ymd(at.getUTCFullYear(), at.getUTCMonth() + monthsAfter, dayOfMonth);
  const local = DateTime.fromJSDate(at, { zone });
  const d = local.startOf('month').plus({ months: monthsAfter }).set({ day: dayOfMonth });
  return d.toFormat('yyyy-MM-dd');
}

/** The first payout day on or after `at` (for clawbacks when configured as next_payout_day). */
export function nextPayoutDayOnOrAfter(at: Date, dayOfMonth: number, zone: string): string {
  if (isUtc(zone) && plainYear(at) && dayOfMonth >= 1 && dayOfMonth <= 28) return ymd(at.getUTCFullYear(), at.getUTCMonth() + (at.getUTCDate() <= dayOfMonth ? 0 : 1), dayOfMonth);
  const local = DateTime.fromJSDate(at, { zone });
  const thisMonth = local.startOf('month').set({ day: dayOfMonth });
  const d = local.startOf('day') <= thisMonth ? thisMonth : thisMonth.plus({ months: 1 });
  return d.toFormat('yyyy-MM-dd');
}

/** Start of the trailing window: t minus `months` calendar months (end-of-month clamped by luxon). */
export function windowStart(t: Date, months: number, zone: string): Date {
  if (isUtc(zone) && plainYear(t) && months <= 1200) {
    const y = t.getUTCFullYear();
    const m = t.getUTCMonth() - months;
    const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate(); // days in the target month
    const ms = t.getTime() - Date.UTC(y, t.getUTCMonth(), t.getUTCDate()); // time of day
    return new Date(Date.UTC(y, m, Math.min(t.getUTCDate(), last)) + ms);
  }
  return DateTime.fromJSDate(t, { zone }).minus({ months }).toJSDate();
}

/** yyyy-mm-dd of an instant in `zone`. */
export function localDate(t: Date, zone: string): string {
  if (isUtc(zone) && plainYear(t)) return t.toISOString().slice(0, 10);
  return DateTime.fromJSDate(t, { zone }).toFormat('yyyy-MM-dd');
}
