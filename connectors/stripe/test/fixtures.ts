// API-shaped Stripe objects (basil+ shapes) for the fake server: builders plus the hand-worked
// scenario used by the tests. Times are unix seconds.
import type { StripeObject } from '../fake-server.ts';

export const DAY = 86_400;
export const T0 = Math.floor(Date.UTC(2025, 0, 3) / 1000); // 2025-01-03T00:00:00Z

export function customer(id: string, created: number, metadata: Record<string, string> = {}, email = `${id}@example.com`): StripeObject {
  return { id, object: 'customer', created, email, name: id, metadata, livemode: false };
}

export function subscription(id: string, cust: string, created: number, o: { status: string; interval?: 'month' | 'year'; currency?: string; trialDays?: number; canceledAt?: number; price?: string }): StripeObject {
  const trialEnd = o.trialDays ? created + o.trialDays * DAY : null;
  return {
    id,
    object: 'subscription',
    customer: cust,
    status: o.status,
    currency: o.currency ?? 'usd',
    created,
    start_date: created,
    trial_start: o.trialDays ? created : null,
    trial_end: trialEnd,
    canceled_at: o.canceledAt ?? null,
    ended_at: o.canceledAt ?? null,
    cancel_at_period_end: false,
    metadata: {},
    items: {
      object: 'list',
      data: [{ id: `si_${id}`, price: { id: o.price ?? `price_${o.interval ?? 'month'}`, currency: o.currency ?? 'usd', recurring: { interval: o.interval ?? 'month', interval_count: 1 } }, current_period_start: trialEnd ?? created, current_period_end: (trialEnd ?? created) + 30 * DAY }],
    },
  };
}

export function invoice(id: string, cust: string, sub: string | null, created: number, o: { amountPaid: number; tax?: number; currency?: string; billingReason?: string; status?: string; description?: string; interval?: 'month' | 'year' }): StripeObject {
  const tax = o.tax ?? 0;
  const status = o.status ?? 'paid';
  return {
    id,
    object: 'invoice',
    customer: cust,
    currency: o.currency ?? 'usd',
    created,
    status,
    billing_reason: o.billingReason ?? (sub ? 'subscription_cycle' : 'manual'),
    amount_due: o.amountPaid,
    amount_paid: status === 'paid' ? o.amountPaid : 0,
    amount_remaining: 0,
    subtotal: o.amountPaid - tax,
    total: o.amountPaid,
    total_excluding_tax: o.amountPaid - tax,
    total_taxes: tax ? [{ amount: tax, tax_behavior: 'exclusive' }] : [],
    status_transitions: { finalized_at: created, paid_at: status === 'paid' ? created + 60 : null },
    parent: sub ? { type: 'subscription_details', subscription_details: { subscription: sub, metadata: {} } } : null,
    lines: {
      object: 'list',
      data: [{ id: `il_${id}`, amount: o.amountPaid - tax, description: o.description ?? '1 × Plan', period: { start: created, end: created + 30 * DAY }, price: { id: 'price_x', recurring: { interval: o.interval ?? 'month' } }, parent: sub ? { subscription_item_details: { subscription: sub, proration: false } } : null }],
    },
    metadata: {},
    livemode: false,
  };
}

/** A paid invoice's payment: invoice payment → payment intent → charge → balance transaction. */
export function payment(invoiceId: string, created: number, o: { amount: number; currency?: string; settleUsd?: { amount: number; rate: number | null } }): StripeObject[] {
  const suffix = invoiceId.replace(/^in_/, '');
  const currency = o.currency ?? 'usd';
  const bt: StripeObject = {
    id: `txn_${suffix}`,
    object: 'balance_transaction',
    amount: o.settleUsd?.amount ?? o.amount,
    currency: o.settleUsd ? 'usd' : currency,
    exchange_rate: o.settleUsd?.rate ?? null,
    fee: 0,
    net: o.settleUsd?.amount ?? o.amount,
    created,
    type: 'charge',
    reporting_category: 'charge',
  };
  const charge: StripeObject = { id: `ch_${suffix}`, object: 'charge', amount: o.amount, currency, created, customer: null, payment_intent: `pi_${suffix}`, balance_transaction: bt.id, amount_refunded: 0, refunded: false, disputed: false };
  const pi: StripeObject = { id: `pi_${suffix}`, object: 'payment_intent', amount: o.amount, currency, created, latest_charge: charge.id, status: 'succeeded' };
  const ip: StripeObject = {
    id: `inpay_${suffix}`,
    object: 'invoice_payment',
    invoice: invoiceId,
    amount_paid: o.amount,
    amount_requested: o.amount,
    currency,
    created,
    is_default: true,
    status: 'paid',
    payment: { type: 'payment_intent', payment_intent: pi.id },
    status_transitions: { paid_at: created + 60 },
  };
  return [bt, charge, pi, ip];
}

export function refund(id: string, chargeSuffix: string, created: number, amount: number, status = 'succeeded', currency = 'usd', bt?: { amount: number; currency: string; rate: number | null }): StripeObject[] {
  const txn: StripeObject[] = bt ? [{ id: `txn_${id}`, object: 'balance_transaction', amount: -bt.amount, currency: bt.currency, exchange_rate: bt.rate, created, type: 'refund' }] : [];
  return [
    ...txn,
    { id, object: 'refund', amount, currency, created, status, reason: 'requested_by_customer', charge: `ch_${chargeSuffix}`, payment_intent: `pi_${chargeSuffix}`, balance_transaction: bt ? `txn_${id}` : null, metadata: {} },
  ];
}

