// Loose zod schemas for the Chargebee v2 objects we read. Amounts are integer minor units (the
// reference marks this "verify"; Chargebee documents amounts "in cents"). Unknown fields pass
// through into the raw store; only what the mapping needs is declared.
import { z } from 'zod';

const id = z.string().min(1);
const ts = z.number().int();
const num = z.number();

/** meta_data is a JSON object; some accounts send it as a JSON string — accept both. */
const metaData = z
  .union([z.record(z.string(), z.unknown()), z.string()])
  .nullish()
  .transform((v): Record<string, unknown> => {
    if (!v) return {};
    if (typeof v === 'string') {
      try {
        const parsed: unknown = JSON.parse(v);
        return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
      } catch {
        return {};
      }
    }
    return v;
  });

export const customerSchema = z.looseObject({
  id,
  email: z.string().nullish(),
  first_name: z.string().nullish(),
  last_name: z.string().nullish(),
  company: z.string().nullish(),
  meta_data: metaData,
  created_at: ts.optional(),
  updated_at: ts.optional(),
  deleted: z.boolean().optional(),
});
export type CbCustomer = z.infer<typeof customerSchema>;

export const subscriptionSchema = z.looseObject({
  id,
  customer_id: z.string(),
  status: z.string(),
  plan_id: z.string().nullish(),
  billing_period: z.number().nullish(),
  billing_period_unit: z.string().nullish(),
  currency_code: z.string().nullish(),
  trial_start: ts.nullish(),
  trial_end: ts.nullish(),
  started_at: ts.nullish(),
  activated_at: ts.nullish(),
  cancelled_at: ts.nullish(),
  pause_date: ts.nullish(),
  created_at: ts.optional(),
  updated_at: ts.optional(),
  subscription_items: z.array(z.looseObject({ item_price_id: z.string(), item_type: z.string().optional() })).nullish(),
  meta_data: metaData,
  deleted: z.boolean().optional(),
});
export type CbSubscription = z.infer<typeof subscriptionSchema>;

const lineItemSchema = z.looseObject({
  id: z.string().optional(),
  subscription_id: z.string().nullish(),
  amount: z.number().int().nullish(),
  tax_amount: z.number().int().nullish(),
  discount_amount: z.number().int().nullish(),
  item_level_discount_amount: z.number().int().nullish(),
  entity_type: z.string().nullish(),
  entity_id: z.string().nullish(),
  description: z.string().nullish(),
  date_from: ts.nullish(),
  date_to: ts.nullish(),
});
export type CbLineItem = z.infer<typeof lineItemSchema>;

export const invoiceSchema = z.looseObject({
  id,
  customer_id: z.string(),
  subscription_id: z.string().nullish(),
  recurring: z.boolean().nullish(),
  first_invoice: z.boolean().nullish(),
  status: z.string(),
  date: ts.nullish(),
  paid_at: ts.nullish(),
  total: z.number().int().nullish(),
  sub_total: z.number().int().nullish(),
  tax: z.number().int().nullish(),
  amount_paid: z.number().int().nullish(),
  credits_applied: z.number().int().nullish(),
  currency_code: z.string(),
  exchange_rate: num.nullish(),
  line_items: z.array(lineItemSchema).nullish(),
  updated_at: ts.optional(),
  deleted: z.boolean().optional(),
});
export type CbInvoice = z.infer<typeof invoiceSchema>;

export const creditNoteSchema = z.looseObject({
  id,
  customer_id: z.string().nullish(),
  subscription_id: z.string().nullish(),
  reference_invoice_id: z.string().nullish(),
  type: z.string(),
  reason_code: z.string().nullish(),
  create_reason_code: z.string().nullish(),
  status: z.string(),
  date: ts.nullish(),
  refunded_at: ts.nullish(),
  total: z.number().int().nullish(),
  sub_total: z.number().int().nullish(),
  amount_refunded: z.number().int().nullish(),
  amount_allocated: z.number().int().nullish(),
  currency_code: z.string(),
  exchange_rate: num.nullish(),
  line_items: z.array(lineItemSchema).nullish(),
  updated_at: ts.optional(),
  deleted: z.boolean().optional(),
});
export type CbCreditNote = z.infer<typeof creditNoteSchema>;

export const transactionSchema = z.looseObject({
  id,
  customer_id: z.string().nullish(),
  subscription_id: z.string().nullish(),
  type: z.string(),
  status: z.string().nullish(),
  amount: z.number().int().nullish(),
  currency_code: z.string(),
  exchange_rate: num.nullish(),
  date: ts.nullish(),
  reference_transaction_id: z.string().nullish(),
  linked_invoices: z.array(z.looseObject({ invoice_id: z.string(), applied_amount: z.number().int().nullish() })).nullish(),
  updated_at: ts.optional(),
  deleted: z.boolean().optional(),
});
export type CbTransaction = z.infer<typeof transactionSchema>;

export const eventSchema = z.looseObject({
  id,
  event_type: z.string(),
  occurred_at: ts.optional(),
  api_version: z.string().optional(),
  content: z.record(z.string(), z.unknown()),
});
export type CbEvent = z.infer<typeof eventSchema>;
