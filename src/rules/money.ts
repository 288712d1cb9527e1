// R10 money arithmetic: integers in minor units, exact decimal rates, half away from zero.
import { Decimal } from 'decimal.js';
import type { BillingEvent, FxRate } from './types.ts';

// A private Decimal constructor so global config elsewhere can't change our rounding.
const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

/** ISO 4217 minor-unit exponents that are not 2. */
const MINOR_UNIT_EXPONENTS: Readonly<Record<string, number>> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0,
  VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};

export function minorUnitExponent(currency: string): number {
  return MINOR_UNIT_EXPONENTS[currency.toUpperCase()] ?? 2;
}

/** Exact decimal rate check: "0.2", "1", "0.0925"; no exponents, no signs. */
export const DECIMAL_RATE_PATTERN = /^\d+(\.\d+)?$/;

// Integer fast paths: applyRate / applyFraction on safe integers are exact integer arithmetic
// (a rate "0.125" is 125 / 10³), rounded half away from zero — the same results as decimal.js,
// signed zero included (decimal.js keeps the sign of a product that rounds to zero, so −0.4 → −0).
// Anything outside the safe range (or a rate that is not a plain decimal) goes through decimal.js.
const rateCache = new Map<string, { num: number; den: number } | null>();
function parsedRate(rate: string): { num: number; den: number } | null {
  let r = rateCache.get(rate);
  if (r !== undefined) return r;
  r = null;
  const m = /^(\d+)(?:\.(\d+))?$/.exec(rate);
  if (m && m[1]!.length + (m[2]?.length ?? 0) <= 15) {
    const frac = m[2] ?? '';
    r = { num: Number(m[1]! + frac), den: 10 ** frac.length };
  }
  if (rateCache.size < 10_000) rateCache.set(rate, r);
  return r;
}

/** ROUND(p / q) half away from zero for safe integers p, q ≠ 0 with |p| exact; null when unsafe. */
function divRound(p: number, q: number, negative: boolean): number | null {
  if (!Number.isSafeInteger(p) || !Number.isSafeInteger(q)) return null;
  const ap = Math.abs(p);
  const aq = Math.abs(q);
  if (ap > 2 ** 52 || aq > 2 ** 52) return null;
  let quot = Math.floor(ap / aq);
  let rem = ap - quot * aq;
  // Float division may be off by one for large operands: correct with the exact remainder.
  while (rem < 0) {
    quot--;
    rem += aq;
  }
  while (rem >= aq) {
    quot++;
    rem -= aq;
  }
  if (rem * 2 >= aq) quot++;
  return negative ? -quot : quot;
}

/** ROUND(amount × rate, 0) with ties away from zero, like a spreadsheet's ROUND. */
export function applyRate(amountMinor: number, rate: string): number {
  const r = Number.isSafeInteger(amountMinor) ? parsedRate(rate) : null;
  if (r) {
    const v = divRound(amountMinor * r.num, r.den, amountMinor < 0);
    if (v !== null) return v;
  }
  return new D(amountMinor).times(new D(rate)).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
}

/** ROUND(amount × numerator / denominator): proportional shares (R8 partial refunds). */
export function applyFraction(amountMinor: number, numerator: number, denominator: number): number {
  if (denominator === 0) return 0;
  if (Number.isSafeInteger(amountMinor) && Number.isSafeInteger(numerator) && Number.isSafeInteger(denominator)) {
    const neg = (amountMinor < 0 || Object.is(amountMinor, -0)) !== (numerator < 0 || Object.is(numerator, -0)) !== (denominator < 0);
    const v = divRound(amountMinor * numerator, denominator, neg);
    if (v !== null) return v;
  }
  return new D(amountMinor).times(numerator).dividedBy(denominator).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
}

/** Converts minor units of `currency` to USD cents with `rate` = USD per 1 unit of `currency`. */
export function convertToUsdMinor(amountMinor: number, currency: string, rate: string): number {
  const scale = new D(10).pow(2 - minorUnitExponent(currency));
  return new D(amountMinor).times(new D(rate)).times(scale).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
}

/** USD-dollar decimal string ("1000.00") to cents, rejecting fractions of a cent. */
export function usdToMinor(usd: string): number {
  const cents = new D(usd).times(100);
  if (!cents.isInteger()) throw new Error(`USD amount ${usd} has fractions of a cent`);
  return cents.toNumber();
}

export function addRates(a: string, b: string): string {
  return new D(a).plus(new D(b)).toString();
}

export function compareRates(a: string, b: string): number {
  return new D(a).comparedTo(new D(b));
}

export interface FxTable {
  /** Latest rate on or before `date` (yyyy-mm-dd), or null: never a guess. */
  lookup(currency: string, date: string): { rate: string; date: string } | null;
}

/** Indexes the configured rate table once; lookups are binary searches. */
export function createFxTable(rates: readonly FxRate[]): FxTable {
  const byCurrency = new Map<string, FxRate[]>();
  for (const r of rates) {
    const cur = r.currency.toUpperCase();
    let list = byCurrency.get(cur);
    if (!list) byCurrency.set(cur, (list = []));
    list.push(r);
  }
  // Ties on date: the largest rate string wins so the table's input order never matters.
  for (const list of byCurrency.values()) {
    list.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.rate < b.rate ? -1 : a.rate > b.rate ? 1 : 0));
  }
  return {
    lookup(currency, date) {
      const list = byCurrency.get(currency.toUpperCase());
      if (!list) return null;
      let lo = 0;
      let hi = list.length - 1;
      let found: FxRate | null = null;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const row = list[mid]!;
        if (row.date <= date) {
          found = row;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return found ? { rate: found.rate, date: found.date } : null;
    },
  };
}

export type UsdSource = 'usd' | 'settlement' | 'settlement_rate' | 'rate_table';

export type UsdValue =
  | { ok: true; usdMinor: number; source: UsdSource; rate: string | null; rateDate: string | null }
  | { ok: false };

/**
 * R3: USD value of a payment. Order: already USD; settlement USD amount; settlement rate;
 * configured table by the payment's UTC date. Missing → not ok (reason missing_fx_rate).
 */
export function usdValueOf(event: BillingEvent, fx: FxTable): UsdValue {
  if (event.currency.toUpperCase() === 'USD') {
    return { ok: true, usdMinor: event.amountMinor, source: 'usd', rate: null, rateDate: null };
  }
  if (event.usdMinor != null) {
    return { ok: true, usdMinor: event.usdMinor, source: 'settlement', rate: event.exchangeRate ?? null, rateDate: null };
  }
  if (event.exchangeRate != null && DECIMAL_RATE_PATTERN.test(event.exchangeRate)) {
    return {
      ok: true,
      usdMinor: convertToUsdMinor(event.amountMinor, event.currency, event.exchangeRate),
      source: 'settlement_rate',
      rate: event.exchangeRate,
      rateDate: null,
    };
  }
  const date = event.occurredAt.toISOString().slice(0, 10);
  const hit = fx.lookup(event.currency, date);
  if (!hit) return { ok: false };
  return {
    ok: true,
    usdMinor: convertToUsdMinor(event.amountMinor, event.currency, hit.rate),
    source: 'rate_table',
    rate: hit.rate,
    rateDate: hit.date,
  };
}
