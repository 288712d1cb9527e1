// R7 calendar: clearing and payout dates in the program's payout time zone (default UTC).
import { DateTime } from 'luxon';

/** cleared_at = paid_at + hold days, counted in calendar days of `zone` (DST-safe wall clock). */
export function clearedAtFor(paidAt: Date, holdDays: number, zone: string): Date {
  return DateTime.fromJSDate(paidAt, { zone }).plus({ days: holdDays }).toJSDate();
}

/**
 * Payout date for something that became payable at `at`: day `dayOfMonth` of the month
 * `monthsAfter` months after the month of `at` (Kartra: the 15th of the next month).
 */
export function payoutDateFor(at: Date, dayOfMonth: number, monthsAfter: number, zone: string): string {
  const local = DateTime.fromJSDate(at, { zone });
  const d = local.startOf('month').plus({ months: monthsAfter }).set({ day: dayOfMonth });
  return d.toFormat('yyyy-MM-dd');
}

/** The first payout day on or after `at` (for clawbacks when configured as next_payout_day). */
export function nextPayoutDayOnOrAfter(at: Date, dayOfMonth: number, zone: string): string {
  const local = DateTime.fromJSDate(at, { zone });
  const thisMonth = local.startOf('month').set({ day: dayOfMonth });
  const d = local.startOf('day') <= thisMonth ? thisMonth : thisMonth.plus({ months: 1 });
  return d.toFormat('yyyy-MM-dd');
}

/** Start of the trailing window: t minus `months` calendar months (end-of-month clamped by luxon). */
export function windowStart(t: Date, months: number, zone: string): Date {
  return DateTime.fromJSDate(t, { zone }).minus({ months }).toJSDate();
}

/** yyyy-mm-dd of an instant in `zone`. */
export function localDate(t: Date, zone: string): string {
  return DateTime.fromJSDate(t, { zone }).toFormat('yyyy-MM-dd');
}
