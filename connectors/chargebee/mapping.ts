// Pure mapping of Chargebee objects to canonical inputs.
//
// Consolidated invoices (decision): an invoice whose line items carry two or more distinct
// subscription ids becomes ONE PAYMENT EVENT PER SUBSCRIPTION, external id `<invoice>:<sub>`
// (lines without a subscription form a `<invoice>:_` non_subscription share). Each share's
// weight is its lines' amount after discounts (amount − discount_amount −
// item_level_discount_amount); the invoice's R3 base and its paid amount are split over those
// weights by largest remainder, so the shares add up exactly to the invoice. An invoice with one
// subscription keeps the plain invoice id. Credit notes and reversals on a split invoice are split
// the same way (by their own lines' subscription ids, else pro rata to the shares' paid amounts).
import type { BillingEventInput, CustomerInput, SubscriptionInput } from '../../src/model/types.ts';
import {
  allocate,
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
import type { CbCreditNote, CbCustomer, CbInvoice, CbLineItem, CbSubscription, CbTransaction } from './schemas.ts';

export const SYSTEM = 'chargebee';
const NO_SUB = '_';

// ------------------------------------------------------------------------------------------ customers

export function mapCustomer(c: CbCustomer, connection: string): CustomerInput {
  const m = c.meta_data;
  const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim() : typeof v === 'number' ? String(v) : null);
  const o = c as Record<string, unknown>;
  return {
    identity: { system: SYSTEM, connection, externalId: c.id },
    customerKey: str(m.customer_key) ?? str(o.cf_customer_key),
    email: c.email ?? null,
    name: [c.first_name, c.last_name].filter(Boolean).join(' ') || c.company || null,
    isTest: ['test', 'is_test', 'test_account'].some((k) => truthy(m[k])),
    agencyOwnerRef: str(m.agency_owner) ?? str(m.agency_owner_ref) ?? str(o.cf_agency_owner),
  };
}

// -------------------------------------------------------------------------------------- subscriptions

/** Chargebee statuses in the canonical vocabulary shared with Stripe. */
export function normalizeStatus(s: string): string {
  return ({ in_trial: 'trialing', cancelled: 'canceled' } as Record<string, string>)[s] ?? s;
}

export function mapSubscription(s: CbSubscription, connection: string, customerId: number | null): SubscriptionInput {
  const trialStart = fromUnix(s.trial_start);
  const trialEnd = fromUnix(s.trial_end);
  const startedAt = fromUnix(s.started_at ?? s.created_at);
  const activatedAt = fromUnix(s.activated_at);
  const cancelledAt = fromUnix(s.cancelled_at);
  const status = normalizeStatus(s.status);
  const states: NonNullable<SubscriptionInput['states']> = [];
  if (trialStart) states.push({ status: 'trialing', validFrom: trialStart, source: 'derived' });
  const activeFrom = activatedAt ?? (trialEnd && status !== 'trialing' && (!cancelledAt || cancelledAt > trialEnd) ? trialEnd : null) ?? (!trialStart ? startedAt : null);
  if (activeFrom && status !== 'future') states.push({ status: 'active', validFrom: activeFrom, source: 'derived' });
  const pauseAt = fromUnix(s.pause_date);
  if (status === 'paused' && pauseAt) states.push({ status: 'paused', validFrom: pauseAt, source: 'derived' });
  if (status === 'canceled' && cancelledAt) states.push({ status: 'canceled', validFrom: cancelledAt, source: 'derived' });
  const unit = s.billing_period_unit;
  return {
    connection,
    billingSystem: 'chargebee',
    externalId: s.id,
    customerId,
    planInterval: unit === 'month' || unit === 'year' ? unit : null,
    planRef: s.subscription_items?.find((i) => (i.item_type ?? 'plan') === 'plan')?.item_price_id ?? s.plan_id ?? null,
    status,
    currency: s.currency_code ?? null,
    trialStart,
    trialEnd,
    startedAt,
    canceledAt: cancelledAt,
    // The current status (non_renewing …) is observed at updated_at when no timestamp names it.
    sourceUpdatedAt: fromUnix(s.updated_at),
    metadata: { chargebee_status: s.status, ...(s.billing_period && s.billing_period !== 1 ? { billing_period: s.billing_period } : {}) },
    states,
  };
}

// ------------------------------------------------------------------------------------------- invoices

const lineNet = (l: CbLineItem): number => (l.amount ?? 0) - (l.discount_amount ?? 0) - (l.item_level_discount_amount ?? 0);

/** Subscription shares of a document's lines: [sub id or '_', net weight, gross weight]. */
export function lineShares(lines: CbLineItem[] | null | undefined): Array<{ sub: string; net: number; gross: number; lines: CbLineItem[] }> {
  const m = new Map<string, { sub: string; net: number; gross: number; lines: CbLineItem[] }>();
  for (const l of lines ?? []) {
    const sub = l.subscription_id ?? NO_SUB;
    const cur = m.get(sub) ?? { sub, net: 0, gross: 0, lines: [] };
    cur.net += lineNet(l);
    cur.gross += lineNet(l) + (l.tax_amount ?? 0);
    cur.lines.push(l);
    m.set(sub, cur);
  }
  return [...m.values()];
}

