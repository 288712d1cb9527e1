// When a window stream re-reads its whole look-back window (a sweep) and when only a short tail.
//
// Networks change old records without an updated-at filter to find them by (PartnerStack rewards,
// ShareASale voids, Awin validations), so the only complete way to see those changes — and records
// that vanished — is to re-read a window and diff it. That costs weeks of records per run. Tools in
// this field re-read a short tail on every run and the deep window on a slower cadence; the cadence
// is `sync.lookback.everyHours` (0 = every run, the strict setting), the tail `tailHours`.
// The sweep time is kept in each stream's own checkpoint, so it moves with the data it covers.
import type { SyncContext } from './types.ts';

export const HOUR_MS = 3_600_000;

/** A sweep is due on the first run, when forced (everyHours 0), or when the last one is old enough. */
export function sweepDue(ctx: Pick<SyncContext, 'config' | 'now'>, lastSweepAt: number | null | undefined): boolean {
  const every = ctx.config.sync.lookback.everyHours;
  if (lastSweepAt === null || lastSweepAt === undefined || every === 0) return true;
  // A clock behind the last sweep (a back-dated run) is not a reason to sweep again.
  return ctx.now.getTime() - lastSweepAt >= every * HOUR_MS;
}

/** How far before the end of the last completed pass a tail pass starts. */
export function tailMs(ctx: Pick<SyncContext, 'config'>): number {
  return ctx.config.sync.lookback.tailHours * HOUR_MS;
}

/** The configuration with sweeps forced for this run (`--sweep`). */
export function withForcedSweep<C extends SyncContext['config']>(config: C): C {
  return { ...config, sync: { ...config.sync, lookback: { ...config.sync.lookback, everyHours: 0 } } };
}
