// Loose zod schemas for the Stripe objects we read (API 2025-03-31.basil and later shapes).
// Unknown fields pass through into the raw store; only what the mapping needs is declared, and
// fields that moved between API versions are optional so older payloads still validate.
import { z } from 'zod';

const id = z.string().min(1);
const ts = z.number().int();
const meta = z.record(z.string(), z.string()).nullish();
/** A field that is an id or, when expanded, the object. */
const ref = <T extends z.ZodType>(obj: T) => z.union([z.string(), obj]).nullish();

export const balanceTransactionSchema = z.looseObject({
  id,
  object: z.literal('balance_transaction').optional(),
  amount: z.number().int(),
  currency: z.string(),
  exchange_rate: z.number().nullish(),
  fee: z.number().int().nullish(),
  net: z.number().int().nullish(),
  created: ts.optional(),
  type: z.string().optional(),
  reporting_category: z.string().nullish(),
});
export type StripeBalanceTransaction = z.infer<typeof balanceTransactionSchema>;

export const customerSchema = z.looseObject({
  id,
  object: z.literal('customer').optional(),
  email: z.string().nullish(),
  name: z.string().nullish(),
  created: ts,
  metadata: meta,
  livemode: z.boolean().optional(),
  deleted: z.boolean().optional(),
});
export type StripeCustomer = z.infer<typeof customerSchema>;

const priceSchema = z.looseObject({
  id: z.string(),
  currency: z.string().optional(),
  unit_amount: z.number().nullish(),
  nickname: z.string().nullish(),
  metadata: meta,
  recurring: z.looseObject({ interval: z.string(), interval_count: z.number().optional() }).nullish(),
});

export const subscriptionSchema = z.looseObject({
  id,
  object: z.literal('subscription').optional(),
  customer: ref(z.looseObject({ id: z.string() })),
  status: z.string(),
  currency: z.string().nullish(),
  created: ts,
  start_date: ts.nullish(),
  trial_start: ts.nullish(),
  trial_end: ts.nullish(),
  canceled_at: ts.nullish(),
  ended_at: ts.nullish(),
  cancel_at_period_end: z.boolean().nullish(),
  metadata: meta,
  items: z
    .looseObject({
      data: z.array(
        z.looseObject({
          id: z.string().optional(),
          price: priceSchema.nullish(),
          plan: z.looseObject({ id: z.string(), interval: z.string().nullish() }).nullish(),
          current_period_start: ts.nullish(),
          current_period_end: ts.nullish(),
        }),
      ),
    })
    .nullish(),
  // Pre-basil payloads carried the period on the subscription itself.
  current_period_start: ts.nullish(),
});
export type StripeSubscription = z.infer<typeof subscriptionSchema>;

const lineSchema = z.looseObject({
  id: z.string().optional(),
  amount: z.number().int().optional(),
  description: z.string().nullish(),
  metadata: meta,
  period: z.looseObject({ start: ts, end: ts }).nullish(),
  pricing: z.looseObject({ price_details: z.looseObject({ price: z.string().nullish() }).nullish() }).nullish(),
  price: priceSchema.nullish(),
  parent: z
    .looseObject({
      subscription_item_details: z.looseObject({ subscription: z.string().nullish(), proration: z.boolean().nullish() }).nullish(),
      invoice_item_details: z.looseObject({ subscription: z.string().nullish() }).nullish(),
    })
    .nullish(),
});

export const invoiceSchema = z.looseObject({
  id,
  object: z.literal('invoice').optional(),
  customer: ref(z.looseObject({ id: z.string() })),
  status: z.string().nullish(),
  currency: z.string(),
  created: ts,
  billing_reason: z.string().nullish(),
  amount_due: z.number().int().nullish(),
  amount_paid: z.number().int(),
  subtotal: z.number().int().nullish(),
  total: z.number().int().nullish(),
  total_excluding_tax: z.number().int().nullish(),
  total_taxes: z.array(z.looseObject({ amount: z.number().int() })).nullish(),
  tax: z.number().int().nullish(),
  status_transitions: z.looseObject({ paid_at: ts.nullish(), finalized_at: ts.nullish(), voided_at: ts.nullish() }).nullish(),
  parent: z
    .looseObject({
      type: z.string().nullish(),
      subscription_details: z.looseObject({ subscription: ref(z.looseObject({ id: z.string() })), metadata: meta }).nullish(),
    })
    .nullish(),
  /** Legacy (pre-basil) field, read only as a fallback. */
  subscription: ref(z.looseObject({ id: z.string() })),
  lines: z.looseObject({ data: z.array(lineSchema) }).nullish(),
  metadata: meta,
  livemode: z.boolean().optional(),
});
export type StripeInvoice = z.infer<typeof invoiceSchema>;

export const chargeSchema = z.looseObject({
  id,
  amount: z.number().int().optional(),
  currency: z.string().optional(),
  payment_intent: ref(z.looseObject({ id: z.string() })),
  balance_transaction: ref(balanceTransactionSchema),
  customer: ref(z.looseObject({ id: z.string() })),
});
export type StripeCharge = z.infer<typeof chargeSchema>;

export const invoicePaymentSchema = z.looseObject({
  id,
  invoice: ref(z.looseObject({ id: z.string() })),
  amount_paid: z.number().int().nullish(),
  status: z.string().optional(),
  is_default: z.boolean().optional(),
  payment: z
    .looseObject({
      type: z.string(),
      charge: ref(chargeSchema),
      payment_intent: ref(z.looseObject({ id: z.string(), latest_charge: ref(chargeSchema) })),
    })
    .nullish(),
  status_transitions: z.looseObject({ paid_at: ts.nullish() }).nullish(),
  created: ts.optional(),
});
export type StripeInvoicePayment = z.infer<typeof invoicePaymentSchema>;

export const refundSchema = z.looseObject({
  id,
  object: z.literal('refund').optional(),
  amount: z.number().int(),
  currency: z.string(),
  created: ts,
  status: z.string().nullish(),
  reason: z.string().nullish(),
  charge: ref(chargeSchema),
  payment_intent: ref(z.looseObject({ id: z.string() })),
  balance_transaction: ref(balanceTransactionSchema),
  metadata: meta,
});
export type StripeRefund = z.infer<typeof refundSchema>;

export const disputeSchema = z.looseObject({
  id,
  object: z.literal('dispute').optional(),
  amount: z.number().int(),
  currency: z.string(),
  created: ts,
  status: z.string(),
  reason: z.string().nullish(),
  charge: ref(chargeSchema),
  payment_intent: ref(z.looseObject({ id: z.string() })),
  balance_transactions: z.array(balanceTransactionSchema).nullish(),
});
export type StripeDispute = z.infer<typeof disputeSchema>;

export const eventSchema = z.looseObject({
  id,
  object: z.literal('event').optional(),
  type: z.string(),
  created: ts,
  data: z.looseObject({ object: z.looseObject({ id: z.string().optional(), object: z.string().optional() }) }),
});
export type StripeEvent = z.infer<typeof eventSchema>;

export function refId(v: string | { id: string } | null | undefined): string | null {
  if (!v) return null;
  return typeof v === 'string' ? v : v.id;
}
