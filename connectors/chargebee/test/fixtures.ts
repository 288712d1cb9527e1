// API-shaped Chargebee v2 objects for the fake server and the hand-worked scenario.
import type { CbObject, ChargebeeFakeStore } from '../fake-server.ts';

export const DAY = 86_400;
export const T0 = Math.floor(Date.UTC(2025, 0, 3) / 1000);

export function customer(id: string, meta: Record<string, unknown> | string, t = T0): CbObject {
  return { id, email: `${id}@example.com`, first_name: 'C', last_name: id, meta_data: meta, created_at: t, updated_at: t, deleted: false, object: 'customer' };
}

export function subscription(id: string, cust: string, o: { status: string; unit?: 'month' | 'year'; currency?: string; trialDays?: number; cancelledAt?: number; t?: number; updatedAt?: number }): CbObject {
  const t = o.t ?? T0;
  const trialEnd = o.trialDays ? t + o.trialDays * DAY : null;
  return {
    id,
    customer_id: cust,
    status: o.status,
    billing_period: 1,
    billing_period_unit: o.unit ?? 'month',
    currency_code: o.currency ?? 'USD',
    trial_start: o.trialDays ? t : null,
    trial_end: trialEnd,
    started_at: t,
    activated_at: o.status === 'in_trial' ? null : (trialEnd ?? t),
    cancelled_at: o.cancelledAt ?? null,
    created_at: t,
    updated_at: o.updatedAt ?? o.cancelledAt ?? trialEnd ?? t,
    subscription_items: [{ item_price_id: `plan-${o.unit ?? 'month'}-${(o.currency ?? 'USD').toLowerCase()}`, item_type: 'plan' }],
    object: 'subscription',
  };
}

type Line = { sub?: string | null; amount: number; tax?: number; discount?: number; description?: string };

export function invoice(id: string, cust: string, sub: string | null, date: number, o: { lines: Line[]; amountPaid?: number; credits?: number; currency?: string; rate?: number; first?: boolean; status?: string }): CbObject {
  const line_items = o.lines.map((l, i) => ({
    id: `li_${id}_${i}`,
    subscription_id: l.sub === undefined ? sub : l.sub,
    amount: l.amount,
    tax_amount: l.tax ?? 0,
    discount_amount: l.discount ?? 0,
    item_level_discount_amount: 0,
    entity_type: l.sub === null ? 'charge_item_price' : 'plan_item_price',
    entity_id: 'plan',
    description: l.description ?? 'Plan',
    date_from: date,
    date_to: date + 30 * DAY,
  }));
  const tax = o.lines.reduce((a, l) => a + (l.tax ?? 0), 0);
  const total = o.lines.reduce((a, l) => a + l.amount - (l.discount ?? 0) + (l.tax ?? 0), 0);
  return {
    id,
    customer_id: cust,
    subscription_id: sub,
    recurring: true,
    first_invoice: o.first ?? false,
    status: o.status ?? 'paid',
    date,
    paid_at: date + 60,
    sub_total: o.lines.reduce((a, l) => a + l.amount, 0),
    tax,
    total,
    amount_paid: o.amountPaid ?? total,
    credits_applied: o.credits ?? 0,
    currency_code: o.currency ?? 'USD',
    exchange_rate: o.rate ?? 1.0,
    line_items,
    updated_at: date + 60,
    deleted: false,
    object: 'invoice',
  };
}

export function creditNote(id: string, inv: string, cust: string, date: number, o: { type?: string; reason?: string; total: number; refunded?: number; status?: string; currency?: string; rate?: number; lines?: Line[] }): CbObject {
  return {
    id,
    customer_id: cust,
    reference_invoice_id: inv,
    type: o.type ?? 'refundable',
    reason_code: o.reason ?? 'product_unsatisfactory',
    status: o.status ?? 'refunded',
    date,
    refunded_at: date + 30,
    total: o.total,
    amount_refunded: o.refunded ?? o.total,
    amount_allocated: 0,
    currency_code: o.currency ?? 'USD',
    exchange_rate: o.rate ?? 1.0,
    line_items: (o.lines ?? []).map((l, i) => ({ id: `cli_${id}_${i}`, subscription_id: l.sub ?? null, amount: l.amount, tax_amount: l.tax ?? 0, discount_amount: 0 })),
    updated_at: date + 30,
    object: 'credit_note',
  };
}

export function transaction(id: string, cust: string, date: number, o: { type: string; status: string; amount: number; links: Array<[string, number]> }): CbObject {
  return { id, customer_id: cust, type: o.type, status: o.status, amount: o.amount, currency_code: 'USD', exchange_rate: 1.0, date, linked_invoices: o.links.map(([invoice_id, applied_amount]) => ({ invoice_id, applied_amount })), updated_at: date, object: 'transaction' };
}

