// Loading reconciliation inputs from the canonical tables into the in-memory shapes of types.ts.
// One loader per side, each taking a WHERE clause, so a full run loads (network, period) slices and
// an incremental run loads exactly the rows of the units it re-evaluates, through the same code.
import type { Knex } from 'knex';
import type { BillingFacts, ExpectedRow, NetworkRow } from './types.ts';

const TAKE_BACK_KINDS = ['refund', 'chargeback', 'reversal', 'dispute_lost'];
export const IN_CHUNK = 1000;

export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** A text[] as the driver returns it: an array (pg, PGlite) or, untyped, its literal ({a,b}; kinds need no quoting). */
const textArray = (v: unknown): string[] => (v === null || v === undefined ? [] : Array.isArray(v) ? v.map(String) : String(v).replace(/^\{|\}$/g, '').split(',').filter((x) => x !== ''));
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
 * billing facts, what was taken back since and the clawbacks booked against each commission. One
 * statement: the subscription, the take-backs and the clawbacks are per-row index look-ups
 * (LATERAL), so a batch costs the same whatever the size of the tables (a join was planned as a
 * scan of every subscription per batch).
 */
export async function loadExpectedRows(db: Knex, where: (q: Knex.QueryBuilder) => void): Promise<ExpectedRow[]> {
  const q = db('computed_commissions as cc')
    .join('billing_events as be', 'be.id', 'cc.payment_event_id')
    .joinRaw('LEFT JOIN LATERAL (SELECT s.started_at FROM subscriptions s WHERE s.id = be.subscription_id OFFSET 0) s ON true')
    .joinRaw(
      `LEFT JOIN LATERAL (SELECT sum(t.amount_minor) AS minor, sum(t.amount_usd_minor) AS usd, array_agg(t.kind ORDER BY t.occurred_at, t.id) AS kinds
         FROM billing_events t WHERE t.payment_event_id = be.id AND t.kind = ANY(?::text[]) AND t.deleted_at IS NULL) tb ON true`,
      [TAKE_BACK_KINDS],
    )
    .joinRaw(
      `LEFT JOIN LATERAL (SELECT sum(x.amount_usd_minor) AS usd FROM computed_commissions x
         WHERE x.payment_event_id = be.id AND x.kind = 'clawback' AND x.partner_id = cc.partner_id AND x.clawback_of = cc.kind) cb ON true`,
    )
    .whereIn('cc.kind', ['direct', 'second_tier'])
    .whereNotNull('cc.network')
    .whereNull('be.deleted_at')
    .select(
      'cc.commission_key', 'cc.kind', 'cc.partner_id', 'cc.partner_account_id', 'cc.network', 'cc.amount_minor', 'cc.base_currency', 'cc.amount_usd_minor',
      'cc.status', 'cc.exclusion_reason', db.raw('coalesce(cc.content_hash, md5(cc.explanation::text)) AS content_sig'),
      'be.id as be_id', 'be.connection as be_connection', 'be.external_id as be_external_id', 'be.document_id', 'be.payment_external_id', 'be.customer_id',
      'be.subscription_id', 'be.occurred_at', 'be.amount_minor as be_amount_minor', 'be.currency as be_currency', 'be.amount_usd_minor as be_amount_usd_minor',
      'be.classification', 'be.billing_reason', 's.started_at as sub_started_at',
      'tb.minor as tb_minor', 'tb.usd as tb_usd', 'tb.kinds as tb_kinds', 'cb.usd as cb_usd',
    );
  where(q);
  const ccRows = await q.orderBy('cc.commission_key');

  return ccRows.map((r) => {
    const beId = num(r.be_id);
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
      takenBackMinor: num(r.tb_minor),
      takenBackUsdMinor: num(r.tb_usd),
      takenBackKinds: textArray(r.tb_kinds),
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
      clawbackUsdMinor: num(r.cb_usd),
      contentSig: String(r.content_sig),
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
