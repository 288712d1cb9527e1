// Turns pushable discrepancies (approved, or open of a kind in push.autoPushKinds) into typed
// per-network actions. Each action carries what justifies it: the billing facts, the latest
// subscription state, and the rule result. Kinds a network cannot express are listed as skipped
// with the reason (ops handle them by hand). Pure decisions live in `actionsFor`; loading is above it.
import type { Knex } from 'knex';
import type { Config } from '../config/schema.ts';
import type { Json } from '../sync/types.ts';
import { sha256, stableStringify } from '../util/hash.ts';
import { chunk } from '../util/chunk.ts';
import { listDiscrepancies, type DiscrepancyRecord } from '../reconcile/discrepancies.ts';
import type { ActionSpec, Justification, PlannedAction, SkippedDiscrepancy } from './actions.ts';

/** Facts the planner gathered for one discrepancy. */
export interface PlanFacts {
  d: DiscrepancyRecord;
  connection: string | null;
  network: { externalId: string; transactionKey: string | null; orderRef: string | null; amountMinor: number; currency: string; status: string; occurredAt: Date; metadata: Record<string, unknown> } | null;
  billing: { externalId: string; documentId: string; amountMinor: number; currency: string; occurredAt: Date } | null;
  /** The customer's key on the target network (PartnerStack customer key), if known. */
  networkCustomerKey: string | null;
  subscription: { externalId: string; status: string; since: Date | null; canceledAt: Date | null; planInterval: string | null } | null;
}

const CUSTOMER_LEVEL_EXCLUSIONS = new Set(['self_referral', 'test_customer', 'agency_sub_account']);
const day = (d: Date | null | undefined): string | null => (d ? d.toISOString().slice(0, 10) : null);

export function subscriptionStateText(s: PlanFacts['subscription']): string {
  if (!s) return 'unknown (no subscription on the payment)';
  if (s.status === 'canceled' || s.canceledAt) return `canceled${s.canceledAt ? ` ${day(s.canceledAt)}` : ''} (${s.externalId})`;
  return `${s.status}${s.since ? ` since ${day(s.since)}` : ''} (${s.externalId})`;
}

export function justificationFor(f: PlanFacts): Justification {
  const d = f.d;
  const computed = (d.detail.computed ?? {}) as Record<string, Json>;
  const billingDetail = (d.detail.billing ?? null) as Json;
  const rule = d.computedCommissionKey
    ? `${d.computedCommissionKey}: owed ${d.expectedMinor ?? 0} ${d.currency ?? ''}${computed.exclusionReason ? ` (excluded: ${String(computed.exclusionReason)})` : ''}`.trim()
    : `no computed commission (${String(d.detail.reason ?? d.kind)})`;
  return {
    payment: f.billing?.externalId ?? 'none',
    rule: rule.slice(0, 200),
    subscription_state: subscriptionStateText(f.subscription),
    discrepancy: { id: d.id, kind: d.kind, fingerprint: d.fingerprint, usdAtStakeMinor: d.usdAtStakeMinor, reason: (d.detail.reason as Json) ?? null },
    billing: billingDetail,
    subscription: f.subscription
      ? { externalId: f.subscription.externalId, status: f.subscription.status, since: f.subscription.since?.toISOString() ?? null, canceledAt: f.subscription.canceledAt?.toISOString() ?? null, planInterval: f.subscription.planInterval }
      : null,
  };
}

