// R4: an affiliate's tier at a moment t, from that affiliate's own counted sales before t.
import { windowStart as windowStartOf } from './dates.ts';
import type { ProgramVersion, TierDefinition } from './program.ts';

/** A qualified payment of the affiliate as the tier calculation sees it. */
export interface CountableSale {
  paymentEventId: string;
  customerId: string;
  paidAt: Date;
  /** When it cleared (R7, disputes included); null = has not cleared / never will. */
  clearedAt: Date | null;
  usdMinor: number;
  /** Refunds / chargebacks in USD minor units with the time they became known. */
  refunds: { at: Date; usdMinor: number }[];
}

export interface CountedSale {
  paymentEventId: string;
  customerId: string;
  /** USD after refunds known at t. */
  usdMinor: number;
}

export interface TierResult {
  tier: TierDefinition;
  at: Date;
  windowStart: Date;
  distinctCustomers: number;
  revenueUsdMinor: number;
  countedSales: CountedSale[];
}

/** Pick the last tier (file order = ascending) whose conditions hold; ">" is strict (R4). */
export function selectTier(tiers: readonly TierDefinition[], distinctCustomers: number, revenueUsdMinor: number): TierDefinition {
  let chosen = tiers[0];
  if (!chosen) throw new Error('program version has no tiers');
  for (const tier of tiers) {
    const customersOk = distinctCustomers >= tier.minDistinctCustomers;
    const revenueOk = tier.revenueOverUsd === null || revenueUsdMinor > tier.revenueOverUsd;
    if (customersOk && revenueOk) chosen = tier;
  }
  return chosen;
}

/** Index of the first sale with paidAt >= start (sales sorted by paidAt). */
function lowerBound(sales: readonly CountableSale[], start: number): number {
  let lo = 0;
  let hi = sales.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sales[mid]!.paidAt.getTime() < start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function netAt(sale: CountableSale, t: number, subtractRefunds: boolean): number {
  if (!subtractRefunds) return sale.usdMinor;
  let net = sale.usdMinor;
  for (const r of sale.refunds) if (r.at.getTime() <= t) net -= r.usdMinor;
  return net;
}

/**
 * Tier at `t`. Counted sales: paid in [t − window months, t), cleared at or before t (Decision,
 * configurable), less refunds known at t; a sale refunded to nothing no longer counts at all.
 * `sales` must be sorted by paidAt. Cost is proportional to the sales inside the window.
 */
export function tierAt(t: Date, sales: readonly CountableSale[], version: ProgramVersion): TierResult {
  const w = version.tierWindow;
  const tMs = t.getTime();
  const start = windowStartOf(t, w.months, version.payout.timeZone);
  const counts = (s: CountableSale): number | null => {
    if (s.paidAt.getTime() >= tMs) return null;
    if (w.countOnlyClearedSales && (s.clearedAt === null || s.clearedAt.getTime() > tMs)) return null;
    const net = netAt(s, tMs, w.subtractRefunds);
    return net > 0 ? net : null;
  };

  const countedSales: CountedSale[] = [];
  const customers = new Set<string>();
  let revenue = 0;
  for (let i = lowerBound(sales, start.getTime()); i < sales.length; i++) {
    const s = sales[i]!;
    if (s.paidAt.getTime() >= tMs) break;
    const net = counts(s);
    if (net === null) continue;
    countedSales.push({ paymentEventId: s.paymentEventId, customerId: s.customerId, usdMinor: net });
    customers.add(s.customerId);
    revenue += net;
  }
  if (!w.windowAppliesToCustomerCount) {
    // Customer count over all history before t; revenue stays windowed.
    for (const s of sales) {
      if (s.paidAt.getTime() >= start.getTime()) break;
      if (counts(s) !== null) customers.add(s.customerId);
    }
  }
  return {
    tier: selectTier(version.tiers, customers.size, revenue),
    at: t,
    windowStart: start,
    distinctCustomers: customers.size,
    revenueUsdMinor: revenue,
    countedSales,
  };
}
