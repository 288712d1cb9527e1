// Loading reconciliation inputs from the canonical tables into the in-memory shapes of types.ts.
// One loader per side, each taking a WHERE clause, so a full run loads (network, period) slices and
// an incremental run loads exactly the rows of the units it re-evaluates, through the same code.
import type { Knex } from 'knex';
import { chunk } from '../util/chunk.ts';
import type { BillingFacts, ExpectedRow, NetworkRow } from './types.ts';

const TAKE_BACK_KINDS = ['refund', 'chargeback', 'reversal', 'dispute_lost'];
export const IN_CHUNK = 1000;

export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

export function toNetworkRow(r: Record<string, unknown>): NetworkRow {
  return {
    id: num(r.id),
    connection: String(r.connection),
    network: String(r.network),
    externalId: String(r.external_id),
    partnerAccountId: numOrNull(r.partner_account_id),
    partnerExternalId: (r.partner_external_id as string | null) ?? null,
    customerId: numOrNull(r.customer_id),
    customerExternalKey: (r.customer_external_key as string | null) ?? null,
    transactionKey: (r.transaction_key as string | null) ?? null,
    orderRef: (r.order_ref as string | null) ?? null,
    kindHint: (r.kind_hint as NetworkRow['kindHint']) ?? null,
    amountMinor: num(r.amount_minor),
    currency: String(r.currency).trim(),
    amountUsdMinor: numOrNull(r.amount_usd_minor),
    saleAmountMinor: numOrNull(r.sale_amount_minor),
    saleCurrency: r.sale_currency ? String(r.sale_currency).trim() : null,
    status: r.status as NetworkRow['status'],
    occurredAt: new Date(r.occurred_at as string),
    clickAt: dateOrNull(r.click_at),
    description: (r.description as string | null) ?? null,
  };
}

const NC_COLUMNS = ['id', 'connection', 'network', 'external_id', 'partner_account_id', 'partner_external_id', 'customer_id', 'customer_external_key', 'transaction_key', 'order_ref', 'kind_hint', 'amount_minor', 'currency', 'amount_usd_minor', 'sale_amount_minor', 'sale_currency', 'status', 'occurred_at', 'click_at', 'description'];

export async function loadNetworkRows(db: Knex, where: (q: Knex.QueryBuilder) => void): Promise<NetworkRow[]> {
  const q = db('network_commissions').select(NC_COLUMNS);
  where(q);
  return (await q.orderBy('id')).map(toNetworkRow);
}

/**
 * Computed commissions (direct / second tier, with a network) of live payments, with the payment's
 * billing facts, what was taken back since and the clawbacks booked against each commission.
 */
export async function loadExpectedRows(db: Knex, where: (q: Knex.QueryBuilder) => void): Promise<ExpectedRow[]> {
  const q = db('computed_commissions as cc')
    .join('billing_events as be', 'be.id', 'cc.payment_event_id')
    .leftJoin('subscriptions as s', 's.id', 'be.subscription_id')
    .whereIn('cc.kind', ['direct', 'second_tier'])
    .whereNotNull('cc.network')
    .whereNull('be.deleted_at')
    .select(
      'cc.commission_key', 'cc.kind', 'cc.partner_id', 'cc.partner_account_id', 'cc.network', 'cc.amount_minor', 'cc.base_currency', 'cc.amount_usd_minor',
      'cc.status', 'cc.exclusion_reason', db.raw('cc.explanation::text AS explanation_json'),
      'be.id as be_id', 'be.connection as be_connection', 'be.external_id as be_external_id', 'be.document_id', 'be.payment_external_id', 'be.customer_id',
      'be.subscription_id', 'be.occurred_at', 'be.amount_minor as be_amount_minor', 'be.currency as be_currency', 'be.amount_usd_minor as be_amount_usd_minor',
      'be.classification', 'be.billing_reason', 's.started_at as sub_started_at',
    );
  where(q);
  const ccRows = await q.orderBy('cc.commission_key');

  const paymentIds = [...new Set(ccRows.map((r) => num(r.be_id)))];
  const takenBack = new Map<number, { minor: number; usd: number; kinds: string[] }>();
  const clawbacks = new Map<string, number>();
  for (const ids of chunk(paymentIds, 20_000)) {
    const tb = await db('billing_events').whereRaw('payment_event_id = ANY(?::bigint[])', [ids]).whereIn('kind', TAKE_BACK_KINDS).whereNull('deleted_at').orderBy(['occurred_at', 'id']).select('payment_event_id', 'kind', 'amount_minor', 'amount_usd_minor');
    for (const r of tb) {
      const t = takenBack.get(num(r.payment_event_id)) ?? { minor: 0, usd: 0, kinds: [] };
      t.minor += num(r.amount_minor);
      t.usd += num(r.amount_usd_minor);
      t.kinds.push(String(r.kind));
      takenBack.set(num(r.payment_event_id), t);
    }
    const cb = await db('computed_commissions').whereRaw('payment_event_id = ANY(?::bigint[])', [ids]).where('kind', 'clawback').select('payment_event_id', 'partner_id', 'clawback_of', 'amount_usd_minor');
    for (const r of cb) {
      const k = `${r.payment_event_id}|${r.partner_id}|${r.clawback_of}`;
      clawbacks.set(k, (clawbacks.get(k) ?? 0) + num(r.amount_usd_minor));
    }
  }

  return ccRows.map((r) => {
    const beId = num(r.be_id);
    const tb = takenBack.get(beId);
    const billing: BillingFacts = {
      id: beId,
      connection: String(r.be_connection),
      externalId: String(r.be_external_id),
      documentId: String(r.document_id),
      paymentExternalId: (r.payment_external_id as string | null) ?? null,
      customerId: numOrNull(r.customer_id),
      subscriptionId: numOrNull(r.subscription_id),
      occurredAt: new Date(r.occurred_at),
      amountMinor: num(r.be_amount_minor),
      currency: String(r.be_currency).trim(),
      amountUsdMinor: numOrNull(r.be_amount_usd_minor),
      takenBackMinor: tb?.minor ?? 0,
      takenBackUsdMinor: tb?.usd ?? 0,
      takenBackKinds: tb?.kinds ?? [],
      classification: (r.classification as string | null) ?? null,
      billingReason: (r.billing_reason as string | null) ?? null,
      signupAt: dateOrNull(r.sub_started_at),
    };
    return {
      key: String(r.commission_key),
      kind: r.kind as ExpectedRow['kind'],
      partnerId: num(r.partner_id),
      partnerAccountId: numOrNull(r.partner_account_id),
      network: (r.network as string | null) ?? null,
      amountMinor: num(r.amount_minor),
      currency: String(r.base_currency).trim(),
      amountUsdMinor: numOrNull(r.amount_usd_minor),
      status: r.status as ExpectedRow['status'],
      exclusionReason: (r.exclusion_reason as string | null) ?? null,
      clawbackUsdMinor: clawbacks.get(`${beId}|${r.partner_id}|${r.kind}`) ?? 0,
      explanationJson: String(r.explanation_json),
      billing,
    };
  });
}

export interface Account {
  partnerId: number;
  connection: string;
}

/** Every partner account (a small table): the partner behind an account and its connection. */
export async function loadAccounts(db: Knex): Promise<Map<number, Account>> {
  const out = new Map<number, Account>();
  for (const a of await db('partner_accounts').select('id', 'partner_id', 'connection')) out.set(num(a.id), { partnerId: num(a.partner_id), connection: String(a.connection) });
  return out;
}