/** Pure: which actions fix this discrepancy on its network, or why none can. */
export function actionsFor(f: PlanFacts): { actions: ActionSpec[]; skip?: string } {
  const d = f.d;
  const n = f.network;
  const reason = String(d.detail.reason ?? d.kind);
  const reported = n?.amountMinor ?? d.reportedMinor ?? 0;
  const expected = d.expectedMinor ?? 0;
  const takeBack = d.kind === 'unexpected_in_network' || d.kind === 'duplicate_in_network' || (d.kind === 'status_mismatch' && reason !== 'network_declined_owed');
  const owedButDeclined = d.kind === 'status_mismatch' && reason === 'network_declined_owed';
  if (d.kind === 'attribution_window_exceeded') return { actions: [], skip: 'informational: money is not changed automatically (R1)' };
  if (d.kind === 'partner_mismatch') return { actions: [], skip: 'attribution is the network’s call (R1); moving a customer between partners is done by hand' };

  switch (d.network) {
    case 'partnerstack': {
      const customer = f.networkCustomerKey;
      const withCustomer = (amount: number, why: string): ActionSpec[] | string =>
        customer ? [{ network: 'partnerstack', type: 'create_reward', payload: { amount, currency: d.currency ?? 'USD', target: { type: 'customer', key: customer }, reason: why } }] : 'the customer is unknown to PartnerStack (no customer key)';
      let actions: ActionSpec[] | string;
      if (d.kind === 'missing_in_network') {
        if (!f.billing) return { actions: [], skip: 'no billing payment linked' };
        if (d.detail.computed && (d.detail.computed as Record<string, unknown>).kind === 'second_tier') return { actions: [], skip: 'PartnerStack computes second-tier rewards itself; a missing one is raised with the network by hand' };
        actions = customer
          ? [{ network: 'partnerstack', type: 'create_transaction', payload: { key: f.billing.documentId, customer_external_key: customer, amount: f.billing.amountMinor, currency: f.billing.currency, created_at: f.billing.occurredAt.getTime() } }]
          : 'the customer is unknown to PartnerStack (no customer key)';
      } else if (d.kind === 'amount_mismatch') {
        // reportedMinor already sums our earlier adjustment rewards, so the delta is what is still off.
        const delta = expected - (d.reportedMinor ?? reported);
        actions = delta === 0 ? 'nothing to adjust' : withCustomer(delta, delta > 0 ? 'Commission top-up' : 'Commission correction');
      } else if (owedButDeclined) {
        actions = withCustomer(expected, 'Owed commission declined');
      } else if (takeBack) {
        // A whole sale that should not count is deleted; a duplicate reward on a real sale is offset.
        actions = n?.transactionKey && d.kind !== 'duplicate_in_network' ? [{ network: 'partnerstack', type: 'delete_transaction', payload: { key: n.transactionKey } }] : withCustomer(-reported, `Reversal: ${reason}`.slice(0, 120));
        if (typeof actions !== 'string' && customer && d.kind === 'unexpected_in_network' && CUSTOMER_LEVEL_EXCLUSIONS.has(reason)) {
          actions.push({ network: 'partnerstack', type: 'update_customer', payload: { customer_key: customer, fields: { cs_excluded: reason, cs_subscription_status: f.subscription?.status ?? null } } });
        }
      } else return { actions: [], skip: `no PartnerStack action for ${d.kind}` };
      return typeof actions === 'string' ? { actions: [], skip: actions } : { actions };
    }
    case 'shareasale': {
      if (!n) return { actions: [], skip: 'ShareASale cannot create a missing sale through the API' };
      const orderNumber = n.orderRef ?? n.transactionKey;
      const orderDate = typeof n.metadata.orderDate === 'string' ? n.metadata.orderDate : day(n.occurredAt)!;
      if (!orderNumber) return { actions: [], skip: 'the ShareASale record has no order number' };
      if (d.kind === 'amount_mismatch') return { actions: [{ network: 'shareasale', type: 'edit', payload: { orderNumber, orderDate, newCommissionMinor: Math.max(0, expected), comment: `commission-sync: owed per program rules (${d.computedCommissionKey ?? ''})`.slice(0, 255) } }] };
      if (takeBack) return { actions: [{ network: 'shareasale', type: 'void', payload: { orderNumber, orderDate, reason: `commission-sync: ${reason}`.slice(0, 255) } }] };
      return { actions: [], skip: `no ShareASale action for ${d.kind}${owedButDeclined ? ' (a voided sale is reinstated by hand)' : ''}` };
    }
    case 'awin': {
      if (!n) return { actions: [], skip: 'Awin transactions cannot be created through the validation API' };
      if (d.kind === 'amount_mismatch') return { actions: [{ network: 'awin', type: 'amend', payload: { transactionId: n.externalId, commissionAmountMinor: Math.max(0, expected), currency: d.currency ?? n.currency, reason: 'commission per program rules' } }] };
      if (takeBack) return { actions: [{ network: 'awin', type: 'decline', payload: { transactionId: n.externalId, reason } }] };
      if (owedButDeclined) return { actions: [{ network: 'awin', type: 'approve', payload: { transactionId: n.externalId } }] };
      return { actions: [], skip: `no Awin action for ${d.kind}` };
    }
    default:
      return { actions: [], skip: `network ${d.network ?? '?'} has no push actions` };
  }
}

