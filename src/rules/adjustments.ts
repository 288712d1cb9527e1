// R7/R8 per payment: when it clears (disputes hold it) and the refunds that take money back.
import { applyFraction } from './money.ts';
import type { BillingEvent } from './types.ts';

export const REFUND_KINDS: ReadonlySet<string> = new Set(['refund', 'chargeback', 'reversal', 'dispute_lost']);
export const DISPUTE_KINDS: ReadonlySet<string> = new Set(['dispute_opened', 'dispute_won', 'dispute_lost', 'chargeback']);

export function byTimeThenId(a: BillingEvent, b: BillingEvent): number {
  const d = a.occurredAt.getTime() - b.occurredAt.getTime();
  return d !== 0 ? d : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export interface DisputeWindow {
  openedAt: Date;
  /** null = still open at asOf. */
  resolvedAt: Date | null;
  resolution: 'won' | 'lost' | null;
}

/** Pairs dispute_opened with the next won / lost / chargeback. Events must be sorted. */
export function disputeWindows(events: readonly BillingEvent[]): DisputeWindow[] {
  const out: DisputeWindow[] = [];
  let open: Date | null = null;
  for (const e of events) {
    if (e.kind === 'dispute_opened') {
      if (open === null) open = e.occurredAt;
    } else if (open !== null && (e.kind === 'dispute_won' || e.kind === 'dispute_lost' || e.kind === 'chargeback')) {
      out.push({ openedAt: open, resolvedAt: e.occurredAt, resolution: e.kind === 'dispute_won' ? 'won' : 'lost' });
      open = null;
    }
  }
  if (open !== null) out.push({ openedAt: open, resolvedAt: null, resolution: null });
  return out;
}

/**
 * R8: a dispute opened at or before the clearing moment holds it until resolved; clearing then
 * happens at the resolution (never before the normal date). Disputes opened after clearing don't
 * un-clear (a loss becomes a clawback). Returns null while a holding dispute is still open.
 */
export function clearingWithDisputes(normal: Date, windows: readonly DisputeWindow[]): Clearing {
  let x = normal.getTime();
  let lostAtClearing = false;
  let moved = true;
  while (moved) {
    moved = false;
    for (const w of windows) {
      const end = w.resolvedAt === null ? Infinity : w.resolvedAt.getTime();
      if (w.openedAt.getTime() <= x && x < end) {
        if (end === Infinity) return { clearedAt: null, lostAtClearing: false };
        x = end;
        lostAtClearing = w.resolution === 'lost';
        moved = true;
      }
    }
  }
  return { clearedAt: new Date(x), lostAtClearing };
}

export interface Clearing {
  /** null = held by a dispute that is still open. */
  clearedAt: Date | null;
  /**
   * The hold ended with a loss: the take-back at that very moment happened before anything
   * cleared (R8: lost → as a refund before clearing), so it reduces/voids rather than claws back.
   */
  lostAtClearing: boolean;
}

export interface RefundStep {
  event: BillingEvent;
  /** Amount taken back in payment currency after capping the running total at the base. */
  amountMinor: number;
  /** Running total refunded after this step (≤ base). */
  cumulativeMinor: number;
  /** USD share of the payment's USD value taken back by this step (for tier revenue). */
  usdMinor: number;
  flags: string[];
}

/**
 * Refund timeline of one payment. Chargebacks and lost disputes without an amount take back the
 * whole remainder. USD shares are differences of rounded cumulative shares so they sum exactly.
 */
export function refundSteps(
  payment: BillingEvent,
  paymentUsdMinor: number | null,
  adjustments: readonly BillingEvent[],
): RefundStep[] {
  const base = payment.amountMinor;
  const steps: RefundStep[] = [];
  let cum = 0;
  let cumUsd = 0;
  // A lost dispute arrives as a chargeback and a dispute_lost on the same document (Stripe writes
  // both for one dispute, same amount): one take-back, counted once — also for a partial dispute,
  // where the cap at the base would not absorb the second.
  const lossTaken = new Map<string, number>();
  for (const e of adjustments) {
    if (!REFUND_KINDS.has(e.kind)) continue;
    const flags: string[] = [];
    const lossKey = e.kind === 'chargeback' || e.kind === 'dispute_lost' ? `${e.billingSystem}\u0000${e.documentId}` : null;
    const prior = lossKey === null ? undefined : lossTaken.get(lossKey);
    let raw: number;
    if (e.currency.toUpperCase() !== payment.currency.toUpperCase()) {
      if (e.usdMinor != null && paymentUsdMinor != null && paymentUsdMinor > 0) {
        raw = applyFraction(base, e.usdMinor, paymentUsdMinor);
        flags.push('refund_currency_converted');
      } else {
        steps.push({ event: e, amountMinor: 0, cumulativeMinor: cum, usdMinor: 0, flags: ['refund_currency_mismatch_ignored'] });
        continue;
      }
    } else {
      raw = e.amountMinor;
    }
    if (raw <= 0) {
      // Without an amount a chargeback / lost dispute takes back the whole remainder (or is its pair's twin).
      if (e.kind === 'chargeback' || e.kind === 'dispute_lost') raw = prior ?? base - cum;
      else {
        steps.push({ event: e, amountMinor: 0, cumulativeMinor: cum, usdMinor: 0, flags: ['refund_without_amount_ignored'] });
        continue;
      }
    }
    if (lossKey !== null) {
      lossTaken.set(lossKey, Math.max(prior ?? 0, raw));
      if (prior !== undefined) {
        raw = Math.max(0, raw - prior); // only what the twin did not already take back
        flags.push('dispute_loss_counted_once');
      }
    }
    const next = Math.min(base, cum + raw);
    if (cum + raw > base) flags.push('refund_beyond_base');
    const nextUsd = paymentUsdMinor == null || base <= 0 ? 0 : applyFraction(paymentUsdMinor, next, base);
    steps.push({ event: e, amountMinor: next - cum, cumulativeMinor: next, usdMinor: nextUsd - cumUsd, flags });
    cum = next;
    cumUsd = nextUsd;
  }
  return steps;
}
