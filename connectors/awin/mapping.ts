// Pure mapping functions for Awin: amounts, times in the requested time zone, statuses, canonical rows.
import { Decimal } from 'decimal.js';
import { DateTime } from 'luxon';
import type { NetworkCommissionInput, NetworkCommissionStatus } from '../../src/model/types.ts';
import { minorUnitExponent } from '../../src/rules/money.ts';
import type { AwinTransaction } from './schemas.ts';

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

/** Awin decimal amount (JSON number or string) → integer minor units of `currency`. */
export function awinToMinor(amount: number | string, currency: string): number {
  const minor = new D(String(amount)).times(new D(10).pow(minorUnitExponent(currency))).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount ${String(amount)} ${currency} is out of range`);
  return minor;
}

/** Minor units → the decimal number Awin's JSON expects (exact for the currency's decimals). */
export function minorToAwin(minor: number, currency: string): number {
  const exp = minorUnitExponent(currency);
  return Number(new D(minor).dividedBy(new D(10).pow(exp)).toFixed(exp));
}

/** Request date format: yyyy-MM-ddTHH:mm:ss, wall-clock in `zone`. */
export function toAwinDate(d: Date, zone: string): string {
  return DateTime.fromJSDate(d, { zone }).toFormat("yyyy-MM-dd'T'HH:mm:ss");
}

/**
 * Awin times come back as "2024-01-15T10:23:00" (inferred: wall-clock in the requested `timezone`);
 * a value that carries an offset or Z keeps it. Null for empty or unparseable values.
 */
export function parseAwinTime(value: string | null | undefined, zone: string): Date | null {
  if (!value) return null;
  const v = value.trim();
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(v);
  const dt = hasZone ? DateTime.fromISO(v, { setZone: true }) : DateTime.fromISO(v.replace(' ', 'T'), { zone });
  return dt.isValid ? dt.toJSDate() : null;
}

/** pending/approved/declined/deleted map one to one; an approved commission paid to the publisher is 'paid'. */
export function awinStatus(t: Pick<AwinTransaction, 'commissionStatus' | 'paidToPublisher'>): NetworkCommissionStatus {
  const s = t.commissionStatus.toLowerCase();
  if (s === 'approved') return t.paidToPublisher ? 'paid' : 'approved';
  if (s === 'declined' || s === 'deleted' || s === 'pending') return s;
  return 'pending';
}

export interface AwinPart {
  commissionGroupCode: string | null;
  commissionGroupName: string | null;
  amountMinor: number;
  commissionAmountMinor: number | null;
}

export function awinParts(t: AwinTransaction): AwinPart[] {
  const cur = t.saleAmount?.currency ?? t.commissionAmount.currency;
  return (t.transactionParts ?? []).map((p) => ({
    commissionGroupCode: p.commissionGroupCode ?? null,
    commissionGroupName: p.commissionGroupName ?? null,
    amountMinor: awinToMinor(p.amount, cur),
    commissionAmountMinor: p.commissionAmount === null || p.commissionAmount === undefined ? null : awinToMinor(p.commissionAmount, t.commissionAmount.currency),
  }));
}

export function clickRefsOf(t: AwinTransaction): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(t.clickRefs ?? {})) if (v !== null && v !== '') out[k] = String(v);
  return out;
}

export function toNetworkCommission(t: AwinTransaction, ctx: { connection: string; timezone: string; partnerAccountId: number | null }): NetworkCommissionInput {
  const occurredAt = parseAwinTime(t.transactionDate, ctx.timezone);
  if (!occurredAt) throw new Error(`transaction ${String(t.id)}: transactionDate "${t.transactionDate}" is not a date`);
  const currency = t.commissionAmount.currency.toUpperCase();
  const saleCurrency = t.saleAmount?.currency.toUpperCase() ?? null;
  const orderRef = t.orderRef === null || t.orderRef === undefined || String(t.orderRef) === '' ? null : String(t.orderRef);
  return {
    connection: ctx.connection,
    network: 'awin',
    externalId: String(t.id),
    partnerAccountId: ctx.partnerAccountId,
    partnerExternalId: String(t.publisherId),
    // Reconciliation matches order_ref against billing invoice ids.
    orderRef,
    transactionKey: orderRef,
    kindHint: null,
    amountMinor: awinToMinor(t.commissionAmount.amount, currency),
    currency,
    saleAmountMinor: t.saleAmount ? awinToMinor(t.saleAmount.amount, t.saleAmount.currency) : null,
    saleCurrency,
    status: awinStatus(t),
    rawStatus: t.commissionStatus,
    occurredAt,
    clickAt: parseAwinTime(t.clickDate, ctx.timezone),
    description: t.declineReason ?? t.amendReason ?? null,
    metadata: {
      advertiserId: t.advertiserId === null || t.advertiserId === undefined ? null : String(t.advertiserId),
      clickRefs: clickRefsOf(t),
      transactionParts: awinParts(t).map((p) => ({ ...p })),
      validationDate: parseAwinTime(t.validationDate, ctx.timezone)?.toISOString() ?? null,
      declineReason: t.declineReason ?? null,
      amended: t.amended ?? false,
      amendReason: t.amendReason ?? null,
      paidToPublisher: t.paidToPublisher ?? null,
      type: t.type ?? null,
      siteName: t.siteName ?? null,
    },
  };
}
