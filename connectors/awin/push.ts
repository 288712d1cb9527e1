// Awin batch validation: approve, decline (with reason) and amend, sent as
// POST /advertisers/{id}/transactions/batch (≤40,000 items), then the job is polled.
//
// Action types and payloads (type → payload):
//   'approve' { transactionId }
//   'decline' { transactionId, reason | declineReason }
//   'amend'   { transactionId, reason | amendReason, currency, saleAmountMinor, parts: [{ commissionGroupCode, amountMinor, commissionAmountMinor? }], approve? }
//          or { transactionId, reason, currency, commissionAmountMinor, saleAmountMinor? }  (parts derived from the synced transaction)
//   Instead of transactionId, any action may give { orderRef, transactionDate (yyyy-MM-ddTHH:mm:ss), timezone? }.
// Parts must sum to saleAmountMinor: Awin would silently let the DEFAULT group absorb a difference,
// so a mismatch is refused here. Only pending transactions can be amended (stated for the UI; the
// API is assumed to behave the same) — Awin reports other cases as per-transaction failures.
//
// Exactly-once: each action is recorded in push_jobs under its idempotency key before the batch is
// sent ('submitting'), the jobId is stored as soon as Awin accepts the batch ('submitted') — before
// polling — and the job's per-transaction outcome is stored when it is DONE ('confirmed'/'failed').
// A re-run therefore never re-sends an action whose job was accepted: it polls that job instead.
// An action left 'submitting' (crash between send and reply) is checked against the live
// transaction first and re-sent only if Awin does not show its effect.
import { z } from 'zod';
import type { Knex } from 'knex';
import type { Json, PushAction, PushResult, SyncContext } from '../../src/sync/types.ts';
import { HttpError } from '../../src/http/errors.ts';
import { chunk } from '../../src/util/chunk.ts';
import { errorMessage } from '../../src/util/errors.ts';
import { awinRuntime, type AwinRuntime } from './streams.ts';
import type { AwinJob } from './client.ts';
import { awinToMinor, minorToAwin } from './mapping.ts';
import { AWIN_TIMEZONES } from './schemas.ts';

const txId = z.union([z.string().regex(/^\d+$/), z.number().int().positive()]).transform(String);
const ident = z.object({
  transactionId: txId.optional(),
  orderRef: z.string().min(1).optional(),
  transactionDate: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/).optional(),
  timezone: z.enum(AWIN_TIMEZONES).optional(),
});
const hasIdent = (p: { transactionId?: string | undefined; orderRef?: string | undefined; transactionDate?: string | undefined }): boolean =>
  p.transactionId !== undefined || (p.orderRef !== undefined && p.transactionDate !== undefined);
const identMsg = { message: 'identify the transaction by transactionId, or by orderRef + transactionDate' };

export const awinApprovePayload = ident.refine(hasIdent, identMsg);
export const awinDeclinePayload = ident
  .extend({ reason: z.string().min(1).optional(), declineReason: z.string().min(1).optional() })
  .refine(hasIdent, identMsg)
  .refine((p) => !!(p.reason ?? p.declineReason), { message: 'decline needs a reason' });
