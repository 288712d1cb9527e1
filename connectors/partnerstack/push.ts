// Executes typed correction actions against PartnerStack. Every action is safe to retry:
//   - create_transaction: key = the billing document id; skipped when network_transactions already
//     holds it; a vendor "already exists" answer counts as done.
//   - delete_transaction: skipped when already deleted locally; a 404 counts as done.
//   - create_reward: rewards take no client key, so the description carries a deterministic marker
//     `[cs:<hash of the idempotency key>]`; skipped when network_commissions (or, after a crash
//     between send and record, the vendor's newest rewards) already hold that marker.
//   - update_customer: read first; skipped when the customer already shows the values.
// What was created is written to the canonical tables at once (as the next pull would), so a retry
// finds it without waiting for a sync. Each call returns request/response summaries (no secrets).
import { z } from 'zod';
import type { Json, PushAction, PushResult, SyncContext } from '../../src/sync/types.ts';
import { markNetworkTransactionsDeleted } from '../../src/model/index.ts';
import { HttpError } from '../../src/http/errors.ts';
import { sha256 } from '../../src/util/hash.ts';
import { scrubSecrets, scrubValue } from '../../src/util/secrets.ts';
import { errorMessage } from '../../src/util/errors.ts';
import { formatZodIssues } from '../../src/util/zod-format.ts';
import type { PartnerStackClient } from './client.ts';
import { rewardSchema, transactionSchema, type PartnerStackOptions } from './schemas.ts';
import { getPath } from './mapping.ts';
import { writeRewards, writeTransactions } from './streams.ts';

const currencyCode = z.string().regex(/^[A-Za-z]{3}$/, 'expected an ISO-4217 currency code');
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** POST /transactions. `key` is the billing document id (Stripe invoice/charge id, Chargebee invoice id). */
export const createTransactionPayload = z.strictObject({
  key: z.string().min(4).max(255),
  customer_external_key: z.string().min(1),
  amount: z.number().int().min(-50_000_000_000).max(50_000_000_000),
  currency: currencyCode,
  /** Epoch ms: the payment's paid time (backdating). */
  created_at: z.number().int().nonnegative().optional(),
  category_key: z.string().min(1).optional(),
  product_key: z.string().min(1).optional(),
  /** ≤25 attributes; names ≤30 characters, values ≤100 (checked by the vendor). */
  metadata: z.record(z.string(), scalar).optional(),
});
export type CreateTransactionPayload = z.infer<typeof createTransactionPayload>;

/** DELETE /transactions/{key}: a refund PartnerStack did not reflect. */
export const deleteTransactionPayload = z.strictObject({ key: z.string().min(1) });
export type DeleteTransactionPayload = z.infer<typeof deleteTransactionPayload>;

/** POST /rewards: a manual positive or negative adjustment. */
export const createRewardPayload = z.strictObject({
  amount: z.number().int().refine((n) => n !== 0, 'a reward adjustment of 0 does nothing'),
  currency: currencyCode.optional(),
  /** Reference shape {type, key} [code PYSB]; whether target.key for a customer is PartnerStack's key or ours is unsure (the fake accepts both). */
  target: z.strictObject({ type: z.enum(['customer', 'transaction']), key: z.string().min(1) }),
  /** Short lead-in of the description (default "Manual adjustment" / "Manual clawback"). */
  reason: z.string().min(1).max(120).optional(),
});
export type CreateRewardPayload = z.infer<typeof createRewardPayload>;
/** create_reward needs these in `justification`; the description names them. */
export const rewardJustification = z.looseObject({
  payment: z.string().min(1),
  rule: z.string().min(1),
  subscription_state: z.string().min(1),
});

/** PATCH /customers/{customer_key} with subscription-state fields (sent as `meta`). */
export const updateCustomerPayload = z.strictObject({
  customer_key: z.string().min(1),
  fields: z.record(z.string(), z.union([scalar, z.null()])).refine((f) => Object.keys(f).length > 0, 'at least one field'),
});
export type UpdateCustomerPayload = z.infer<typeof updateCustomerPayload>;

export const PUSH_ACTION_TYPES = ['create_transaction', 'delete_transaction', 'create_reward', 'update_customer'] as const;
export type PartnerStackPushActionType = (typeof PUSH_ACTION_TYPES)[number];

/** The marker a created reward's description carries: deterministic in the idempotency key. */
export function rewardMarker(idempotencyKey: string): string {
  return `cs:${sha256(idempotencyKey).slice(0, 16)}`;
}

