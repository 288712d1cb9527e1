// Helpers shared by the Stripe and Chargebee connectors: R3 base arithmetic, FX, R2 trial
// detection, paging windows, a bounded backoff for 429/5xx and lookups of already-synced facts.
import type { Knex } from 'knex';
import { Decimal } from 'decimal.js';
import { applyFraction, convertToUsdMinor } from '../../src/rules/money.ts';
import type { BillingEventInput } from '../../src/model/types.ts';

/** Classification values written into billing_events.classification for payments (R2). */
export type PaymentClassification = 'qualified' | 'trial' | 'zero' | 'negative' | 'non_subscription';

/** Unix seconds (number or numeric string) → Date; null for absent. */
export function fromUnix(v: number | string | null | undefined): Date | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'string' ? Number(v) : v;
  return Number.isFinite(n) ? new Date(n * 1000) : null;
}

/** A float exchange rate from an API (JSON number) as an exact decimal string, no exponent. */
export function rateString(rate: number | string | null | undefined): string | null {
  if (rate === null || rate === undefined || rate === '') return null;
  const d = new Decimal(rate);
  if (!d.isFinite() || d.lte(0)) return null;
  return d.toFixed();
}

/**
 * R3 base: amount paid excluding tax, after discounts. When the document was paid in full the base
 * is total − tax; when only part of the total was paid in money (customer credit applied) the paid
 * amount is split pro rata between base and tax: base = ROUND(paid × (total − tax) / total).
 */
export function baseOfPayment(p: { amountPaid: number; total: number; tax: number }): { base: number; tax: number } {
  const net = p.total - p.tax;
  // Nothing paid in money: base 0, or the negative net of a credit invoice (never qualifies).
  if (p.amountPaid <= 0 || p.total <= 0) return { base: p.total < 0 ? net : 0, tax: 0 };
  if (p.amountPaid >= p.total) return { base: net, tax: p.tax };
  const base = applyFraction(p.amountPaid, net, p.total);
  return { base, tax: p.amountPaid - base };
}

/**
 * Scales an amount taken back (refund, dispute, reversal: tax included) into base terms using the
 * payment's own base/gross ratio, so a full refund equals the payment's base exactly.
 */
export function toBaseTerms(amountBack: number, payment: { base: number; gross: number } | null | undefined): number {
  if (!payment || payment.gross <= 0 || payment.base === payment.gross) return amountBack;
  if (amountBack >= payment.gross) return payment.base;
  return applyFraction(amountBack, payment.base, payment.gross);
}

export interface UsdFields {
  amountUsdMinor: number | null;
  exchangeRate: string | null;
  fxSource: 'settlement' | 'identity' | null;
}

/** USD value of `amountMinor` with a settlement rate (USD per unit of `currency`). */
export function usdFields(amountMinor: number, currency: string, settlement: { currency: string | null; rate: string | null } | null): UsdFields {
  if (currency.toUpperCase() === 'USD') return { amountUsdMinor: amountMinor, exchangeRate: '1', fxSource: 'identity' };
  if (settlement && settlement.rate && settlement.currency?.toUpperCase() === 'USD') {
    return { amountUsdMinor: convertToUsdMinor(amountMinor, currency, settlement.rate), exchangeRate: settlement.rate, fxSource: 'settlement' };
  }
  // No settlement rate into USD: left empty so the rules fall back to the configured rate table.
  return { amountUsdMinor: null, exchangeRate: null, fxSource: null };
}

/**
 * R2 trial detection. A charge is a trial charge when the document says so (metadata trial=true,
 * a line described as a trial period) or when it was issued before the subscription's trial ended
 * (a $1 or $0 trial invoice). The first invoice at or after trial_end is the full-price rebill.
 */
export function isTrialCharge(o: { issuedAt: Date | null; trialStart: Date | null; trialEnd: Date | null; explicit?: boolean }): boolean {
  if (o.explicit) return true;
  if (!o.issuedAt || !o.trialEnd) return false;
  // One minute of slack: the rebill invoice is created at trial_end to the second.
  if (o.issuedAt.getTime() >= o.trialEnd.getTime() - 60_000) return false;
  return !o.trialStart || o.issuedAt.getTime() >= o.trialStart.getTime() - 86_400_000;
}

export function classifyPayment(o: { hasSubscription: boolean; base: number; trial: boolean }): PaymentClassification {
  if (!o.hasSubscription) return 'non_subscription';
  if (o.trial) return 'trial';
  if (o.base === 0) return 'zero';
  if (o.base < 0) return 'negative';
  return 'qualified';
}

export function truthy(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return ['true', '1', 'yes', 'y'].includes(v.trim().toLowerCase());
  return false;
}

