// Pure mapping of Stripe objects to canonical inputs (customers, subscriptions with state history,
// billing events). No I/O: lookups (customer ids, subscription trial windows, the payment a refund
// belongs to, settlement balance transactions) are resolved by the caller and passed in.
import type { BillingEventInput, CustomerInput, SubscriptionInput } from '../../src/model/types.ts';
import {
  baseOfPayment,
  classifyPayment,
  fromUnix,
  isTrialCharge,
  rateString,
  toBaseTerms,
  truthy,
  usdFields,
  type PaymentFacts,
  type SubscriptionFacts,
} from '../billing/common.ts';
import { refId, type StripeBalanceTransaction, type StripeCustomer, type StripeDispute, type StripeInvoice, type StripeRefund, type StripeSubscription } from './schemas.ts';

export const SYSTEM = 'stripe';

// ------------------------------------------------------------------------------------------- customers

const TEST_KEYS = ['test', 'is_test', 'test_account', 'test_customer'];
const AGENCY_KEYS = ['agency_owner', 'agency_owner_ref', 'agency_owner_partner_key', 'agency_owner_partner'];

export function mapCustomer(c: StripeCustomer, connection: string): CustomerInput {
  const m = c.metadata ?? {};
  return {
    identity: { system: SYSTEM, connection, externalId: c.id },
    customerKey: m.customer_key?.trim() || null,
    email: c.email ?? null,
    name: c.name ?? null,
    isTest: TEST_KEYS.some((k) => truthy(m[k])),
    agencyOwnerRef: AGENCY_KEYS.map((k) => m[k]?.trim()).find((v) => !!v) ?? null,
  };
}

// --------------------------------------------------------------------------------------- subscriptions

export function intervalOf(v: string | null | undefined): 'month' | 'year' | null {
  return v === 'month' || v === 'year' ? v : null;
}

export function subscriptionInterval(s: StripeSubscription): 'month' | 'year' | null {
  const item = s.items?.data[0];
  return intervalOf(item?.price?.recurring?.interval ?? item?.plan?.interval ?? null);
}

/**
 * State history from the object's own timestamps (stable across syncs, so re-syncing adds nothing):
 * trialing at trial_start; active at trial_end (or start_date without a trial); canceled at
 * ended_at/canceled_at; other current states (past_due, unpaid, paused, incomplete) from the start
 * of the current period — the best stable instant the object offers.
 */
export function mapSubscription(s: StripeSubscription, connection: string, customerId: number | null): SubscriptionInput {
  const trialStart = fromUnix(s.trial_start);
  const trialEnd = fromUnix(s.trial_end);
  const startedAt = fromUnix(s.start_date ?? s.created);
  const canceledAt = fromUnix(s.canceled_at);
  const endedAt = fromUnix(s.ended_at);
  const periodStart = fromUnix(s.items?.data[0]?.current_period_start ?? s.current_period_start ?? null);
  const states: NonNullable<SubscriptionInput['states']> = [];
  const end = endedAt ?? canceledAt;
  if (trialStart) states.push({ status: 'trialing', validFrom: trialStart, source: 'derived' });
  const trialConverted = trialEnd && s.status !== 'trialing' && s.status !== 'paused' && s.status !== 'incomplete_expired' && (!end || end.getTime() > trialEnd.getTime());
  if (trialConverted) states.push({ status: 'active', validFrom: trialEnd, source: 'derived' });
  if (!trialStart && startedAt && s.status !== 'incomplete' && s.status !== 'incomplete_expired') states.push({ status: 'active', validFrom: startedAt, source: 'derived' });
  if (s.status === 'canceled' && end) states.push({ status: 'canceled', validFrom: end, source: 'derived' });
  else if (!states.some((x) => x.status === s.status)) {
    const at = periodStart ?? startedAt;
    if (at) states.push({ status: s.status, validFrom: at, source: 'derived' });
  }
  return {
    connection,
    billingSystem: 'stripe',
    externalId: s.id,
    customerId,
    planInterval: subscriptionInterval(s),
    planRef: s.items?.data[0]?.price?.id ?? s.items?.data[0]?.plan?.id ?? null,
    status: s.status,
    currency: s.currency ?? s.items?.data[0]?.price?.currency ?? null,
    trialStart,
    trialEnd,
    startedAt,
    canceledAt: end,
    sourceUpdatedAt: null,
    metadata: { cancel_at_period_end: s.cancel_at_period_end ?? false, ...(s.metadata ?? {}) },
    states,
  };
}