/**
 * Hand-worked scenario (amounts in cents):
 * - inv_trial $1 while cb_sub_trial is in trial → trial; inv_rebill at trial end: $110 incl $10 tax → base 10000.
 *   cn_1 refunds $33 → 3300 × 10000/11000 = 3000; cn_2 refunds $22 → 2200 × 10000/11000 = 2000.
 * - inv_cons (consolidated): lines sub_a 6000 − 1000 discount + 500 tax, sub_b 4000 + 400 tax, one-off 1000 + 100 tax:
 *   total 11000, tax 1000; $10 of credit applied so amount_paid 10000 → base = ROUND(10000 × 10000/11000) = 9091.
 *   Shares by net 5000:4000:1000 → 4545.5, 3636.4, 909.1 → 4546, 3636, 909 (largest remainder; sum 9091);
 *   paid by gross 5500:4400:1100 → 5000, 4000, 1000.
 * - inv_eur annual: €1,190 incl €190 VAT, exchange_rate 1.09 → base 100000, USD 100000 × 1.09 = 109000.
 *   cn_cb: chargeback of the full €1,190 → chargeback 100000 (USD 109000).
 * - inv_zero $0 (zero), inv_neg −$5 credit invoice (negative): never qualified.
 * - txn_rev payment_reversal of inv_trial's $1; txn_late (late_failure) of inv_cons's 10000 → split 5000/4000/1000.
 */
export function fill(store: ChargebeeFakeStore): void {
  const tEnd = T0 + 14 * DAY;
  store.add('customers', customer('cb_cus_1', { customer_key: 'ck_cb1', partner_key: 'pk_alice' }), customer('cb_cus_2', '{"customer_key":"ck_cb2","agency_owner":"pk_agency"}'), customer('cb_cus_3', { customer_key: 'ck_cb3', test: true }));
  store.add(
    'subscriptions',
    subscription('cb_sub_trial', 'cb_cus_1', { status: 'active', trialDays: 14 }),
    subscription('cb_sub_a', 'cb_cus_2', { status: 'active' }),
    subscription('cb_sub_b', 'cb_cus_2', { status: 'non_renewing', updatedAt: T0 + 20 * DAY }),
    subscription('cb_sub_eur', 'cb_cus_3', { status: 'cancelled', unit: 'year', currency: 'EUR', cancelledAt: T0 + 200 * DAY }),
  );
  store.add(
    'invoices',
    invoice('inv_trial', 'cb_cus_1', 'cb_sub_trial', T0, { lines: [{ amount: 100 }], first: true }),
    invoice('inv_rebill', 'cb_cus_1', 'cb_sub_trial', tEnd, { lines: [{ amount: 10000, tax: 1000 }] }),
    invoice('inv_cons', 'cb_cus_2', null, T0 + 2 * DAY, { lines: [{ sub: 'cb_sub_a', amount: 6000, discount: 1000, tax: 500 }, { sub: 'cb_sub_b', amount: 4000, tax: 400 }, { sub: null, amount: 1000, tax: 100, description: 'Setup fee' }], amountPaid: 10000, credits: 1000 }),
    invoice('inv_eur', 'cb_cus_3', 'cb_sub_eur', T0 + 3 * DAY, { lines: [{ amount: 100000, tax: 19000 }], currency: 'EUR', rate: 1.09, first: true }),
    invoice('inv_zero', 'cb_cus_2', 'cb_sub_a', T0 + 33 * DAY, { lines: [{ amount: 0 }] }),
    invoice('inv_neg', 'cb_cus_2', 'cb_sub_a', T0 + 34 * DAY, { lines: [{ amount: -500 }] }),
    invoice('inv_due', 'cb_cus_2', 'cb_sub_a', T0 + 35 * DAY, { lines: [{ amount: 5000 }], status: 'payment_due' }),
  );
  store.add(
    'credit_notes',
    creditNote('cn_1', 'inv_rebill', 'cb_cus_1', tEnd + 2 * DAY, { total: 3300 }),
    creditNote('cn_2', 'inv_rebill', 'cb_cus_1', tEnd + 5 * DAY, { total: 2200 }),
    creditNote('cn_cb', 'inv_eur', 'cb_cus_3', T0 + 40 * DAY, { total: 119000, refunded: 0, reason: 'chargeback', status: 'adjusted', currency: 'EUR', rate: 1.09 }),
    creditNote('cn_store', 'inv_rebill', 'cb_cus_1', tEnd + 6 * DAY, { type: 'store', total: 1000, refunded: 0, status: 'refund_due' }),
  );
  store.add(
    'transactions',
    transaction('txn_rev', 'cb_cus_1', T0 + 3 * DAY, { type: 'payment_reversal', status: 'success', amount: 100, links: [['inv_trial', 100]] }),
    transaction('txn_late', 'cb_cus_2', T0 + 6 * DAY, { type: 'payment', status: 'late_failure', amount: 10000, links: [['inv_cons', 10000]] }),
    transaction('txn_ok', 'cb_cus_1', tEnd, { type: 'payment', status: 'success', amount: 11000, links: [['inv_rebill', 11000]] }),
  );
}
