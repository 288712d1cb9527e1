// zod schemas for the PartnerStack vendor API v2 (see ../../../shared/reference/partnerstack-api.md).
// Objects are loose: unknown extra fields pass through into the raw store. Times are epoch
// milliseconds; amounts are integer cents. Optional/nullable where a source shows the field missing
// or where the reference is unsure; required only where our mapping cannot do without it.
import { z } from 'zod';

/** Epoch milliseconds (every body and filter uses ms). */
export const epochMs = z.number().int().nonnegative();
/** Integer minor units (cents); transactions allow ±5×10^10. */
export const cents = z.number().int().min(-50_000_000_000).max(50_000_000_000);
export const currency = z.string().regex(/^[A-Za-z]{3}$/, 'expected an ISO-4217 currency code');
const str = z.string();
const optStr = z.string().nullish();

/** List envelope: {data:{has_more, items[], total?}, message, status}. Items are validated one by one later. */
export const listEnvelope = z.looseObject({
  data: z.looseObject({
    has_more: z.boolean(),
    items: z.array(z.unknown()),
    // Some samples carry data.total (uncertain): accepted, never relied on.
    total: z.number().int().nullish(),
  }),
  message: z.string().nullish(),
  status: z.number().int().nullish(),
});
export type ListEnvelope = z.infer<typeof listEnvelope>;

/** Object envelope: {data:{…}, message, status}. */
export const objectEnvelope = z.looseObject({
  data: z.looseObject({}),
  message: z.string().nullish(),
  status: z.number().int().nullish(),
});

/** Error body: {message, status}. */
export const errorBody = z.looseObject({ message: z.string(), status: z.number().int().nullish() });

export const groupSchema = z.looseObject({
  key: str.min(1),
  name: optStr,
  slug: optStr,
  default: z.boolean().nullish(),
  archived: z.boolean().nullish(),
  created_at: epochMs.nullish(),
  updated_at: epochMs.nullish(),
});
export type PsGroup = z.infer<typeof groupSchema>;

const groupRef = z.looseObject({ key: str.min(1), name: optStr, slug: optStr, default: z.boolean().nullish(), archived: z.boolean().nullish() });

export const partnershipSchema = z.looseObject({
  key: str.min(1),
  // The vendor-unique partner key; the account's external id. Sources always show it, but a
  // partnership created without one may lack it (uncertain): then the partnership key stands in.
  partner_key: optStr,
  email: optStr,
  first_name: optStr,
  last_name: optStr,
  group: groupRef.nullish(),
  tier: z.unknown().optional(),
  team: z.unknown().optional(),
  manager: z.unknown().optional(),
  tags: z.unknown().optional(),
  m_data: z.unknown().optional(),
  fields: z.unknown().optional(),
  archived: z.boolean().nullish(),
  joined_at: epochMs.nullish(),
  created_at: epochMs,
  updated_at: epochMs,
});
export type PsPartnership = z.infer<typeof partnershipSchema>;

export const customerSchema = z.looseObject({
  key: str.min(1),
  customer_key: optStr,
  email: optStr,
  name: optStr,
  partner_key: optStr,
  partnership_key: optStr,
  provider_key: optStr,
  source_type: optStr,
  test: z.boolean().nullish(),
  fields: z.unknown().optional(),
  created_at: epochMs,
  updated_at: epochMs,
});
export type PsCustomer = z.infer<typeof customerSchema>;

const customerRef = z.looseObject({ key: optStr, email: optStr, external_key: optStr });

export const transactionSchema = z.looseObject({
  key: str.min(1),
  amount: cents,
  amount_usd: cents.nullish(),
  currency,
  approved: z.boolean().nullish(),
  archived: z.boolean().nullish(),
  category_key: optStr,
  product_key: optStr,
  customer: customerRef.nullish(),
  metadata: z.unknown().optional(),
  test: z.boolean().nullish(),
  created_at: epochMs,
  updated_at: epochMs.nullish(),
});
export type PsTransaction = z.infer<typeof transactionSchema>;