export function rewardDescription(p: CreateRewardPayload, j: z.infer<typeof rewardJustification>, idempotencyKey: string): string {
  const lead = p.reason ?? (p.amount > 0 ? 'Manual adjustment' : 'Manual clawback');
  return `${lead}: payment ${j.payment}; rule ${j.rule}; subscription ${j.subscription_state} [${rewardMarker(idempotencyKey)}]`;
}

function failed(error: string, request?: Json, response?: Json): PushResult {
  return { status: 'failed', error: scrubSecrets(error), ...(request !== undefined ? { request } : {}), ...(response !== undefined ? { response } : {}) };
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T | string {
  const r = schema.safeParse(value);
  return r.success ? r.data : `invalid ${what}:\n${formatZodIssues(r.error)}`;
}

function httpFailure(err: unknown, request: Json): PushResult {
  const status = err instanceof HttpError ? err.status : undefined;
  return failed(errorMessage(err), request, { status: status ?? null, body: err instanceof HttpError ? (err.bodySnippet ?? null) : null });
}

function isDuplicate(err: unknown): boolean {
  return err instanceof HttpError && (err.status === 400 || err.status === 409 || err.status === 422) && /already exists|duplicate/i.test(`${err.bodySnippet ?? ''} ${err.message}`);
}

export function createPush(deps: { options: PartnerStackOptions; client(ctx: SyncContext): PartnerStackClient }) {
  return async function push(ctx: SyncContext, action: PushAction): Promise<PushResult> {
    if (action.network !== 'partnerstack') return failed(`action for network ${action.network} sent to the PartnerStack connector`);
    const conn = ctx.connection.name;
    try {
      switch (action.type as PartnerStackPushActionType) {
        case 'create_transaction': {
          const p = parse(createTransactionPayload, action.payload, 'create_transaction payload');
          if (typeof p === 'string') return failed(p);
          const body: Record<string, Json> = { ...p, currency: p.currency.toUpperCase() };
          // Justification travels as metadata where room allows (values ≤100 characters).
          const md: Record<string, Json> = { ...(p.metadata ?? {}), cs_action: action.idempotencyKey.slice(0, 100) };
          for (const k of ['rule', 'subscription_state'] as const) {
            const v = action.justification[k];
            if (typeof v === 'string' && Object.keys(md).length < 25) md[`cs_${k}`] = v.slice(0, 100);
          }
          body.metadata = md;
          const request: Json = { method: 'POST', path: '/transactions', body: scrubValue(body) };
          const have = await ctx.db('network_transactions').where({ connection: conn, external_id: p.key }).whereNull('deleted_at').first('id');
          if (have) return { status: 'confirmed', request, response: { alreadyPresent: true, where: 'local' }, externalId: p.key };
          let res;
          try {
            res = await deps.client(ctx).call('post', 'transactions', body);
          } catch (err) {
            if (isDuplicate(err)) return { status: 'confirmed', request, response: { alreadyPresent: true, where: 'vendor', status: (err as HttpError).status ?? null }, externalId: p.key };
            return httpFailure(err, request);
          }
          const t = transactionSchema.safeParse(res.data);
          if (t.success) await ctx.db.transaction((trx) => writeTransactions(trx, [t.data], conn));
          else ctx.log.warn({ key: p.key }, 'created transaction came back in an unexpected shape; it is recorded at the next pull');
          return { status: 'confirmed', request, response: { status: res.status, key: t.success ? t.data.key : p.key, message: res.message ?? null }, externalId: p.key };
        }

        case 'delete_transaction': {
          const p = parse(deleteTransactionPayload, action.payload, 'delete_transaction payload');
          if (typeof p === 'string') return failed(p);
          const request: Json = { method: 'DELETE', path: `/transactions/${p.key}` };
          const row = await ctx.db('network_transactions').where({ connection: conn, external_id: p.key }).first<{ deleted_at: Date | null } | undefined>('deleted_at');
          if (row && row.deleted_at) return { status: 'confirmed', request, response: { alreadyAbsent: true, where: 'local' }, externalId: p.key };
          let status: number;
          try {
            status = (await deps.client(ctx).call('delete', `transactions/${encodeURIComponent(p.key)}`)).status;
          } catch (err) {
            if (!(err instanceof HttpError && err.status === 404)) return httpFailure(err, request);
            status = 404;
          }
          await ctx.db.transaction((trx) => markNetworkTransactionsDeleted(trx, conn, [p.key]));
          return { status: 'confirmed', request, response: status === 404 ? { status, alreadyAbsent: true, where: 'vendor' } : { status }, externalId: p.key };
        }

        case 'create_reward': {
          const p = parse(createRewardPayload, action.payload, 'create_reward payload');
          if (typeof p === 'string') return failed(p);
          const j = parse(rewardJustification, action.justification, 'create_reward justification (payment, rule and subscription_state name what justifies it)');
          if (typeof j === 'string') return failed(j);
          const marker = rewardMarker(action.idempotencyKey);
          const description = rewardDescription(p, j, action.idempotencyKey);
          const body: Record<string, Json> = { amount: p.amount, description, target: { type: p.target.type, key: p.target.key } };
          if (p.currency) body.currency = p.currency.toUpperCase();
          const request: Json = { method: 'POST', path: '/rewards', body: scrubValue(body) };
          const local = await ctx.db('network_commissions').where({ connection: conn }).where('description', 'like', `%[${marker}]%`).first<{ external_id: string } | undefined>('external_id');
          if (local) return { status: 'confirmed', request, response: { alreadyPresent: true, where: 'local', key: local.external_id }, externalId: local.external_id };
          const client = deps.client(ctx);
          // Sent but not recorded (crash in between)? Look among the vendor's rewards for the marker.
          // `keywords` is a documented filter of unknown semantics, so the page is scanned either way.
          try {
            const { items } = await client.list('rewards', { keywords: marker, limit: 250 }, ctx.signal);
            const hit = items.map((it) => rewardSchema.safeParse(it)).find((r) => r.success && (r.data.description ?? '').includes(`[${marker}]`));
            if (hit?.success) {
              await ctx.db.transaction((trx) => writeRewards(trx, [hit.data], conn, deps.options));
              return { status: 'confirmed', request, response: { alreadyPresent: true, where: 'vendor', key: hit.data.key }, externalId: hit.data.key };
            }
          } catch (err) {
            return httpFailure(err, { method: 'GET', path: '/rewards', query: { keywords: marker } });
          }
          let res;
          try {
            res = await client.call('post', 'rewards', body);
          } catch (err) {
            return httpFailure(err, request);
          }
          const r = rewardSchema.safeParse(res.data);
          const key = typeof res.data.key === 'string' ? res.data.key : undefined;
          if (r.success) await ctx.db.transaction((trx) => writeRewards(trx, [r.data], conn, deps.options));
          else ctx.log.warn({ key }, 'created reward came back in an unexpected shape; it is recorded at the next pull');
          return { status: 'confirmed', request, response: { status: res.status, key: key ?? null, message: res.message ?? null }, ...(key ? { externalId: key } : {}) };
        }

        case 'update_customer': {
          const p = parse(updateCustomerPayload, action.payload, 'update_customer payload');
          if (typeof p === 'string') return failed(p);
          const path = `customers/${encodeURIComponent(p.customer_key)}`;
          const body: Record<string, Json> = { meta: p.fields };
          const request: Json = { method: 'PATCH', path: `/${path}`, body: scrubValue(body) };
          const client = deps.client(ctx);
          let current: Record<string, unknown>;
          try {
            current = (await client.call('get', path)).data;
          } catch (err) {
            return httpFailure(err, { method: 'GET', path: `/${path}` });
          }
          if (customerShows(current, p.fields)) return { status: 'confirmed', request, response: { alreadyPresent: true, where: 'vendor' }, externalId: p.customer_key };
          let res;
          try {
            res = await client.call('patch', path, body);
          } catch (err) {
            return httpFailure(err, request);
          }
          return { status: 'confirmed', request, response: { status: res.status, key: typeof res.data.key === 'string' ? res.data.key : null, message: res.message ?? null }, externalId: p.customer_key };
        }

        default:
          return failed(`unknown PartnerStack action type "${action.type}" (known: ${PUSH_ACTION_TYPES.join(', ')})`);
      }
    } catch (err) {
      return failed(errorMessage(err));
    }
  };
}

/**
 * Whether a customer already shows the values. `meta` is write-only on PartnerStack (reads back {});
 * the values are looked for in mdata, m_data, field_data, meta and fields[] (pitfall 3: which one
 * carries them is unsure).
 */
export function customerShows(customer: Record<string, unknown>, fields: Record<string, string | number | boolean | null>): boolean {
  return Object.entries(fields).every(([k, want]) =>
    ['mdata', 'm_data', 'field_data', 'meta', 'fields'].some((holder) => {
      const got = getPath(customer, `${holder}.${k}`);
      return got !== undefined && (got === want || (got !== null && want !== null && String(got) === String(want)));
    }),
  );
}
