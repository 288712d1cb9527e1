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
  /** All counted sales (tierAt) or the first ones in paid order (TierTracker's explanation cap). */
  countedSales: CountedSale[];
  countedSalesTotal: number;
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
    countedSalesTotal: countedSales.length,
  };
}

/** The settings a tracker's state depends on, as a string (cached per version object). */
const settingsKeys = new WeakMap<ProgramVersion, string>();
function settingsKeyOf(version: ProgramVersion): string {
  let k = settingsKeys.get(version);
  if (k === undefined) settingsKeys.set(version, (k = JSON.stringify([version.tierWindow, version.payout.timeZone])));
  return k;
}

/**
 * Incremental tierAt() for queries at non-decreasing t (the engine prices payments in time order).
 * Each sale enters once (when cleared), leaves once (when the window passes it) and changes with
 * each refund, so a partner costs O(n log n) instead of O(n × sales in window). tierAt() stays the
 * plain reference; a property test checks both agree.
 */
export class TierTracker {
  private readonly sales: readonly CountableSale[];
  private readonly maxListed: number;
  private settingsKey = '';
  private lastT = -Infinity;
  private entries: { at: number; i: number }[] = [];
  private refunds: { at: number; i: number; usd: number }[] = [];
  private enterPtr = 0;
  private refundPtr = 0;
  private leavePtr = 0;
  private net: number[] = [];
  /**
   * Sale i as last listed (while its net amount is unchanged): consecutive commissions of a partner
   * list mostly the same sales, so each listing shares these objects instead of copying them (1M:
   * a large partner's batch holds tens of thousands of explanations of up to 50 entries each).
   */
  private listed: Array<CountedSale | undefined> = [];
  private entered: boolean[] = [];
  private left: boolean[] = [];
  private revenue = 0;
  private countedCount = 0;
  private windowCustomers = new Map<string, number>();
  private allCustomers = new Map<string, number>();

  /** `sales` sorted by paidAt; explanations list at most `maxListed` counted sales. */
  constructor(sales: readonly CountableSale[], maxListed: number) {
    this.sales = sales;
    this.maxListed = maxListed;
  }

  private reset(version: ProgramVersion): void {
    const w = version.tierWindow;
    this.settingsKey = settingsKeyOf(version);
    this.lastT = -Infinity;
    this.entries = [];
    this.refunds = [];
    this.sales.forEach((s, i) => {
      // Counted needs paidAt < t (strict) and, when configured, clearedAt <= t.
      const paidPlus = s.paidAt.getTime() + 1;
      if (w.countOnlyClearedSales) {
        if (s.clearedAt !== null) this.entries.push({ at: Math.max(s.clearedAt.getTime(), paidPlus), i });
      } else this.entries.push({ at: paidPlus, i });
      if (w.subtractRefunds) for (const r of s.refunds) this.refunds.push({ at: r.at.getTime(), i, usd: r.usdMinor });
    });
    this.entries.sort((a, b) => a.at - b.at || a.i - b.i);
    this.refunds.sort((a, b) => a.at - b.at || a.i - b.i);
    this.enterPtr = this.refundPtr = this.leavePtr = 0;
    this.net = this.sales.map((s) => s.usdMinor);
    this.listed = [];
    this.entered = this.sales.map(() => false);
    this.left = this.sales.map(() => false);
    this.revenue = 0;
    this.countedCount = 0;
    this.windowCustomers = new Map();
    this.allCustomers = new Map();
  }

  private counted(i: number): boolean {
    return this.entered[i]! && !this.left[i]! && this.net[i]! > 0;
  }

  private bump(map: Map<string, number>, key: string, by: number): void {
    const n = (map.get(key) ?? 0) + by;
    if (n === 0) map.delete(key);
    else map.set(key, n);
  }

  /** Applies `change` to sale i, keeping the running totals in step. */
  private update(i: number, change: () => void): void {
    const c = this.sales[i]!.customerId;
    const wasCounted = this.counted(i);
    const wasEver = this.entered[i]! && this.net[i]! > 0;
    if (wasCounted) {
      this.countedCount--;
      this.revenue -= this.net[i]!;
      this.bump(this.windowCustomers, c, -1);
    }
    if (wasEver) this.bump(this.allCustomers, c, -1);
    change();
    if (this.counted(i)) {
      this.countedCount++;
      this.revenue += this.net[i]!;
      this.bump(this.windowCustomers, c, 1);
    }
    if (this.entered[i]! && this.net[i]! > 0) this.bump(this.allCustomers, c, 1);
  }

  at(t: Date, version: ProgramVersion): TierResult {
    const key = settingsKeyOf(version);
    const tMs = t.getTime();
    if (key !== this.settingsKey || tMs < this.lastT) this.reset(version);
    this.lastT = tMs;
    const start = windowStartOf(t, version.tierWindow.months, version.payout.timeZone);
    const startMs = start.getTime();

    while (this.leavePtr < this.sales.length && this.sales[this.leavePtr]!.paidAt.getTime() < startMs) {
      const i = this.leavePtr++;
      this.update(i, () => (this.left[i] = true));
    }
    while (this.enterPtr < this.entries.length && this.entries[this.enterPtr]!.at <= tMs) {
      const { i } = this.entries[this.enterPtr++]!;
      this.update(i, () => (this.entered[i] = true));
    }
    while (this.refundPtr < this.refunds.length && this.refunds[this.refundPtr]!.at <= tMs) {
      const r = this.refunds[this.refundPtr++]!;
      this.update(r.i, () => (this.net[r.i] = this.net[r.i]! - r.usd));
    }

    const countedSales: CountedSale[] = [];
    for (let i = this.leavePtr; i < this.sales.length && countedSales.length < this.maxListed && this.sales[i]!.paidAt.getTime() < tMs; i++) {
      if (!this.counted(i)) continue;
      let entry = this.listed[i];
      if (entry === undefined || entry.usdMinor !== this.net[i]) {
        const s = this.sales[i]!;
        entry = this.listed[i] = { paymentEventId: s.paymentEventId, customerId: s.customerId, usdMinor: this.net[i]! };
      }
      countedSales.push(entry);
    }
    const distinct = version.tierWindow.windowAppliesToCustomerCount ? this.windowCustomers.size : this.allCustomers.size;
    return {
      tier: selectTier(version.tiers, distinct, this.revenue),
      at: t,
      windowStart: start,
      distinctCustomers: distinct,
      revenueUsdMinor: this.revenue,
      countedSales,
      countedSalesTotal: this.countedCount,
    };
  }
}