export const REWARD_STATUSES = ['hold', 'pending', 'approved', 'declined', 'paid', 'scheduled'] as const;
export type RewardStatus = (typeof REWARD_STATUSES)[number];

/** Normalizes the vendor's reward status; undefined for a word we do not know (→ quarantine). */
export function normalizeRewardStatus(raw: string | null | undefined): RewardStatus | undefined {
  const s = raw?.trim().toLowerCase();
  if (!s) return undefined;
  if ((REWARD_STATUSES as readonly string[]).includes(s)) return s as RewardStatus;
  // Tolerated spellings seen in other networks' words for the same states.
  if (s === 'rejected' || s === 'denied') return 'declined';
  if (s === 'on_hold' || s === 'held') return 'hold';
  return undefined;
}

export const rewardSchema = z
  .looseObject({
    key: str.min(1),
    amount: cents,
    amount_usd: cents.nullish(),
    currency,
    description: optStr,
    // Dub reads `reward_status`; `status` is accepted as a fallback (field name from one source only).
    reward_status: optStr,
    status: z.unknown().optional(),
    customer: customerRef.nullish(),
    partnership: z.looseObject({ key: optStr, partner_key: optStr, email: optStr, group: z.unknown().optional() }).nullish(),
    transaction: z.looseObject({ key: optStr, amount: cents.nullish(), currency: currency.nullish() }).nullish(),
    invoice: z.looseObject({ key: optStr, status: optStr, payment_date: z.union([epochMs, z.string()]).nullish() }).nullish(),
    offer: z.looseObject({ key: optStr, description: optStr }).nullish(),
    trigger: z.looseObject({ key: optStr }).nullish(),
    action: z.unknown().optional(),
    created_at: epochMs,
    updated_at: epochMs.nullish(),
  })
  .superRefine((r, ctx) => {
    const raw = rewardRawStatus(r);
    if (normalizeRewardStatus(raw) === undefined) {
      ctx.addIssue({ code: 'custom', path: ['reward_status'], message: `unknown reward status ${JSON.stringify(raw ?? null)} (expected one of ${REWARD_STATUSES.join('|')})` });
    }
  });
export type PsReward = z.infer<typeof rewardSchema>;

export function rewardRawStatus(r: { reward_status?: string | null | undefined; status?: unknown }): string | undefined {
  if (typeof r.reward_status === 'string' && r.reward_status) return r.reward_status;
  if (typeof r.status === 'string' && r.status) return r.status;
  return undefined;
}

/** Connection options (`connections.<name>.options`). Defaults are documented in README.md. */
export const optionsSchema = z
  .strictObject({
    /** Days of transactions and rewards re-read by a look-back sweep (no updated-at filter exists for them). */
    lookbackDays: z.number().int().min(1).max(3650).default(60),
    /** Page size; the vendor accepts 1–250. */
    pageSize: z.number().int().min(1).max(250).default(250),
    /** First-run lower bound (ISO date) for partnerships, customers, transactions and rewards; unset = full history. */
    startDate: z.iso.date().optional(),
    /** Rewards whose offer or trigger key is listed here are second-tier (kind_hint). */
    secondTier: z
      .strictObject({
        offerKeys: z.array(z.string().min(1)).default([]),
        triggerKeys: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    /** Dot path in a partnership holding the recruiter's partner key (arrays of {key,value} are searched by key). */
    recruiterField: z.string().min(1).default('fields.recruited_by'),
    /** Optional CSV `partner_key,recruiter_partner_key`; it overrides recruiterField. */
    recruiterCsv: z.string().min(1).optional(),
    /** Also read `status=scheduled` rewards separately (Dub does; the default list may omit them). */
    fetchScheduledRewardsSeparately: z.boolean().default(true),
    /** Retry/backoff for this connection's HTTP client. */
    retry: z
      .strictObject({
        retries: z.number().int().min(0).max(20).optional(),
        minBackoffMs: z.number().int().min(0).optional(),
        maxBackoffMs: z.number().int().min(0).optional(),
        maxRetryAfterMs: z.number().int().min(0).optional(),
      })
      .prefault({}),
  });
export type PartnerStackOptions = z.infer<typeof optionsSchema>;
