// Upserts what networks report: commissions (with status history), transactions and attributions.
import type { Knex } from 'knex';
import type { AttributionInput, NetworkCommissionInput, NetworkTransactionInput } from './types.ts';
import { chunk } from '../util/chunk.ts';
import { dedupeBy } from '../util/dedupe.ts';
import { bulkInsert, keepFirstDeletion, upsertClause } from '../db/bulk.ts';

export async function upsertNetworkCommissions(trx: Knex, rows: NetworkCommissionInput[], observedAt = new Date()): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (rows.length === 0) return out;
  const connection = rows[0]!.connection;
  const unique = dedupeBy(rows, (r) => r.externalId);
  const before = new Map<string, { id: number; status: string }>();
  for (const part of chunk(unique.map((r) => r.externalId), 1000)) {
    const found = await trx('network_commissions').where({ connection }).whereIn('external_id', part).select<{ id: number; external_id: string; status: string }[]>('id', 'external_id', 'status');
    for (const f of found) before.set(f.external_id, { id: f.id, status: f.status });
  }
  const ncRows = unique.map((r) => ({
    connection: r.connection,
    network: r.network,
    external_id: r.externalId,
    partner_account_id: r.partnerAccountId,
    partner_external_id: r.partnerExternalId ?? null,
    customer_id: r.customerId ?? null,
    customer_external_key: r.customerExternalKey ?? null,
    transaction_key: r.transactionKey ?? null,
    order_ref: r.orderRef ?? null,
    kind_hint: r.kindHint ?? null,
    amount_minor: r.amountMinor,
    currency: r.currency.toUpperCase(),
    amount_usd_minor: r.amountUsdMinor ?? null,
    sale_amount_minor: r.saleAmountMinor ?? null,
    sale_currency: r.saleCurrency?.toUpperCase() ?? null,
    status: r.status,
    raw_status: r.rawStatus ?? null,
    occurred_at: r.occurredAt,
    click_at: r.clickAt ?? null,
    offer_key: r.offerKey ?? null,
    trigger_key: r.triggerKey ?? null,
    invoice_status: r.invoiceStatus ?? null,
    description: r.description ?? null,
    metadata: r.metadata ?? {},
    deleted_at: r.status === 'deleted' ? observedAt : null,
    last_seen_at: observedAt,
    updated_at: observedAt,
  }));
  const ins = await bulkInsert<{ id: number | string; external_id: string }>(trx, 'network_commissions', ncRows, {
    onConflict: upsertClause(['connection', 'external_id'], [
      'partner_account_id', 'partner_external_id', 'customer_id', 'customer_external_key', 'transaction_key', 'order_ref', 'kind_hint', 'amount_minor', 'currency',
      'amount_usd_minor', 'sale_amount_minor', 'sale_currency', 'status', 'raw_status', 'occurred_at', 'click_at', 'offer_key', 'trigger_key', 'invoice_status',
      'description', 'metadata', 'deleted_at', 'last_seen_at', 'updated_at',
    ], { skipUnchangedOn: 'network_commissions', ignore: ['last_seen_at', 'updated_at'], set: { deleted_at: keepFirstDeletion('network_commissions') } }),
    returning: ['id', 'external_id'],
  });
  for (const r of ins) out.set(r.external_id, Number(r.id));
  // Rows not rewritten because nothing changed: their ids are known from the look-up above. They
  // keep their previous last_seen_at (it is when the network's record last changed or appeared);
  // stream_keys.last_seen_at holds when the sync last saw each record.
  for (const [k, b] of before) if (!out.has(k)) out.set(k, b.id);
  const history = unique
    .filter((r) => before.get(r.externalId)?.status !== r.status)
    .map((r) => ({ network_commission_id: out.get(r.externalId)!, status: r.status, raw_status: r.rawStatus ?? null, observed_at: observedAt }));
  await bulkInsert(trx, 'network_commission_status_history', history, { onConflict: '(network_commission_id, observed_at, status) DO NOTHING' });
  return out;
}

/** Marks commissions that vanished from the network (look-back rescan) as deleted, with history. */
export async function markNetworkCommissionsDeleted(trx: Knex, connection: string, externalIds: string[], at = new Date()): Promise<void> {
  for (const part of chunk(externalIds, 1000)) {
    const rows = await trx('network_commissions')
      .where({ connection })
      .whereIn('external_id', part)
      .whereNot('status', 'deleted')
      .update({ status: 'deleted', deleted_at: at, updated_at: at })
      .returning<{ id: number }[]>('id');
    if (rows.length > 0) {
      await trx('network_commission_status_history')
        .insert(rows.map((r) => ({ network_commission_id: r.id, status: 'deleted', raw_status: 'vanished', observed_at: at })))
        .onConflict(['network_commission_id', 'observed_at', 'status'])
        .ignore();
    }
  }
}