export function isConsolidated(inv: { line_items?: CbLineItem[] | null }): boolean {
  return new Set((inv.line_items ?? []).map((l) => l.subscription_id).filter(Boolean)).size >= 2;
}

export function invoiceSubscriptionIds(inv: CbInvoice): string[] {
  return [...new Set([inv.subscription_id, ...(inv.line_items ?? []).map((l) => l.subscription_id)].filter((x): x is string => !!x))];
}

const TRIAL_TEXT = /\btrial\b/i;

export interface CbMappingContext {
  connection: string;
  customerId: number | null;
  subscriptions: Map<string, SubscriptionFacts>;
  /** Site base currency that exchange_rate converts into (USD unless configured). */
  baseCurrency: string;
}

/**
 * A paid invoice → payment event(s). Base per R3: total − tax when paid in full; when credits
 * covered part of it, the money paid (amount_paid) split pro rata between base and tax. A zero or
 * negative invoice (Chargebee marks those paid at once) is never qualified.
 */
export function mapInvoice(inv: CbInvoice, ctx: CbMappingContext): BillingEventInput[] {
  if (inv.status !== 'paid' || inv.deleted) return [];
  const total = inv.total ?? 0;
  const amountPaid = inv.amount_paid ?? 0;
  const { base, tax } = baseOfPayment({ amountPaid, total, tax: inv.tax ?? 0 });
  const rate = rateString(inv.exchange_rate);
  const occurredAt = fromUnix(inv.paid_at) ?? fromUnix(inv.date) ?? new Date(0);
  const issuedAt = fromUnix(inv.date) ?? occurredAt;
  const common = {
    connection: ctx.connection,
    billingSystem: 'chargebee' as const,
    kind: 'payment' as const,
    documentId: inv.id,
    customerId: ctx.customerId,
    occurredAt,
    currency: inv.currency_code,
    billingReason: inv.first_invoice ? 'first_invoice' : inv.recurring ? 'recurring' : 'one_time',
    status: inv.status,
  };
  const make = (externalId: string, sub: string | null, b: number, gross: number, lines: CbLineItem[], extra: Record<string, unknown>): BillingEventInput => {
    const facts = sub ? ctx.subscriptions.get(sub) : undefined;
    const explicit = lines.some((l) => TRIAL_TEXT.test(l.entity_id ?? '') || TRIAL_TEXT.test(l.description ?? ''));
    const trial = !!sub && isTrialCharge({ issuedAt, trialStart: facts?.trialStart ?? null, trialEnd: facts?.trialEnd ?? null, explicit });
    return {
      ...common,
      externalId,
      subscriptionExternalId: sub,
      amountMinor: b,
      grossMinor: gross,
      taxMinor: gross - b,
      ...usdFields(b, inv.currency_code, rate ? { currency: ctx.baseCurrency, rate } : null),
      classification: classifyPayment({ hasSubscription: !!sub, base: b, trial }),
      planInterval: facts?.planInterval ?? null,
      metadata: { total, amount_paid: amountPaid, credits_applied: inv.credits_applied ?? 0, recurring: inv.recurring ?? null, first_invoice: inv.first_invoice ?? null, ...extra },
    };
  };
  if (!isConsolidated(inv)) {
    const sub = inv.subscription_id ?? invoiceSubscriptionIds(inv)[0] ?? null;
    return [make(inv.id, sub, base, amountPaid, inv.line_items ?? [], {})];
  }
  const shares = lineShares(inv.line_items);
  const bases = allocate(base, shares.map((s) => s.net));
  const grosses = allocate(amountPaid, shares.map((s) => s.gross));
  void tax;
  return shares.map((s, i) =>
    make(`${inv.id}:${s.sub}`, s.sub === NO_SUB ? null : s.sub, bases[i]!, grosses[i]!, s.lines, { consolidated: true, share_weight: s.net, shares: shares.length }),
  );
}

// --------------------------------------------------------------------------- credit notes, reversals

/** Splits an amount taken back over a document's payment shares (one entry when not split). */
function overShares(
  amountBack: number,
  shares: PaymentFacts[],
  byLines: Array<{ sub: string; gross: number }> | null,
): Array<{ payment: PaymentFacts | null; amount: number; suffix: string | null }> {
  if (shares.length <= 1) return [{ payment: shares[0] ?? null, amount: amountBack, suffix: null }];
  const bySub = new Map(shares.map((s) => [s.externalId.slice(s.externalId.lastIndexOf(':') + 1), s]));
  if (byLines && byLines.length > 0 && byLines.every((l) => bySub.has(l.sub))) {
    const amounts = allocate(amountBack, byLines.map((l) => l.gross));
    return byLines.map((l, i) => ({ payment: bySub.get(l.sub)!, amount: amounts[i]!, suffix: l.sub }));
  }
  const amounts = allocate(amountBack, shares.map((s) => s.gross));
  return shares.map((s, i) => ({ payment: s, amount: amounts[i]!, suffix: s.externalId.slice(s.externalId.lastIndexOf(':') + 1) }));
}

