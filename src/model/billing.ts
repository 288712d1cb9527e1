// Upserts subscriptions (with state history) and billing events (payments, refunds, chargebacks,
// reversals, dispute transitions). Natural keys: (connection, external_id) and (connection, kind, external_id).
import type { Knex } from 'knex';
import type { BillingEventInput, SubscriptionInput } from './types.ts';
import { chunk } from '../util/chunk.ts';
import { dedupeBy } from '../util/dedupe.ts';
import { bulkInsert, keepFirstDeletion, upsertClause } from '../db/bulk.ts';

export async function upsertSubscriptions(trx: Knex, rows: SubscriptionInput[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const subRows = dedupeBy(rows, (r) => `${r.connection}|${r.externalId}`).map((r) => ({
    connection: r.connection,
    billing_system: r.billingSystem,
    external_id: r.externalId,
    customer_id: r.customerId,
    plan_interval: r.planInterval,
    plan_ref: r.planRef ?? null,
    status: r.status,
    currency: r.currency?.toUpperCase() ?? null,
    trial_start: r.trialStart ?? null,
    trial_end: r.trialEnd ?? null,
    started_at: r.startedAt ?? null,
    canceled_at: r.canceledAt ?? null,
    source_updated_at: r.sourceUpdatedAt ?? null,
    metadata: r.metadata ?? {},
    updated_at: new Date(),
  }));
  const ins = await bulkInsert<{ id: number | string; external_id: string }>(trx, 'subscriptions', subRows, {
    onConflict: upsertClause(['connection', 'external_id'], ['customer_id', 'plan_interval', 'plan_ref', 'status', 'currency', 'trial_start', 'trial_end', 'started_at', 'canceled_at', 'source_updated_at', 'metadata', 'updated_at'], { skipUnchangedOn: 'subscriptions', ignore: ['updated_at'] }),
    returning: ['id', 'external_id'],
  });
  for (const s of ins) out.set(s.external_id, Number(s.id));
  // Unchanged subscriptions were not updated (so not returned): their ids still link the states.
  const skipped = subRows.filter((r) => !out.has(r.external_id));
  if (skipped.length > 0) {
    for (const conn of new Set(skipped.map((r) => r.connection))) {
      for (const [k, v] of await idsByExternal(trx, 'subscriptions', conn, skipped.filter((r) => r.connection === conn).map((r) => r.external_id))) out.set(k, v);
    }
  }
  const states = rows.flatMap((r) => {
    const id = out.get(r.externalId);
    if (id === undefined) return [];
    const list = [...(r.states ?? [])];
    const at = r.sourceUpdatedAt ?? r.canceledAt ?? r.startedAt;
    if (at && !list.some((s) => s.status === r.status)) list.push({ status: r.status, validFrom: at, source: 'observed' });
    return list.map((s) => ({ subscription_id: id, status: s.status, valid_from: s.validFrom, source: s.source }));
  });
  await bulkInsert(trx, 'subscription_states', dedupeBy(states, (s) => `${s.subscription_id}|${s.valid_from.toISOString()}|${s.status}`), { onConflict: '(subscription_id, valid_from, status) DO NOTHING' });
  return out;
}

async function idsByExternal(trx: Knex, table: string, connection: string, externalIds: string[], extra: Record<string, string> = {}): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const part of chunk([...new Set(externalIds.filter((x) => x))], 1000)) {
    const rows = await trx(table).where({ connection, ...extra }).whereIn('external_id', part).select<{ id: number; external_id: string }[]>('id', 'external_id');
    for (const r of rows) m.set(r.external_id, r.id);
  }
  return m;
}