// -------------------------------------------------------------------------------------------- invoices

export function invoiceSubscriptionId(inv: StripeInvoice): string | null {
  return (
    refId(inv.parent?.subscription_details?.subscription) ??
    refId(inv.subscription) ??
    inv.lines?.data.map((l) => l.parent?.subscription_item_details?.subscription ?? l.parent?.invoice_item_details?.subscription ?? null).find((x) => !!x) ??
    null
  );
}

export function invoiceTax(inv: StripeInvoice): number {
  if (inv.total != null && inv.total_excluding_tax != null) return inv.total - inv.total_excluding_tax;
  if (inv.total_taxes) return inv.total_taxes.reduce((a, t) => a + t.amount, 0);
  return inv.tax ?? 0;
}

export function invoiceIsPaid(inv: StripeInvoice): boolean {
  return inv.status === 'paid';
}

/** Stripe writes "Trial period for <product>" on $0 trial lines; metadata trial=true marks $1 trials. */
export function explicitTrial(inv: StripeInvoice): boolean {
  if (truthy(inv.metadata?.trial) || truthy(inv.parent?.subscription_details?.metadata?.trial)) return true;
  return (inv.lines?.data ?? []).some((l) => truthy(l.metadata?.trial) || truthy(l.price?.metadata?.trial) || /^trial period\b/i.test(l.description ?? ''));
}

export interface InvoiceLinks {
  invoicePayments: string[];
  paymentIntents: string[];
  charges: string[];
  /** The settlement balance transaction of the (default) payment, if known. */
  settlement: StripeBalanceTransaction | null;
}

export interface InvoiceMappingContext {
  connection: string;
  customerId: number | null;
  subscription: SubscriptionFacts | undefined;
  links: InvoiceLinks | null;
}

/**
 * A paid invoice → one payment event with R2 classification. Base per R3 (see baseOfPayment);
 * USD value = ROUND(base × settlement rate) when the charge settled in USD.
 */
export function mapInvoice(inv: StripeInvoice, ctx: InvoiceMappingContext): BillingEventInput | null {
  if (!invoiceIsPaid(inv)) return null;
  const subId = invoiceSubscriptionId(inv);
  const total = inv.total ?? inv.amount_due ?? inv.amount_paid;
  const { base, tax } = baseOfPayment({ amountPaid: inv.amount_paid, total, tax: invoiceTax(inv) });
  const trial = !!subId && isTrialCharge({ issuedAt: fromUnix(inv.created), trialStart: ctx.subscription?.trialStart ?? null, trialEnd: ctx.subscription?.trialEnd ?? null, explicit: explicitTrial(inv) });
  const bt = ctx.links?.settlement ?? null;
  const fx = usdFields(base, inv.currency, bt ? { currency: bt.currency, rate: rateString(bt.exchange_rate) ?? (bt.currency.toLowerCase() === inv.currency.toLowerCase() ? '1' : null) } : null);
  const lineInterval = inv.lines?.data.map((l) => intervalOf(l.price?.recurring?.interval)).find((x) => !!x) ?? null;
  return {
    connection: ctx.connection,
    billingSystem: 'stripe',
    kind: 'payment',
    externalId: inv.id,
    documentId: inv.id,
    customerId: ctx.customerId,
    subscriptionExternalId: subId,
    occurredAt: fromUnix(inv.status_transitions?.paid_at) ?? fromUnix(inv.created)!,
    amountMinor: base,
    grossMinor: inv.amount_paid,
    taxMinor: tax,
    currency: inv.currency,
    ...fx,
    settlementMinor: bt?.amount ?? null,
    settlementCurrency: bt?.currency ?? null,
    classification: classifyPayment({ hasSubscription: !!subId, base, trial }),
    billingReason: inv.billing_reason ?? null,
    // The plan this invoice paid for, not the subscription's plan today (R5 prices a first payment by what was bought).
    planInterval: lineInterval ?? ctx.subscription?.planInterval ?? null,
    status: inv.status ?? null,
    metadata: {
      total,
      subtotal: inv.subtotal ?? null,
      total_excluding_tax: inv.total_excluding_tax ?? null,
      amount_paid: inv.amount_paid,
      invoice_payments: ctx.links?.invoicePayments ?? [],
      payment_intents: ctx.links?.paymentIntents ?? [],
      charges: ctx.links?.charges ?? [],
      ...(inv.livemode === false ? { livemode: false } : {}),
    },
  };
}

