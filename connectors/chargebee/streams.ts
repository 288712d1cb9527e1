// Chargebee streams: customers, subscriptions, invoices (→ payments), credit_notes (→ refunds /
// chargebacks) and transactions (→ reversals). Incremental by updated_at: each pass reads the
// fixed window updated_at[between]=[hwm − lookback, now] sorted by updated_at ascending (the filter
// and the sort name the same attribute, as Chargebee advises), following next_offset; the offset
// is checkpointed after every page so a killed run resumes mid-pass.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Page, StreamDef, SyncContext } from '../../src/sync/types.ts';
import { ensureCustomers, upsertBillingEvents, upsertCustomers, upsertSubscriptions } from '../../src/model/index.ts';
import { paymentFacts, subscriptionFacts, type PaymentFacts } from '../billing/common.ts';
import type { ChargebeeApi } from './client.ts';
import { creditNoteSchema, customerSchema, invoiceSchema, subscriptionSchema, transactionSchema, type CbCreditNote, type CbCustomer, type CbInvoice, type CbSubscription, type CbTransaction } from './schemas.ts';
import { invoiceSubscriptionIds, mapCreditNote, mapCustomer, mapInvoice, mapSubscription, mapTransaction, SYSTEM } from './mapping.ts';

export type CbState = {
  /** updated_at upper bound (unix seconds) of the last completed pass. */
  hwm: number | null;
  pass: { from: number; to: number; offset: string | null } | null;
};

type ListResult = { list: Array<Record<string, unknown>>; next_offset?: string | undefined };
type ListFn = (params: Record<string, unknown>) => Promise<ListResult>;

export async function* readUpdatedWindow(api: ChargebeeApi, ctx: SyncContext, state: CbState, list: ListFn, unwrapKey: string): AsyncIterable<Page<CbState>> {
  const start = api.options.startDate ? Math.floor(new Date(api.options.startDate).getTime() / 1000) : 0;
  let pass = state.pass;
  if (!pass) {
    const to = Math.floor(ctx.now.getTime() / 1000);
    pass = { from: state.hwm === null ? start : Math.max(start, state.hwm - api.options.lookbackSeconds), to, offset: null };
  }
  for (;;) {
    const params: Record<string, unknown> = { limit: api.options.pageSize, sort_by: { asc: 'updated_at' }, updated_at: { between: [pass.from, pass.to] }, include_deleted: true };
    if (pass.offset) params.offset = pass.offset;
    const res = await list(params);
    const records = res.list.map((item) => item[unwrapKey]);
    if (res.next_offset) {
      pass = { ...pass, offset: res.next_offset };
      yield { records, state: { hwm: state.hwm, pass } };
    } else {
      yield { records, state: { hwm: pass.to, pass: null } };
      return;
    }
  }
}

const initial = (): CbState => ({ hwm: null, pass: null });
const at = (s: number | undefined | null): Date | null => (s ? new Date(s * 1000) : null);

// ---------------------------------------------------------------------------------------- writers

export async function writeCustomers(trx: Knex, connection: string, recs: CbCustomer[], log?: Logger): Promise<void> {
  await upsertCustomers(trx, recs.filter((c) => !c.deleted).map((c) => mapCustomer(c, connection)), log);
}

export async function writeSubscriptions(trx: Knex, connection: string, recs: CbSubscription[]): Promise<void> {
  const custs = await ensureCustomers(trx, SYSTEM, connection, recs.map((s) => s.customer_id));
  await upsertSubscriptions(trx, recs.map((s) => mapSubscription(s, connection, custs.get(s.customer_id) ?? null)));
}