export async function upsertBillingEvents(trx: Knex, rows: BillingEventInput[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (rows.length === 0) return out;
  const connection = rows[0]!.connection;
  const subs = await idsByExternal(trx, 'subscriptions', connection, rows.map((r) => r.subscriptionExternalId ?? ''));
  const payments = await idsByExternal(trx, 'billing_events', connection, rows.map((r) => r.paymentExternalId ?? ''), { kind: 'payment' });
  const now = new Date();
  const evRows = dedupeBy(rows, (r) => `${r.kind}|${r.externalId}`).map((r) => ({
    connection: r.connection,
    billing_system: r.billingSystem,
    kind: r.kind,
    external_id: r.externalId,
    document_id: r.documentId,
    customer_id: r.customerId,
    subscription_id: r.subscriptionExternalId ? (subs.get(r.subscriptionExternalId) ?? null) : null,
    payment_event_id: r.paymentExternalId ? (payments.get(r.paymentExternalId) ?? null) : null,
    payment_external_id: r.paymentExternalId ?? null,
    occurred_at: r.occurredAt,
    amount_minor: r.amountMinor,
    gross_minor: r.grossMinor ?? null,
    tax_minor: r.taxMinor ?? null,
    currency: r.currency.toUpperCase(),
    amount_usd_minor: r.amountUsdMinor ?? null,
    exchange_rate: r.exchangeRate ?? null,
    fx_source: r.fxSource ?? null,
    settlement_minor: r.settlementMinor ?? null,
    settlement_currency: r.settlementCurrency?.toUpperCase() ?? null,
    classification: r.classification ?? null,
    billing_reason: r.billingReason ?? null,
    plan_interval: r.planInterval ?? null,
    status: r.status ?? null,
    metadata: r.metadata ?? {},
    deleted_at: r.deleted ? now : null,
    updated_at: now,
  }));
  const ins = await bulkInsert<{ id: number | string; external_id: string; kind: string }>(trx, 'billing_events', evRows, {
    // Unchanged re-synced events are not rewritten; a deletion keeps its first deletion time.
    onConflict: upsertClause(['connection', 'kind', 'external_id'], [
      'document_id', 'customer_id', 'subscription_id', 'payment_event_id', 'payment_external_id', 'occurred_at', 'amount_minor', 'gross_minor', 'tax_minor',
      'currency', 'amount_usd_minor', 'exchange_rate', 'fx_source', 'settlement_minor', 'settlement_currency', 'classification', 'billing_reason',
      'plan_interval', 'status', 'metadata', 'deleted_at', 'updated_at',
    ], { skipUnchangedOn: 'billing_events', ignore: ['updated_at'], set: { deleted_at: keepFirstDeletion('billing_events') } }),
    returning: ['id', 'external_id', 'kind'],
  });
  for (const e of ins) out.set(`${e.kind}:${e.external_id}`, Number(e.id));
  // Refunds that arrived before their payment (in an earlier page, or earlier in this one) get linked
  // once the payment exists. Only payments this page touched can complete a link, so the update is
  // scoped to them instead of rescanning every unlinked event of the connection on each page.
  const refs = new Set<string>();
  for (const r of rows) {
    if (r.kind === 'payment') refs.add(r.externalId);
    else if (r.paymentExternalId) refs.add(r.paymentExternalId);
  }
  await linkOrphanEvents(trx, connection, [...refs]);
  return out;
}

export async function linkOrphanEvents(trx: Knex, connection: string, paymentExternalIds: string[]): Promise<void> {
  // An IN list, not `= ANY(array)`: PGlite plans the array form as a scan of billing_events per
  // statement (Stripe invoices on PGlite went from ~7 s to ~18 s at 10k payments).
  for (const part of chunk(paymentExternalIds, 1000)) {
    await trx.raw(
      `UPDATE billing_events e SET payment_event_id = p.id
         FROM billing_events p
        WHERE e.connection = ? AND e.payment_event_id IS NULL AND e.payment_external_id IN (${part.map(() => '?').join(',')})
          AND p.connection = e.connection AND p.kind = 'payment' AND p.external_id = e.payment_external_id`,
      [connection, ...part],
    );
  }
}