export async function upsertNetworkTransactions(trx: Knex, rows: NetworkTransactionInput[]): Promise<void> {
  const txRows = dedupeBy(rows, (r) => r.externalId).map((r) => ({
    connection: r.connection,
    network: r.network,
    external_id: r.externalId,
    customer_external_key: r.customerExternalKey ?? null,
    customer_id: r.customerId ?? null,
    partner_account_id: r.partnerAccountId ?? null,
    amount_minor: r.amountMinor,
    currency: r.currency.toUpperCase(),
    amount_usd_minor: r.amountUsdMinor ?? null,
    occurred_at: r.occurredAt,
    metadata: r.metadata ?? {},
    deleted_at: null,
    updated_at: new Date(),
  }));
  await bulkInsert(trx, 'network_transactions', txRows, {
    onConflict: upsertClause(['connection', 'external_id'], ['customer_external_key', 'customer_id', 'partner_account_id', 'amount_minor', 'currency', 'amount_usd_minor', 'occurred_at', 'metadata', 'deleted_at', 'updated_at'], { skipUnchangedOn: 'network_transactions', ignore: ['updated_at'] }),
  });
}

export async function markNetworkTransactionsDeleted(trx: Knex, connection: string, externalIds: string[], at = new Date()): Promise<void> {
  for (const part of chunk(externalIds, 1000)) {
    await trx('network_transactions').where({ connection }).whereIn('external_id', part).whereNull('deleted_at').update({ deleted_at: at, updated_at: at });
  }
}

export async function upsertAttributions(trx: Knex, rows: AttributionInput[]): Promise<void> {
  const now = new Date();
  const attRows = dedupeBy(rows, (r) => r.sourceRef).map((r) => ({
    customer_id: r.customerId,
    partner_account_id: r.partnerAccountId,
    connection: r.connection,
    network: r.network,
    source_ref: r.sourceRef,
    click_at: r.clickAt ?? null,
    signup_at: r.signupAt ?? null,
    attributed_at: r.attributedAt ?? null,
    deleted_at: r.deleted ? now : null,
    updated_at: now,
  }));
  await bulkInsert(trx, 'attributions', attRows, {
    onConflict: upsertClause(['connection', 'source_ref'], ['customer_id', 'partner_account_id', 'click_at', 'signup_at', 'attributed_at', 'deleted_at', 'updated_at'], { skipUnchangedOn: 'attributions', ignore: ['updated_at'], set: { deleted_at: keepFirstDeletion('attributions') } }),
  });
}


/**
 * R1 for networks without a customer API (ShareASale, Awin): a sale's order reference is the billing
 * document, so the sale attributes the paying customer to the affiliate it credits. The EARLIEST sale
 * seen for a customer on a connection holds the attribution (the customer's subscriptions stay tied
 * to that affiliate); a later sale credited to someone else never moves it, so it surfaces as a
 * partner_mismatch instead of silently re-homing the customer. Sales whose document is not (yet) in
 * billing attribute nothing; the next sync of the same window does.
 */
export async function attributeFromSales(trx: Knex, rows: NetworkCommissionInput[]): Promise<void> {
  const live = rows.filter((r) => r.partnerAccountId !== null && r.status !== 'deleted' && r.status !== 'declined' && (r.orderRef || r.transactionKey));
  if (live.length === 0) return;
  const refs = [...new Set(live.map((r) => (r.orderRef ?? r.transactionKey)!))];
  const customerOf = new Map<string, number>();
  for (const part of chunk(refs, 1000)) {
    const found = await trx('billing_events')
      .where({ kind: 'payment' })
      .whereNotNull('customer_id')
      .where((q) => q.whereIn('document_id', part).orWhereIn('external_id', part))
      .select<{ document_id: string; external_id: string; customer_id: number }[]>('document_id', 'external_id', 'customer_id');
    for (const f of found) {
      customerOf.set(f.document_id, f.customer_id);
      customerOf.set(f.external_id, f.customer_id);
    }
  }
  const first = new Map<string, AttributionInput>();
  for (const r of live) {
    const customerId = customerOf.get((r.orderRef ?? r.transactionKey)!);
    if (customerId === undefined) continue;
    const sourceRef = `sale-customer:${customerId}`;
    const prev = first.get(sourceRef);
    if (prev && prev.attributedAt! <= r.occurredAt) continue;
    first.set(sourceRef, { connection: r.connection, network: r.network, sourceRef, customerId, partnerAccountId: r.partnerAccountId!, clickAt: r.clickAt ?? null, signupAt: null, attributedAt: r.occurredAt });
  }
  const now = new Date();
  for (const part of chunk([...first.values()], 500)) {
    await trx('attributions')
      .insert(part.map((a) => ({ customer_id: a.customerId, partner_account_id: a.partnerAccountId, connection: a.connection, network: a.network, source_ref: a.sourceRef, click_at: a.clickAt ?? null, signup_at: null, attributed_at: a.attributedAt, deleted_at: null, updated_at: now })))
      .onConflict(['connection', 'source_ref'])
      .merge(['partner_account_id', 'click_at', 'attributed_at', 'updated_at'])
      .where('attributions.attributed_at', '>', trx.raw('excluded.attributed_at'));
  }
}