export async function writeInvoices(trx: Knex, connection: string, recs: CbInvoice[], baseCurrency: string): Promise<number> {
  const paid = recs.filter((i) => i.status === 'paid' && !i.deleted);
  if (paid.length === 0) return 0;
  const custs = await ensureCustomers(trx, SYSTEM, connection, paid.map((i) => i.customer_id));
  const subs = await subscriptionFacts(trx, connection, paid.flatMap(invoiceSubscriptionIds));
  const rows = paid.flatMap((inv) => mapInvoice(inv, { connection, customerId: custs.get(inv.customer_id) ?? null, subscriptions: subs, baseCurrency }));
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

async function sharesByInvoice(trx: Knex, connection: string, invoiceIds: string[]): Promise<Map<string, PaymentFacts[]>> {
  const out = new Map<string, PaymentFacts[]>();
  for (const f of await paymentFacts(trx, connection, invoiceIds, true)) out.set(f.documentId, [...(out.get(f.documentId) ?? []), f]);
  for (const list of out.values()) list.sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
  return out;
}

export async function writeCreditNotes(trx: Knex, connection: string, recs: CbCreditNote[], baseCurrency: string): Promise<number> {
  const custs = await ensureCustomers(trx, SYSTEM, connection, recs.map((c) => c.customer_id ?? ''));
  const shares = await sharesByInvoice(trx, connection, recs.map((c) => c.reference_invoice_id ?? ''));
  const rows = recs.flatMap((cn) =>
    mapCreditNote(cn, cn.reference_invoice_id ?? null, { connection, customerId: custs.get(cn.customer_id ?? '') ?? null, shares: shares.get(cn.reference_invoice_id ?? '') ?? [], baseCurrency }),
  );
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

export async function writeTransactions(trx: Knex, connection: string, recs: CbTransaction[], baseCurrency: string): Promise<number> {
  const custs = await ensureCustomers(trx, SYSTEM, connection, recs.map((t) => t.customer_id ?? ''));
  const shares = await sharesByInvoice(trx, connection, recs.flatMap((t) => (t.linked_invoices ?? []).map((l) => l.invoice_id)));
  const rows = recs.flatMap((t) => mapTransaction(t, shares, { connection, customerId: custs.get(t.customer_id ?? '') ?? null, baseCurrency }));
  await upsertBillingEvents(trx, rows);
  return rows.length;
}

// ---------------------------------------------------------------------------------------- streams

export function chargebeeStreams(api: ChargebeeApi): StreamDef<any, CbState>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const cur = api.options.baseCurrency;
  const list = (fn: (p: Record<string, unknown>) => Promise<unknown>): ListFn => (p) => api.call(() => fn(p) as Promise<ListResult>);
  const cb = api.cb;
  const customers: StreamDef<CbCustomer, CbState> = {
    name: 'customers',
    skipUnchanged: true,
    schema: customerSchema,
    key: (c) => c.id,
    recordTime: (c) => at(c.updated_at),
    initialState: initial,
    read: (ctx, s) => readUpdatedWindow(api, ctx, s, list((p) => cb.customer.list(p)), 'customer'),
    write: (trx, recs, ctx) => writeCustomers(trx, ctx.connection.name, recs, ctx.log),
  };
  const subscriptions: StreamDef<CbSubscription, CbState> = {
    name: 'subscriptions',
    skipUnchanged: true,
    schema: subscriptionSchema,
    key: (s) => s.id,
    recordTime: (s) => at(s.updated_at),
    initialState: initial,
    read: (ctx, s) => readUpdatedWindow(api, ctx, s, list((p) => cb.subscription.list(p)), 'subscription'),
    write: (trx, recs, ctx) => writeSubscriptions(trx, ctx.connection.name, recs),
  };
  const invoices: StreamDef<CbInvoice, CbState> = {
    name: 'invoices',
    skipUnchanged: true,
    schema: invoiceSchema,
    key: (i) => i.id,
    recordTime: (i) => at(i.updated_at),
    initialState: initial,
    read: (ctx, s) => readUpdatedWindow(api, ctx, s, list((p) => cb.invoice.list(p)), 'invoice'),
    write: async (trx, recs, ctx) => ({ written: await writeInvoices(trx, ctx.connection.name, recs, cur) }),
  };
  const creditNotes: StreamDef<CbCreditNote, CbState> = {
    name: 'credit_notes',
    schema: creditNoteSchema,
    key: (c) => c.id,
    recordTime: (c) => at(c.updated_at),
    initialState: initial,
    read: (ctx, s) => readUpdatedWindow(api, ctx, s, list((p) => cb.creditNote.list(p)), 'credit_note'),
    write: async (trx, recs, ctx) => ({ written: await writeCreditNotes(trx, ctx.connection.name, recs, cur) }),
  };
  const transactions: StreamDef<CbTransaction, CbState> = {
    name: 'transactions',
    schema: transactionSchema,
    key: (t) => t.id,
    recordTime: (t) => at(t.updated_at),
    initialState: initial,
    read: (ctx, s) => readUpdatedWindow(api, ctx, s, list((p) => cb.transaction.list(p)), 'transaction'),
    write: async (trx, recs, ctx) => ({ written: await writeTransactions(trx, ctx.connection.name, recs, cur) }),
  };
  return [customers, subscriptions, invoices, creditNotes, transactions];
}