export const awinAmendPayload = ident.extend({
  reason: z.string().min(1).optional(),
  amendReason: z.string().min(1).optional(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  saleAmountMinor: z.number().int().nonnegative().optional(),
  commissionAmountMinor: z.number().int().nonnegative().optional(),
  parts: z.array(z.object({ commissionGroupCode: z.string().min(1), amountMinor: z.number().int().nonnegative(), commissionAmountMinor: z.number().int().nonnegative().optional() })).min(1).optional(),
  approve: z.boolean().default(false),
}).refine(hasIdent, identMsg).refine((p) => !!(p.reason ?? p.amendReason), { message: 'amend needs a reason' })
  .refine((p) => p.parts !== undefined || p.commissionAmountMinor !== undefined, { message: 'amend needs parts or commissionAmountMinor' });

type Item = { action: string; approve?: boolean; transaction: Record<string, Json> };

interface PushRow {
  idempotency_key: string;
  job_id: string | null;
  status: 'submitting' | 'submitted' | 'confirmed' | 'failed';
  item: Item;
  action_type: string;
  result: PushResult | null;
}

const fail = (error: string, request?: Json): PushResult => ({ status: 'failed', error, ...(request !== undefined ? { request } : {}) });

function transactionRef(p: z.infer<typeof ident>, zone: string): Record<string, Json> {
  if (p.transactionId !== undefined) return { transactionId: /^\d+$/.test(p.transactionId) && Number.isSafeInteger(Number(p.transactionId)) ? Number(p.transactionId) : p.transactionId };
  return { orderRef: p.orderRef!, transactionDate: p.transactionDate!, timezone: p.timezone ?? zone };
}

/** Builds the batch item for one action, or a failure that is never sent. */
export async function buildItem(db: Knex, connection: string, zone: string, action: PushAction): Promise<Item | PushResult> {
  const issues = (e: z.ZodError): string => e.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
  if (action.type === 'approve') {
    const p = awinApprovePayload.safeParse(action.payload);
    if (!p.success) return fail(`invalid approve payload: ${issues(p.error)}`);
    return { action: 'approve', transaction: transactionRef(p.data, zone) };
  }
  if (action.type === 'decline') {
    const p = awinDeclinePayload.safeParse(action.payload);
    if (!p.success) return fail(`invalid decline payload: ${issues(p.error)}`);
    return { action: 'decline', transaction: { ...transactionRef(p.data, zone), declineReason: (p.data.declineReason ?? p.data.reason)! } };
  }
  if (action.type === 'amend') {
    const p = awinAmendPayload.safeParse(action.payload);
    if (!p.success) return fail(`invalid amend payload: ${issues(p.error)}`);
    const cur = p.data.currency.toUpperCase();
    let sale = p.data.saleAmountMinor;
    let parts = p.data.parts;
    if (!parts) {
      // Commission-only amend (the planner's shape): one part in the transaction's commission group,
      // carrying the new commission. Sending `commissionAmount` inside an amend part is inferred from
      // the transaction's own part fields; Awin's amend example shows only amount + commissionGroupCode.
      const known = p.data.transactionId
        ? await db('network_commissions').where({ connection, external_id: p.data.transactionId }).first<{ sale_amount_minor: number | null; metadata: { transactionParts?: Array<{ commissionGroupCode: string | null }> } } | undefined>('sale_amount_minor', 'metadata')
        : undefined;
      sale ??= known?.sale_amount_minor ?? undefined;
      if (sale === undefined) return fail('amend: saleAmountMinor is required (the transaction is not synced, so its sale amount is unknown)');
      const knownParts = known?.metadata?.transactionParts ?? [];
      if (knownParts.length > 1) return fail(`amend: transaction has ${knownParts.length} commission parts; give parts explicitly`);
      parts = [{ commissionGroupCode: knownParts[0]?.commissionGroupCode ?? 'DEFAULT', amountMinor: sale, commissionAmountMinor: p.data.commissionAmountMinor! }];
    }
    const sum = parts.reduce((a, x) => a + x.amountMinor, 0);
    if (sale === undefined) sale = sum;
    if (sum !== sale) return fail(`amend: parts sum to ${sum} but saleAmountMinor is ${sale} (minor units); Awin would silently put the difference in the DEFAULT group`);
    return {
      action: 'amend',
      approve: p.data.approve,
      transaction: {
        ...transactionRef(p.data, zone),
        amendReason: (p.data.amendReason ?? p.data.reason)!,
        currency: cur,
        saleAmount: minorToAwin(sale, cur),
        transactionParts: parts.map((x) => ({
          amount: minorToAwin(x.amountMinor, cur),
          commissionGroupCode: x.commissionGroupCode,
          ...(x.commissionAmountMinor !== undefined ? { commissionAmount: minorToAwin(x.commissionAmountMinor, cur) } : {}),
        })),
      },
    };
  }
  return fail(`unknown Awin action type "${action.type}" (expected approve, decline or amend)`);
}

const TERMINAL = new Set(['DONE', 'COMPLETED', 'COMPLETE', 'FINISHED', 'FAILED', 'ERROR', 'CANCELLED', 'CANCELED']);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function outcomeFor(item: Item, job: AwinJob): PushResult {
  const ref = item.transaction;
  const failed = job.failedTransactions.find((f) =>
    ref.transactionId !== undefined ? String(f.transactionId ?? '') === String(ref.transactionId) : f.orderRef !== undefined && String(f.orderRef) === String(ref.orderRef),
  );
  const response: Json = { jobId: job.jobId, status: job.status, ...(job.completionDate ? { completionDate: String(job.completionDate) } : {}) };
  if (failed) {
    const code = failed.code ?? 'failed';
    const msg = failed.message ?? failed.description ?? failed.error;
    // The job ran and Awin refused this transaction: a definitive answer, not worth resending as is.
    return { status: 'failed', retryable: false, externalId: job.jobId, request: item as unknown as Json, response: { ...response, failure: JSON.parse(JSON.stringify(failed)) as Json }, error: `Awin rejected ${item.action} of ${String(ref.transactionId ?? ref.orderRef)}: ${code}${msg ? ` ${String(msg)}` : ''}` };
  }
  if (/FAILED|ERROR|CANCEL/.test(job.status.toUpperCase())) {
    return { status: 'failed', externalId: job.jobId, request: item as unknown as Json, response, error: `Awin job ${job.jobId} ended ${job.status}` };
  }
  return { status: 'confirmed', externalId: job.jobId, request: item as unknown as Json, response };
}

export interface AwinBatchReport {
  results: Map<string, PushResult>;
  jobs: string[];
  failed: number;
}

/**
 * Pushes many actions in as few batch requests as possible and returns one result per idempotency key.
 * Safe to call again with the same actions: recorded jobs are polled, never re-sent.
 */
export async function pushAwinBatch(ctx: SyncContext, actions: PushAction[], rt?: AwinRuntime): Promise<AwinBatchReport> {
  const { opts, client } = rt ?? awinRuntime(ctx);
  const conn = ctx.connection.name;
  const db = ctx.db;
  const results = new Map<string, PushResult>();
  const prior = new Map<string, PushRow>();
  for (const part of chunk([...new Set(actions.map((a) => a.idempotencyKey))], 1000)) {
    const rows = await db('push_jobs').where({ connection: conn }).whereIn('idempotency_key', part).select<PushRow[]>('idempotency_key', 'job_id', 'status', 'item', 'action_type', 'result');
    for (const r of rows) prior.set(r.idempotency_key, r);
  }
  const toSend: Array<{ key: string; type: string; item: Item }> = [];
  const toPoll = new Map<string, Array<{ key: string; item: Item }>>();
  for (const a of actions) {
    if (results.has(a.idempotencyKey) || toSend.some((s) => s.key === a.idempotencyKey)) continue;
    const row = prior.get(a.idempotencyKey);
    if (row && (row.status === 'confirmed' || row.status === 'failed') && row.result) {
      results.set(a.idempotencyKey, row.result);
      continue;
    }
    if (row?.job_id) {
      toPoll.set(row.job_id, [...(toPoll.get(row.job_id) ?? []), { key: a.idempotencyKey, item: row.item }]);
      continue;
    }
    if (row?.status === 'submitting') {
      const done = await effectVisible(ctx, rt ?? { opts, client }, row.item);
      if (done) {
        const r: PushResult = { status: 'confirmed', request: row.item as unknown as Json, response: { checked: 'transaction already shows the change' } };
        await finish(db, conn, a.idempotencyKey, r);
        results.set(a.idempotencyKey, r);
        continue;
      }
      toSend.push({ key: a.idempotencyKey, type: a.type, item: row.item });
      continue;
    }
    const built = await buildItem(db, conn, opts.timezone, a);
    if ('status' in built) {
      results.set(a.idempotencyKey, built);
      continue;
    }
    toSend.push({ key: a.idempotencyKey, type: a.type, item: built });
  }

  for (const batch of chunk(toSend, opts.push.maxBatch)) {
    // 1. Record before sending (committed on its own).
    for (const part of chunk(batch, 500)) {
      await db('push_jobs')
        .insert(part.map((b) => ({ connection: conn, idempotency_key: b.key, network: 'awin', action_type: b.type, item: JSON.stringify(b.item), status: 'submitting', updated_at: new Date() })))
        .onConflict(['connection', 'idempotency_key'])
        .merge(['item', 'status', 'updated_at']);
    }
    let jobId: string;
    try {
      jobId = await client.submitBatch(opts.advertiserId, batch.map((b) => b.item));
    } catch (err) {
      const definitive = err instanceof HttpError && err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 429;
      for (const b of batch) {
        const r = fail(`Awin batch submit failed: ${errorMessage(err)}`, b.item as unknown as Json);
        // A definitive 4xx was not applied: record the failure. Otherwise Awin may have accepted the
        // batch: keep 'submitting' so the next call checks the transaction before re-sending.
        if (definitive) await finish(db, conn, b.key, r);
        results.set(b.key, r);
      }
      continue;
    }
    // 2. Record the jobId before polling: from here on a re-run polls, never re-sends.
    for (const part of chunk(batch, 500)) {
      await db('push_jobs').where({ connection: conn }).whereIn('idempotency_key', part.map((b) => b.key)).update({ job_id: jobId, status: 'submitted', submitted_at: new Date(), updated_at: new Date() });
    }
    ctx.log.info({ jobId, items: batch.length }, 'Awin validation batch accepted');
    toPoll.set(jobId, [...(toPoll.get(jobId) ?? []), ...batch.map((b) => ({ key: b.key, item: b.item }))]);
  }

  // 3. Poll every job of interest.
  const jobs = [...toPoll.keys()];
  for (const [jobId, members] of toPoll) {
    const job = await pollJob(ctx, rt ?? { opts, client }, jobId);
    for (const m of members) {
      if (!job || !TERMINAL.has(job.status.toUpperCase())) {
        results.set(m.key, { status: 'sent', externalId: jobId, request: m.item as unknown as Json, response: { jobId, status: job?.status ?? 'unknown', note: 'job not finished; the next push or pushStatus polls it again' } });
        continue;
      }
      const r = outcomeFor(m.item, job);
      await finish(db, conn, m.key, r);
      results.set(m.key, r);
    }
    const failedHere = members.filter((m) => results.get(m.key)?.status === 'failed');
    if (failedHere.length > 0) ctx.log.warn({ jobId, failed: failedHere.length, of: members.length, first: results.get(failedHere[0]!.key)?.error }, 'Awin validation job: some transactions failed');
  }
  const failed = [...results.values()].filter((r) => r.status === 'failed').length;
  return { results, jobs, failed };
}

async function finish(db: Knex, connection: string, key: string, r: PushResult): Promise<void> {
  await db('push_jobs')
    .where({ connection, idempotency_key: key })
    .update({ status: r.status === 'failed' ? 'failed' : 'confirmed', result: JSON.stringify(r), error: r.error ?? null, completed_at: new Date(), updated_at: new Date() });
}

async function pollJob(ctx: SyncContext, rt: AwinRuntime, jobId: string): Promise<AwinJob | undefined> {
  const deadline = Date.now() + rt.opts.push.pollTimeoutMs;
  let last: AwinJob | undefined;
  for (;;) {
    try {
      last = await rt.client.getJob(rt.opts.advertiserId, jobId);
    } catch (err) {
      ctx.log.warn({ jobId, err: errorMessage(err) }, 'polling Awin job failed');
      if (Date.now() >= deadline) return last;
      await sleep(rt.opts.push.pollIntervalMs);
      continue;
    }
    if (TERMINAL.has(last.status.toUpperCase()) || Date.now() >= deadline) return last;
    await sleep(rt.opts.push.pollIntervalMs);
  }
}

/** Does the live transaction already show the item's effect? (crash recovery for 'submitting' rows) */
async function effectVisible(ctx: SyncContext, rt: AwinRuntime, item: Item): Promise<boolean> {
  const id = item.transaction.transactionId;
  if (id === undefined) return false; // by orderRef: cannot look up by id; re-send (approve/decline set a final state)
  try {
    const list = await rt.client.listTransactions(rt.opts.advertiserId, { ids: String(id), timezone: rt.opts.timezone });
    const t = list.find((x) => String((x as { id?: unknown }).id) === String(id)) as { commissionStatus?: string; saleAmount?: { amount: number; currency: string }; amended?: boolean } | undefined;
    if (!t) return false;
    const st = String(t.commissionStatus ?? '').toLowerCase();
    if (item.action === 'approve') return st === 'approved';
    if (item.action === 'decline') return st === 'declined';
    if (item.action === 'amend') {
      const cur = String(item.transaction.currency);
      return !!t.amended && !!t.saleAmount && awinToMinor(t.saleAmount.amount, cur) === awinToMinor(Number(item.transaction.saleAmount), cur) && (!item.approve || st === 'approved');
    }
  } catch (err) {
    ctx.log.warn({ err: errorMessage(err) }, 'could not check the Awin transaction; re-sending');
  }
  return false;
}

export async function pushAwin(ctx: SyncContext, action: PushAction): Promise<PushResult> {
  const r = await pushAwinBatch(ctx, [action]);
  return r.results.get(action.idempotencyKey) ?? fail('no result');
}

/** Read-only: what the recorded job says about an action, or null when it was never submitted. */
export async function awinPushStatus(ctx: SyncContext, action: PushAction): Promise<PushResult | null> {
  const row = await ctx.db('push_jobs').where({ connection: ctx.connection.name, idempotency_key: action.idempotencyKey }).first<PushRow | undefined>('idempotency_key', 'job_id', 'status', 'item', 'action_type', 'result');
  if (!row) return null;
  if ((row.status === 'confirmed' || row.status === 'failed') && row.result) return row.result;
  if (!row.job_id) return null;
  const rt = awinRuntime(ctx);
  const job = await rt.client.getJob(rt.opts.advertiserId, row.job_id);
  if (!TERMINAL.has(job.status.toUpperCase())) return { status: 'sent', externalId: row.job_id, response: { jobId: row.job_id, status: job.status } };
  const r = outcomeFor(row.item, job);
  await finish(ctx.db, ctx.connection.name, action.idempotencyKey, r);
  return r;
}