export interface MoneyBackContext {
  connection: string;
  customerId: number | null;
  /** Payment shares of the referenced invoice (from the store); empty when unknown. */
  shares: PaymentFacts[];
  baseCurrency: string;
}

/**
 * Credit notes: reason_code chargeback → chargeback (its total is taken back); a refundable note
 * → refund of amount_refunded (nothing refunded yet → nothing). Store-credit and adjustment notes
 * are not money out (the credit lowers a later invoice's amount_paid instead) and are skipped.
 * Voided notes are written as deleted. Amounts in base terms via the payment's base/gross ratio.
 */
export function mapCreditNote(cn: CbCreditNote, invoiceId: string | null, ctx: MoneyBackContext): BillingEventInput[] {
  const chargeback = cn.reason_code === 'chargeback' || cn.create_reason_code === 'chargeback';
  if (!chargeback && cn.type !== 'refundable') return [];
  const back = chargeback ? (cn.total ?? 0) : (cn.amount_refunded ?? 0);
  const voided = cn.status === 'voided' || cn.deleted === true;
  if (back <= 0 && !voided) return [];
  const kind = chargeback ? ('chargeback' as const) : ('refund' as const);
  const rate = rateString(cn.exchange_rate);
  const parts = overShares(back, ctx.shares, lineShares(cn.line_items).map((s) => ({ sub: s.sub, gross: s.gross })));
  return parts.map((p) => {
    const amount = toBaseTerms(p.amount, p.payment);
    return {
      connection: ctx.connection,
      billingSystem: 'chargebee',
      kind,
      externalId: p.suffix ? `${cn.id}:${p.suffix}` : cn.id,
      documentId: cn.id,
      customerId: ctx.customerId,
      paymentExternalId: p.payment?.externalId ?? invoiceId,
      subscriptionExternalId: p.payment?.subscriptionExternalId ?? cn.subscription_id ?? null,
      occurredAt: fromUnix(cn.refunded_at) ?? fromUnix(cn.date) ?? new Date(0),
      amountMinor: amount,
      grossMinor: p.amount,
      taxMinor: p.amount - amount,
      currency: cn.currency_code,
      ...usdFields(amount, cn.currency_code, rate ? { currency: ctx.baseCurrency, rate } : null),
      status: cn.status,
      metadata: { type: cn.type, reason_code: cn.reason_code ?? cn.create_reason_code ?? null, reference_invoice_id: invoiceId },
      deleted: voided,
    };
  });
}

/** payment_reversal (success) and a payment that failed late (late_failure) claw the money back. */
export function isReversal(t: CbTransaction): boolean {
  return (t.type === 'payment_reversal' && (t.status ?? 'success') === 'success') || (t.type === 'payment' && t.status === 'late_failure');
}

export function mapTransaction(t: CbTransaction, sharesByInvoice: Map<string, PaymentFacts[]>, ctx: Omit<MoneyBackContext, 'shares'>): BillingEventInput[] {
  if (!isReversal(t)) return [];
  const links = t.linked_invoices?.length ? t.linked_invoices : [{ invoice_id: '', applied_amount: t.amount ?? 0 }];
  const rate = rateString(t.exchange_rate);
  return links.flatMap((li) => {
    const shares = li.invoice_id ? (sharesByInvoice.get(li.invoice_id) ?? []) : [];
    const parts = overShares(li.applied_amount ?? t.amount ?? 0, shares, null);
    return parts.map((p) => {
      const amount = toBaseTerms(p.amount, p.payment);
      const idParts = [t.id, links.length > 1 ? li.invoice_id : null, p.suffix].filter(Boolean);
      return {
        connection: ctx.connection,
        billingSystem: 'chargebee' as const,
        kind: 'reversal' as const,
        externalId: idParts.join(':'),
        documentId: t.id,
        customerId: ctx.customerId,
        paymentExternalId: p.payment?.externalId ?? (li.invoice_id || null),
        subscriptionExternalId: p.payment?.subscriptionExternalId ?? t.subscription_id ?? null,
        occurredAt: fromUnix(t.date) ?? new Date(0),
        amountMinor: amount,
        grossMinor: p.amount,
        taxMinor: p.amount - amount,
        currency: t.currency_code,
        ...usdFields(amount, t.currency_code, rate ? { currency: ctx.baseCurrency, rate } : null),
        status: t.status ?? null,
        metadata: { type: t.type, reference_transaction_id: t.reference_transaction_id ?? null, invoice_id: li.invoice_id || null },
        deleted: t.deleted === true,
      };
    });
  });
}
