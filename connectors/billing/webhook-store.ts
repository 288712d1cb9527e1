// webhook_events bookkeeping shared by the Stripe and Chargebee handlers: store first (deduped on
// the provider's event id), then process, then mark processed — or failed with the error so a
// retry (the provider's redelivery or reprocessWebhookEvents) picks it up. Nothing is ever dropped.
import type { Knex } from 'knex';
import { scrubSecrets } from '../../src/util/secrets.ts';
import { errorMessage } from '../../src/util/errors.ts';

export interface WebhookResult {
  status: 200 | 400 | 401 | 500;
  body: Record<string, unknown>;
}

export interface StoredEvent {
  id: number;
  status: 'received' | 'processed' | 'failed';
  duplicate: boolean;
}

export async function storeWebhookEvent(
  db: Knex,
  e: { source: string; connection: string; eventId: string; eventType: string; payload: unknown },
): Promise<StoredEvent> {
  const ins = await db('webhook_events')
    .insert({ source: e.source, connection: e.connection, event_id: e.eventId, event_type: e.eventType, payload: JSON.stringify(e.payload), status: 'received' })
    .onConflict(['connection', 'event_id'])
    .ignore()
    .returning<{ id: number }[]>('id');
  if (ins[0]) return { id: ins[0].id, status: 'received', duplicate: false };
  const row = await db('webhook_events').where({ connection: e.connection, event_id: e.eventId }).first<{ id: number; status: StoredEvent['status'] }>('id', 'status');
  return { id: row!.id, status: row!.status, duplicate: true };
}

export async function markWebhook(db: Knex, id: number, status: 'processed' | 'failed', error?: unknown): Promise<void> {
  await db('webhook_events')
    .where({ id })
    .update({ status, error: error === undefined ? null : scrubSecrets(errorMessage(error)).slice(0, 2000), processed_at: status === 'processed' ? new Date() : null });
}

/** Stores, dedupes and processes one verified event; a processed duplicate is acknowledged as such. */
export async function storeAndProcess(
  db: Knex,
  e: { source: string; connection: string; eventId: string; eventType: string; payload: unknown },
  process: () => Promise<Record<string, unknown> | void>,
): Promise<WebhookResult> {
  const stored = await storeWebhookEvent(db, e);
  if (stored.duplicate && stored.status === 'processed') {
    return { status: 200, body: { received: true, duplicate: true, eventId: e.eventId } };
  }
  try {
    const info = await process();
    await markWebhook(db, stored.id, 'processed');
    return { status: 200, body: { received: true, processed: true, eventId: e.eventId, ...(stored.duplicate ? { retried: true } : {}), ...(info ?? {}) } };
  } catch (err) {
    await markWebhook(db, stored.id, 'failed', err);
    // 500 so the provider redelivers; the stored row is retried by reprocessWebhookEvents too.
    return { status: 500, body: { received: true, processed: false, eventId: e.eventId, error: scrubSecrets(errorMessage(err)).slice(0, 300) } };
  }
}

export async function pendingWebhookEvents(db: Knex, source: string, connection: string, limit = 100): Promise<Array<{ id: number; event_id: string; payload: unknown }>> {
  const rows = await db('webhook_events')
    .where({ source, connection })
    .whereIn('status', ['received', 'failed'])
    .orderBy('id')
    .limit(limit)
    .select<Array<{ id: number; event_id: string; payload: unknown }>>('id', 'event_id', 'payload');
  return rows.map((r) => ({ ...r, payload: typeof r.payload === 'string' ? (JSON.parse(r.payload) as unknown) : r.payload }));
}

/** Headers as Node gives them (lower-case keys, string or string[]), looked up case-insensitively. */
/** Re-drives stored events still `received` or `failed` (after an outage), one at a time. */
export async function reprocessStoredEvents(db: Knex, source: string, connection: string, limit: number, process: (payload: unknown) => Promise<unknown>): Promise<{ processed: number; failed: number }> {
  let processed = 0;
  let failed = 0;
  for (const row of await pendingWebhookEvents(db, source, connection, limit)) {
    try {
      await process(row.payload);
      await markWebhook(db, row.id, 'processed');
      processed++;
    } catch (err) {
      await markWebhook(db, row.id, 'failed', err);
      failed++;
    }
  }
  return { processed, failed };
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === want) return Array.isArray(v) ? v.join(',') : v;
  }
  return undefined;
}