/** Splits `total` over integer weights exactly (largest remainder; ties to the earlier entry). */
export function allocate(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (sum <= 0) return weights.map((_, i) => (i === 0 ? total : 0));
  const raw = weights.map((w) => new Decimal(total).times(w).dividedBy(sum));
  const out = raw.map((r) => r.floor().toNumber());
  let rest = total - out.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => ({ i, frac: r.minus(r.floor()).toNumber() })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const o of order) {
    if (rest <= 0) break;
    out[o.i]! += 1;
    rest--;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Retry for 429 / 5xx with exponential backoff and jitter, honouring Retry-After when given.

export interface BackoffOptions {
  retries: number;
  baseMs: number;
  maxMs: number;
  onRetry?: (info: { attempt: number; delayMs: number; status: number | undefined }) => void;
}

export async function withBackoff<T>(fn: () => Promise<T>, classify: (err: unknown) => { retry: boolean; status?: number; retryAfterMs?: number }, opts: BackoffOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const c = classify(err);
      if (!c.retry || attempt >= opts.retries) throw err;
      const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** attempt);
      const delayMs = Math.min(opts.maxMs, Math.max(c.retryAfterMs ?? 0, exp / 2 + Math.random() * (exp / 2)));
      opts.onRetry?.({ attempt: attempt + 1, delayMs, status: c.status });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export function parseRetryAfterMs(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.min(n * 1000, 60_000);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Lookups of facts an earlier stream (or webhook) already stored.

export interface SubscriptionFacts {
  trialStart: Date | null;
  trialEnd: Date | null;
  planInterval: 'month' | 'year' | null;
}

export async function subscriptionFacts(db: Knex, connection: string, externalIds: string[]): Promise<Map<string, SubscriptionFacts>> {
  const out = new Map<string, SubscriptionFacts>();
  const ids = [...new Set(externalIds.filter(Boolean))];
  if (ids.length === 0) return out;
  const rows = await db('subscriptions')
    .where({ connection })
    .whereIn('external_id', ids)
    .select<{ external_id: string; trial_start: Date | null; trial_end: Date | null; plan_interval: 'month' | 'year' | null }[]>('external_id', 'trial_start', 'trial_end', 'plan_interval');
  for (const r of rows) out.set(r.external_id, { trialStart: r.trial_start ? new Date(r.trial_start) : null, trialEnd: r.trial_end ? new Date(r.trial_end) : null, planInterval: r.plan_interval });
  return out;
}

export interface PaymentFacts {
  externalId: string;
  documentId: string;
  base: number;
  gross: number;
  currency: string;
  subscriptionExternalId: string | null;
  metadata: Record<string, unknown>;
}

/** Payment events by external id, or (byDocument) every payment share of a document. */
export async function paymentFacts(db: Knex, connection: string, ids: string[], byDocument = false): Promise<PaymentFacts[]> {
  const list = [...new Set(ids.filter(Boolean))];
  if (list.length === 0) return [];
  const rows = await db('billing_events as e')
    .leftJoin('subscriptions as s', 's.id', 'e.subscription_id')
    .where({ 'e.connection': connection, 'e.kind': 'payment' })
    .whereIn(byDocument ? 'e.document_id' : 'e.external_id', list)
    .select<Array<{ external_id: string; document_id: string; amount_minor: string | number; gross_minor: string | number | null; currency: string; sub_ext: string | null; metadata: Record<string, unknown> | string }>>(
      'e.external_id', 'e.document_id', 'e.amount_minor', 'e.gross_minor', 'e.currency', 's.external_id as sub_ext', 'e.metadata',
    );
  return rows.map((r) => ({
    externalId: r.external_id,
    documentId: r.document_id,
    base: Number(r.amount_minor),
    gross: r.gross_minor === null ? Number(r.amount_minor) : Number(r.gross_minor),
    currency: r.currency.trim(),
    subscriptionExternalId: r.sub_ext,
    metadata: typeof r.metadata === 'string' ? (JSON.parse(r.metadata) as Record<string, unknown>) : r.metadata,
  }));
}

/**
 * Resolution times a source object does not carry (a dispute's won/lost moment) are estimated;
 * the first stored value wins so re-syncs stay idempotent and a webhook's exact time is kept.
 */
export async function keepFirstOccurredAt(db: Knex, rows: BillingEventInput[], kinds: string[]): Promise<void> {
  const subject = rows.filter((r) => kinds.includes(r.kind));
  if (subject.length === 0) return;
  const found = await db('billing_events')
    .where({ connection: subject[0]!.connection })
    .whereIn('kind', kinds)
    .whereIn('external_id', subject.map((r) => r.externalId))
    .select<{ kind: string; external_id: string; occurred_at: Date }[]>('kind', 'external_id', 'occurred_at');
  const m = new Map(found.map((f) => [`${f.kind}|${f.external_id}`, new Date(f.occurred_at)]));
  for (const r of subject) {
    const prev = m.get(`${r.kind}|${r.externalId}`);
    if (prev) r.occurredAt = prev;
  }
}