export function dispute(id: string, chargeSuffix: string, created: number, amount: number, status: string, closedAt?: number, currency = 'usd'): StripeObject {
  const bts: Array<Record<string, unknown>> = [{ id: `txn_${id}_w`, object: 'balance_transaction', amount: -amount, currency, exchange_rate: null, created, type: 'adjustment', reporting_category: 'dispute' }];
  if (status === 'won' && closedAt) bts.push({ id: `txn_${id}_r`, object: 'balance_transaction', amount, currency, exchange_rate: null, created: closedAt, type: 'adjustment', reporting_category: 'dispute_reversal' });
  return { id, object: 'dispute', amount, currency, created, status, reason: 'fraudulent', charge: `ch_${chargeSuffix}`, payment_intent: `pi_${chargeSuffix}`, balance_transactions: bts };
}

/**
 * The hand-worked scenario:
 * - cus_trial: $1 trial (in_trial, 2025-01-03) then full-price rebill in_rebill at trial end
 *   (2025-01-17): $110.00 paid incl. $10.00 tax → base 10000. Refunds re_1 $30.00 and re_2 $20.00
 *   (gross) → base terms 3000×10000/11000 = 2727.27 → 2727 and 2000×10000/11000 = 1818.18 → 1818;
 *   re_3 is pending (ignored), re_4 failed (stored deleted).
 * - cus_won / cus_lost: $50.00 monthly payments disputed; dp_won won on 2025-03-10; dp_lost lost.
 * - cus_eur: annual plan in EUR, €1,190.00 paid incl. €190.00 VAT → base €1,000.00 (100000);
 *   settled in USD at 1.09: USD value = 100000 × 1.09 = 109000 ($1,090.00); settlement
 *   119000 × 1.09 = 129710.
 * - cus_coupon: a 100%-coupon $0 invoice (zero); cus_oneoff: a one-off invoice (non_subscription).
 */
export function scenario(): StripeObject[] {
  const tEnd = T0 + 14 * DAY;
  const t2 = T0 + 1 * DAY;
  return [
    customer('cus_trial', T0, { customer_key: 'ck_trial', partner_key: 'pk_alice' }),
    customer('cus_won', T0 + 10, { customer_key: 'ck_won' }),
    customer('cus_lost', T0 + 20, { customer_key: 'ck_lost', test: 'false' }),
    customer('cus_eur', T0 + 30, { customer_key: 'ck_eur', agency_owner: 'pk_agency' }),
    customer('cus_coupon', T0 + 40, { customer_key: 'ck_coupon', test: 'true' }),
    customer('cus_oneoff', T0 + 50, {}),
    subscription('sub_trial', 'cus_trial', T0, { status: 'active', trialDays: 14 }),
    subscription('sub_won', 'cus_won', T0 + 10, { status: 'active' }),
    subscription('sub_lost', 'cus_lost', T0 + 20, { status: 'canceled', canceledAt: T0 + 40 * DAY }),
    subscription('sub_eur', 'cus_eur', T0 + 30, { status: 'active', interval: 'year', currency: 'eur', price: 'price_annual_eur' }),
    subscription('sub_coupon', 'cus_coupon', T0 + 40, { status: 'active' }),
    invoice('in_trial', 'cus_trial', 'sub_trial', T0, { amountPaid: 100, billingReason: 'subscription_create' }),
    ...payment('in_trial', T0, { amount: 100 }),
    invoice('in_rebill', 'cus_trial', 'sub_trial', tEnd, { amountPaid: 11000, tax: 1000, billingReason: 'subscription_cycle' }),
    ...payment('in_rebill', tEnd, { amount: 11000 }),
    ...refund('re_1', 'rebill', tEnd + 2 * DAY, 3000),
    ...refund('re_2', 'rebill', tEnd + 5 * DAY, 2000),
    ...refund('re_3', 'rebill', tEnd + 6 * DAY, 1000, 'pending'),
    ...refund('re_4', 'rebill', tEnd + 7 * DAY, 500, 'failed'),
    invoice('in_won', 'cus_won', 'sub_won', T0 + 10, { amountPaid: 5000, billingReason: 'subscription_create' }),
    ...payment('in_won', T0 + 10, { amount: 5000 }),
    invoice('in_lost', 'cus_lost', 'sub_lost', T0 + 20, { amountPaid: 5000, billingReason: 'subscription_create' }),
    ...payment('in_lost', T0 + 20, { amount: 5000 }),
    dispute('dp_won', 'won', T0 + 20 * DAY, 5000, 'won', Math.floor(Date.UTC(2025, 2, 10) / 1000)),
    dispute('dp_lost', 'lost', T0 + 21 * DAY, 5000, 'lost'),
    invoice('in_eur', 'cus_eur', 'sub_eur', T0 + 30, { amountPaid: 119000, tax: 19000, currency: 'eur', billingReason: 'subscription_create', interval: 'year' }),
    ...payment('in_eur', T0 + 30, { amount: 119000, currency: 'eur', settleUsd: { amount: 129710, rate: 1.09 } }),
    invoice('in_coupon', 'cus_coupon', 'sub_coupon', t2, { amountPaid: 0, billingReason: 'subscription_create' }),
    invoice('in_oneoff', 'cus_oneoff', null, t2 + 10, { amountPaid: 2500, billingReason: 'manual' }),
    ...payment('in_oneoff', t2 + 10, { amount: 2500 }),
    invoice('in_open', 'cus_won', 'sub_won', t2 + 20, { amountPaid: 5000, status: 'open' }),
  ];
}