/** Deterministic in the discrepancy and the action content: the same fix always has the same key. */
export function idempotencyKeyFor(d: { id: number; fingerprint: string }, spec: ActionSpec): string {
  return `cs1-${d.id}-${spec.type}-${sha256(`${d.fingerprint}|${stableStringify(spec.payload)}`).slice(0, 20)}`;
}

export interface PlanOptions {
  /** Only these discrepancies (still must be approved or auto-pushable). */
  ids?: number[] | undefined;
  network?: string | undefined;
  /** Include open discrepancies of push.autoPushKinds (default true). */
  includeAutoKinds?: boolean | undefined;
}

export interface Plan {
  actions: PlannedAction[];
  skipped: SkippedDiscrepancy[];
  /** Actions whose key is already done (sent/confirmed/skipped): not planned again. */
  alreadyDone: number;
}

async function loadFacts(db: Knex, ds: DiscrepancyRecord[]): Promise<PlanFacts[]> {
  const ncIds = ds.map((d) => d.networkCommissionId).filter((x): x is number => x !== null);
  const beIds = ds.map((d) => d.billingEventId).filter((x): x is number => x !== null);
  const ncs = new Map<number, Record<string, unknown>>();
  const bes = new Map<number, Record<string, unknown>>();
  for (const ids of chunk(ncIds, 1000)) for (const r of await db('network_commissions').whereIn('id', ids)) ncs.set(Number(r.id), r);
  for (const ids of chunk(beIds, 1000)) for (const r of await db('billing_events').whereIn('id', ids)) bes.set(Number(r.id), r);
  const subIds = [...new Set([...bes.values()].map((b) => b.subscription_id).filter((x) => x !== null && x !== undefined).map(Number))];
  const subs = new Map<number, Record<string, unknown>>();
  const latestState = new Map<number, { status: string; valid_from: Date }>();
  for (const ids of chunk(subIds, 1000)) {
    for (const r of await db('subscriptions').whereIn('id', ids)) subs.set(Number(r.id), r);
    for (const r of await db('subscription_states').whereIn('subscription_id', ids).orderBy('valid_from', 'asc')) latestState.set(Number(r.subscription_id), { status: String(r.status), valid_from: new Date(r.valid_from) });
  }
  const out: PlanFacts[] = [];
  for (const d of ds) {
    const nc = d.networkCommissionId !== null ? ncs.get(d.networkCommissionId) : undefined;
    const be = d.billingEventId !== null ? bes.get(d.billingEventId) : undefined;
    const connection = d.connection ?? (nc ? String(nc.connection) : null);
    let networkCustomerKey: string | null = null;
    const customerId = be?.customer_id ?? nc?.customer_id ?? null;
    if (connection && customerId !== null && customerId !== undefined) {
      const ident = await db('customer_identities').where({ customer_id: Number(customerId), connection }).orderBy('id').first('external_id');
      networkCustomerKey = ident ? String(ident.external_id) : null;
    }
    networkCustomerKey ??= (nc?.customer_external_key as string | null | undefined) ?? null;
    const sub = be?.subscription_id ? subs.get(Number(be.subscription_id)) : undefined;
    const st = sub ? latestState.get(Number(sub.id)) : undefined;
    out.push({
      d,
      connection,
      network: nc
        ? {
            externalId: String(nc.external_id),
            transactionKey: (nc.transaction_key as string | null) ?? null,
            orderRef: (nc.order_ref as string | null) ?? null,
            amountMinor: Number(nc.amount_minor),
            currency: String(nc.currency).trim(),
            status: String(nc.status),
            occurredAt: new Date(nc.occurred_at as string),
            metadata: (typeof nc.metadata === 'string' ? JSON.parse(nc.metadata) : (nc.metadata ?? {})) as Record<string, unknown>,
          }
        : null,
      billing: be ? { externalId: String(be.external_id), documentId: String(be.document_id), amountMinor: Number(be.amount_minor), currency: String(be.currency).trim(), occurredAt: new Date(be.occurred_at as string) } : null,
      networkCustomerKey,
      subscription: sub
        ? {
            externalId: String(sub.external_id),
            // The state history is the most precise; the subscription row is the fallback.
            status: st?.status ?? String(sub.status),
            since: st?.valid_from ?? (sub.started_at ? new Date(sub.started_at as string) : null),
            canceledAt: sub.canceled_at ? new Date(sub.canceled_at as string) : null,
            planInterval: (sub.plan_interval as string | null) ?? null,
          }
        : null,
    });
  }
  return out;
}

