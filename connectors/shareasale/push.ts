// ShareASale push actions. Both identify the sale by order number + order date (not the transID):
//   type 'void': payload { orderNumber, orderDate, reason, voidChildren? (0|1|2) }
//   type 'edit': payload { orderNumber, orderDate, newAmountMinor?, newCommissionMinor?, newPercentage?, comment?, currency?, editChildren? (0|1|2) }
// orderDate is yyyy-mm-dd or mm/dd/yyyy in ShareASale's calendar (network_commissions.metadata.orderDate
// holds it as mm/dd/yyyy). The success body is not documented, so a reply that is not a text error is
// 'sent' (the next sync confirms it). "Transaction Not Found" / "Multiple Transactions Found" and bad
// payloads are 'failed' and never retried; auth/IP errors throw (they affect every action).
// Both actions set values, so repeating one with the same idempotency key is harmless.
import { z } from 'zod';
import type { PushAction, PushResult, SyncContext, Json } from '../../src/sync/types.ts';
import { HttpError } from '../../src/http/errors.ts';
import { scrubSecrets } from '../../src/util/secrets.ts';
import { ShareASaleError } from './client.ts';
import { minorToSasAmount, toSasDate } from './mapping.ts';
import { shareasaleRuntime, type ShareASaleRuntime } from './streams.ts';

const base = {
  orderNumber: z.string().min(1).max(255),
  orderDate: z.string().min(8),
};
const children = z.union([z.literal(0), z.literal(1), z.literal(2)]).optional();

export const sasVoidPayload = z.object({ ...base, reason: z.string().min(1).max(255), voidChildren: children });
export const sasEditPayload = z
  .object({
    ...base,
    /** New sale amount in minor units (→ newamount). */
    newAmountMinor: z.number().int().nonnegative().optional(),
    /**
     * New commission as a fixed amount in minor units (→ newspecific). The meaning of `newspecific`
     * is inferred from its name (a specific commission amount); not confirmed by a source.
     */
    newCommissionMinor: z.number().int().nonnegative().optional(),
    /** New commission percentage as a decimal string, e.g. "40" (→ newpercentage). */
    newPercentage: z.string().regex(/^\d+(\.\d+)?$/).optional(),
    comment: z.string().max(255).optional(),
    currency: z.string().regex(/^[A-Z]{3}$/).optional(),
    editChildren: children,
  })
  .refine((p) => p.newAmountMinor !== undefined || p.newCommissionMinor !== undefined || p.newPercentage !== undefined || p.comment !== undefined, {
    message: 'edit needs at least one of newAmountMinor, newCommissionMinor, newPercentage, comment',
  });
export type SasVoidPayload = z.infer<typeof sasVoidPayload>;
export type SasEditPayload = z.infer<typeof sasEditPayload>;

export async function pushShareASale(ctx: SyncContext, action: PushAction, rt?: ShareASaleRuntime): Promise<PushResult> {
  const runtime = rt ?? shareasaleRuntime(ctx);
  const { opts, client, budget } = runtime;
  let params: Record<string, string | number | undefined>;
  if (action.type === 'void') {
    const p = sasVoidPayload.safeParse(action.payload);
    if (!p.success) return { status: 'failed', error: `invalid void payload: ${p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    params = { date: safeDate(p.data.orderDate, opts.timezone), ordernumber: p.data.orderNumber, reason: p.data.reason, voidChildren: p.data.voidChildren };
  } else if (action.type === 'edit') {
    const p = sasEditPayload.safeParse(action.payload);
    if (!p.success) return { status: 'failed', error: `invalid edit payload: ${p.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
    const cur = p.data.currency ?? opts.currency;
    params = {
      date: safeDate(p.data.orderDate, opts.timezone),
      ordernumber: p.data.orderNumber,
      newamount: p.data.newAmountMinor !== undefined ? minorToSasAmount(p.data.newAmountMinor, cur) : undefined,
      newspecific: p.data.newCommissionMinor !== undefined ? minorToSasAmount(p.data.newCommissionMinor, cur) : undefined,
      newpercentage: p.data.newPercentage,
      // Sent only when set, so ShareASale keeps its default comment "Sale - <order number>".
      newcomment: p.data.comment,
      currency: p.data.newAmountMinor !== undefined && p.data.currency ? p.data.currency : undefined,
      editChildren: p.data.editChildren,
    };
  } else {
    return { status: 'failed', error: `unknown ShareASale action type "${action.type}" (expected void or edit)` };
  }
  if (params.date === undefined) return { status: 'failed', error: `orderDate "${String(action.payload.orderDate)}" is not a date (yyyy-mm-dd or mm/dd/yyyy)` };
  const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string | number>;
  const request: Json = { action: action.type, ...clean };
  if (!(await budget.availableForPush(1))) {
    return { status: 'skipped', request, error: `ShareASale monthly request credits are used up (${await budget.used()} of ${budget.quota()}); retry after the month rolls over` };
  }
  try {
    const body = await client.call(action.type, clean);
    return { status: 'sent', request, response: { body: scrubSecrets(body.trim()).slice(0, 300) } };
  } catch (err) {
    if (err instanceof ShareASaleError) {
      if (err.kind === 'auth' || err.kind === 'ip_not_registered') throw err;
      // "Transaction Not Found", "Multiple Transactions Found" …: ShareASale's answer, not a glitch.
      return { status: 'failed', retryable: false, request, response: { body: err.bodySnippet ?? null, kind: err.kind }, error: err.message };
    }
    // Network/5xx after the client's retries: failed for now; repeating the action later is harmless.
    if (err instanceof HttpError) return { status: 'failed', request, error: err.message };
    throw err;
  }
}

function safeDate(v: string, zone: string): string | undefined {
  try {
    return toSasDate(v, zone);
  } catch {
    return undefined;
  }
}