// --------------------------------------------------------------------------------- refunds / disputes

export interface MoneyBackContext {
  connection: string;
  customerId: number | null;
  /** The payment (invoice) this refund/dispute belongs to, when resolved. */
  payment: PaymentFacts | null;
  /** Invoice id when known but its payment event is not stored yet (linked later by the writer). */
  invoiceId: string | null;
}

function settlementOf(bt: StripeBalanceTransaction | string | null | undefined): { currency: string; rate: string | null; amount: number } | null {
  if (!bt || typeof bt === 'string') return null;
  return { currency: bt.currency, rate: rateString(bt.exchange_rate), amount: bt.amount };
}

function linkFields(ctx: MoneyBackContext): Pick<BillingEventInput, 'paymentExternalId' | 'subscriptionExternalId'> {
  return { paymentExternalId: ctx.payment?.externalId ?? ctx.invoiceId, subscriptionExternalId: ctx.payment?.subscriptionExternalId ?? null };
}

/**
 * Each refund is its own event (never derived from the charge's cumulative amount_refunded).
 * Succeeded → refund event; failed/canceled → the event is marked deleted (a refund can fail after
 * succeeding); pending → nothing yet. Amount in base terms (tax share removed pro rata).
 */
export function mapRefund(r: StripeRefund, ctx: MoneyBackContext): BillingEventInput | null {
  const status = r.status ?? 'succeeded';
  if (status !== 'succeeded' && status !== 'failed' && status !== 'canceled') return null;
  const amount = toBaseTerms(r.amount, ctx.payment);
  const st = settlementOf(r.balance_transaction);
  return {
    connection: ctx.connection,
    billingSystem: 'stripe',
    kind: 'refund',
    externalId: r.id,
    documentId: r.id,
    customerId: ctx.customerId,
    ...linkFields(ctx),
    occurredAt: fromUnix(r.created)!,
    amountMinor: amount,
    grossMinor: r.amount,
    taxMinor: r.amount - amount,
    currency: r.currency,
    ...usdFields(amount, r.currency, st),
    settlementMinor: st ? Math.abs(st.amount) : null,
    settlementCurrency: st?.currency ?? null,
    status,
    metadata: { charge: refId(r.charge), payment_intent: refId(r.payment_intent), reason: r.reason ?? null },
    deleted: status !== 'succeeded',
  };
}

const WON = new Set(['won', 'warning_closed', 'prevented']);

/**
 * A dispute yields dispute_opened (the hold), then dispute_won, or chargeback + dispute_lost.
 * Stripe has no "closed at" field: the time is the webhook event's, else the latest balance
 * transaction (reinstatement for won), else the dispute's creation; the first stored value is kept.
 */
export function mapDispute(d: StripeDispute, ctx: MoneyBackContext, closedAt?: Date | null): BillingEventInput[] {
  const amount = toBaseTerms(d.amount, ctx.payment);
  const bts = [...(d.balance_transactions ?? [])].sort((a, b) => (a.created ?? 0) - (b.created ?? 0));
  const withdrawal = bts[0] ? settlementOf(bts[0]) : null;
  const opened = fromUnix(d.created)!;
  const base = {
    connection: ctx.connection,
    billingSystem: 'stripe' as const,
    documentId: d.id,
    externalId: d.id,
    customerId: ctx.customerId,
    ...linkFields(ctx),
    amountMinor: amount,
    grossMinor: d.amount,
    taxMinor: d.amount - amount,
    currency: d.currency,
    ...usdFields(amount, d.currency, withdrawal),
    settlementMinor: withdrawal ? Math.abs(withdrawal.amount) : null,
    settlementCurrency: withdrawal?.currency ?? null,
    status: d.status,
    metadata: { charge: refId(d.charge), payment_intent: refId(d.payment_intent), reason: d.reason ?? null },
  };
  const out: BillingEventInput[] = [{ ...base, kind: 'dispute_opened', occurredAt: opened }];
  const lastBt = bts.length > 1 ? fromUnix(bts[bts.length - 1]!.created) : null;
  const closed = closedAt ?? lastBt ?? opened;
  if (WON.has(d.status)) out.push({ ...base, kind: 'dispute_won', occurredAt: closed });
  if (d.status === 'lost') {
    out.push({ ...base, kind: 'chargeback', occurredAt: closed });
    out.push({ ...base, kind: 'dispute_lost', occurredAt: closed });
  }
  return out;
}
