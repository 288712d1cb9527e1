// Pure PartnerStack → canonical mapping. No I/O: ids that need the database (customer ids,
// partner account ids) are passed in already resolved.
import type { AttributionInput, CustomerInput, NetworkCommissionInput, NetworkTransactionInput, PartnerAccountInput } from '../../src/model/types.ts';
import type { PsCustomer, PsPartnership, PsReward, PsTransaction } from './schemas.ts';
import { normalizeRewardStatus, rewardRawStatus } from './schemas.ts';

export const NETWORK = 'partnerstack' as const;
/** identity_links kind holding `<connection>:<partnership key>` → partner key (rewards name only the partnership). */
export const PARTNERSHIP_LINK_KIND = 'partnerstack.partnership';

export const msToDate = (ms: number): Date => new Date(ms);

/** A partner account's external id: the vendor-unique partner_key (what customers and the recruiter field name). */
export function partnerExternalId(p: Pick<PsPartnership, 'key' | 'partner_key'>): string {
  return p.partner_key || p.key;
}

/**
 * Reads a dot path (`fields.recruited_by`). Where a step meets an array (custom fields are often
 * `[{key, value}]`), the element whose key/name/slug equals the segment is taken and its value used.
 */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      const hit = cur.find((e) => e && typeof e === 'object' && [e.key, e.name, e.slug, e.field].includes(seg)) as Record<string, unknown> | undefined;
      cur = hit ? (hit.value ?? hit.val ?? hit.data) : undefined;
    } else if (typeof cur === 'object') {
      cur = (cur as Record<string, unknown>)[seg];
    } else return undefined;
  }
  if (Array.isArray(cur)) cur = cur[0];
  return cur;
}

export function recruiterOf(p: PsPartnership, recruiterField: string, csv: ReadonlyMap<string, string> | undefined): string | null {
  const own = partnerExternalId(p);
  const fromCsv = csv?.get(own);
  const raw = fromCsv ?? getPath(p, recruiterField);
  const v = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' ? String(raw) : '';
  // One level only and never the partner itself (R6).
  return v && v !== own ? v : null;
}

function fullName(p: PsPartnership): string | null {
  const n = [p.first_name, p.last_name].filter((x) => x && x.trim()).join(' ').trim();
  return n || null;
}

export function mapPartnership(p: PsPartnership, connection: string, recruiterExternalId: string | null): PartnerAccountInput {
  const status = p.archived ? 'archived' : typeof (p as Record<string, unknown>).approved_status === 'string' ? String((p as Record<string, unknown>).approved_status) : 'active';
  return {
    connection,
    network: NETWORK,
    externalId: partnerExternalId(p),
    name: fullName(p),
    email: p.email ?? null,
    groupKey: p.group?.key ?? null,
    status,
    recruiterExternalId,
    joinedAt: p.joined_at != null ? msToDate(p.joined_at) : null,
    sourceUpdatedAt: msToDate(p.updated_at),
  };
}

/** Identities: PartnerStack's own key; customer_key is the shared company key; provider_key is a Stripe customer id. */
export function mapCustomer(c: PsCustomer, connection: string): CustomerInput {
  const other = c.provider_key ? [{ system: providerSystem(c.provider_key), connection, externalId: c.provider_key }] : [];
  return {
    identity: { system: NETWORK, connection, externalId: c.key },
    customerKey: c.customer_key || null,
    otherIdentities: other,
    email: c.email ?? null,
    // `name` can be a Stripe cus_… id (pitfall 4): that is not a name.
    name: c.name && !/^cus_[A-Za-z0-9]+$/.test(c.name) ? c.name : null,
    isTest: c.test ?? null,
  };
}

/**
 * provider_key is documented only as the Stripe customer id (set by PartnerStack's Stripe
 * integration); what other billing integrations put there is undocumented, so it is always
 * recorded as a Stripe identity.
 */
export function providerSystem(_providerKey: string): string {
  return 'stripe';
}

export function mapAttribution(c: PsCustomer, connection: string, customerId: number, partnerAccountId: number): AttributionInput {
  return {
    connection,
    network: NETWORK,
    sourceRef: `customer:${c.key}`,
    customerId,
    partnerAccountId,
    signupAt: msToDate(c.created_at),
    attributedAt: msToDate(c.created_at),
  };
}

export function mapTransaction(t: PsTransaction, connection: string, ids: { customerId: number | null; partnerAccountId: number | null }): NetworkTransactionInput {
  return {
    connection,
    network: NETWORK,
    externalId: t.key,
    customerExternalKey: t.customer?.external_key ?? null,
    customerId: ids.customerId,
    partnerAccountId: ids.partnerAccountId,
    amountMinor: t.amount,
    currency: t.currency.toUpperCase(),
    amountUsdMinor: t.amount_usd ?? (t.currency.toUpperCase() === 'USD' ? t.amount : null),
    occurredAt: msToDate(t.created_at),
    metadata: compact({
      customer_key: t.customer?.key,
      customer_email: t.customer?.email,
      category_key: t.category_key,
      product_key: t.product_key,
      approved: t.approved,
      archived: t.archived,
      test: t.test,
      metadata: t.metadata,
    }),
  };
}

export interface SecondTierConfig {
  offerKeys: readonly string[];
  triggerKeys: readonly string[];
}

/** second_tier when the offer or trigger key is configured as such; direct otherwise; null when nothing is configured (unknown). */
export function rewardKind(r: PsReward, st: SecondTierConfig): 'direct' | 'second_tier' | null {
  if (st.offerKeys.length === 0 && st.triggerKeys.length === 0) return null;
  if (r.offer?.key && st.offerKeys.includes(r.offer.key)) return 'second_tier';
  if (r.trigger?.key && st.triggerKeys.includes(r.trigger.key)) return 'second_tier';
  return 'direct';
}

function paymentDate(v: number | string | null | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'number' ? new Date(v).toISOString() : v;
}

export function mapReward(
  r: PsReward,
  connection: string,
  ids: { partnerAccountId: number | null; partnerExternalId: string | null; customerId: number | null },
  secondTier: SecondTierConfig,
): NetworkCommissionInput {
  const raw = rewardRawStatus(r)!;
  const cur = r.currency.toUpperCase();
  return {
    connection,
    network: NETWORK,
    externalId: r.key,
    partnerAccountId: ids.partnerAccountId,
    partnerExternalId: ids.partnerExternalId,
    customerId: ids.customerId,
    customerExternalKey: r.customer?.external_key ?? null,
    transactionKey: r.transaction?.key ?? null,
    orderRef: r.invoice?.key ?? null,
    kindHint: rewardKind(r, secondTier),
    amountMinor: r.amount,
    currency: cur,
    amountUsdMinor: r.amount_usd ?? (cur === 'USD' ? r.amount : null),
    saleAmountMinor: r.transaction?.amount ?? null,
    saleCurrency: r.transaction?.currency ?? null,
    status: normalizeRewardStatus(raw)!,
    rawStatus: raw,
    occurredAt: msToDate(r.created_at),
    offerKey: r.offer?.key ?? null,
    triggerKey: r.trigger?.key ?? null,
    invoiceStatus: r.invoice?.status ?? null,
    description: r.description ?? null,
    metadata: compact({
      partnership_key: r.partnership?.key,
      customer_key: r.customer?.key,
      customer_email: r.customer?.email,
      offer_description: r.offer?.description,
      invoice_payment_date: paymentDate(r.invoice?.payment_date),
      action: r.action,
    }),
  };
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}