export async function planCorrections(db: Knex, config: Config, opts: PlanOptions = {}): Promise<Plan> {
  const approved = await listDiscrepancies(db, { status: ['approved'], ids: opts.ids, network: opts.network });
  const auto = opts.includeAutoKinds === false || config.push.autoPushKinds.length === 0 ? [] : await listDiscrepancies(db, { status: ['open'], kind: config.push.autoPushKinds, ids: opts.ids, network: opts.network });
  const ds = [...approved, ...auto].sort((a, b) => a.id - b.id);
  const facts = await loadFacts(db, ds);
  const actions: PlannedAction[] = [];
  const skipped: SkippedDiscrepancy[] = [];
  for (const f of facts) {
    const r = actionsFor(f);
    if (r.skip || r.actions.length === 0) {
      skipped.push({ discrepancyId: f.d.id, kind: f.d.kind, network: f.d.network, reason: r.skip ?? 'no action' });
      continue;
    }
    if (!f.connection) {
      skipped.push({ discrepancyId: f.d.id, kind: f.d.kind, network: f.d.network, reason: 'no network connection is linked to it' });
      continue;
    }
    const justification = justificationFor(f);
    r.actions.forEach((spec, i) => {
      actions.push({
        idempotencyKey: idempotencyKeyFor(f.d, spec),
        discrepancyId: f.d.id,
        discrepancyKind: f.d.kind,
        connection: f.connection!,
        network: spec.network,
        type: spec.type,
        payload: spec.payload as unknown as Record<string, Json>,
        justification,
        // The money moves with the first action; follow-ups (customer state) move none.
        usdMinor: i === 0 ? f.d.usdAtStakeMinor : 0,
      });
    });
  }
  // Keys already done are not planned again (planned/sending/failed ones are picked up by the executor).
  const done = new Set<string>();
  for (const keys of chunk(actions.map((a) => a.idempotencyKey), 1000)) {
    for (const r of await db('corrections').whereIn('idempotency_key', keys).whereIn('status', ['sent', 'confirmed', 'skipped']).select('idempotency_key')) done.add(String(r.idempotency_key));
  }
  return { actions: actions.filter((a) => !done.has(a.idempotencyKey)), skipped, alreadyDone: done.size };
}
