// Awin advertiser API: connection options and the transaction record (reference §5).
// Field types differ between the two open-source taps (e.g. originalSaleAmount), so everything
// beyond what the mapping needs is loose and passes through to the raw store.
import { z } from 'zod';
import { DateTime } from 'luxon';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/util/errors.ts';

/** The `timezone` values Awin accepts. */
export const AWIN_TIMEZONES = [
  'Europe/Berlin', 'Europe/Paris', 'Europe/London', 'Europe/Dublin',
  'Canada/Eastern', 'Canada/Central', 'Canada/Mountain', 'Canada/Pacific',
  'US/Eastern', 'US/Central', 'US/Mountain', 'US/Pacific', 'UTC',
] as const;
export type AwinTimezone = (typeof AWIN_TIMEZONES)[number];

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date yyyy-mm-dd');
const numericId = z.union([z.string().regex(/^\d+$/, 'expected a numeric id'), z.number().int().positive()]).transform(String);

export const identityEntrySchema = z.object({
  shareasaleId: numericId,
  awinId: numericId,
  /** partner: ShareASale affiliate → Awin publisher; advertiser: ShareASale merchant → Awin advertiser. */
  kind: z.enum(['partner', 'advertiser']).default('partner'),
});
export type IdentityEntry = z.infer<typeof identityEntrySchema>;

export const awinOptionsSchema = z.object({
  advertiserId: numericId,
  /** Sent on every request (old docs call it mandatory; current docs default to UTC). */
  timezone: z.enum(AWIN_TIMEZONES).default('UTC'),
  /** First day of history for the first run (yyyy-mm-dd in `timezone`); default 90 days back. */
  startDate: isoDate.optional(),
  /** Days per request; Awin allows at most 31 between startDate and endDate. */
  windowDays: z.number().int().min(1).max(31).default(31),
  /** The transaction-date pass restarts this many hours before the last run's end (late-tracked sales). */
  overlapHours: z.number().int().min(0).max(24 * 31).default(48),
  /** Days covered by the validation-date and amendment-date passes of a look-back sweep (0 = no such passes); between sweeps they read a tail. */
  lookbackDays: z.number().int().min(0).max(365).default(60),
  /** Client-side throttle: Awin allows 20 calls per minute per user (connection.rateLimit overrides). */
  requestsPerMinute: z.number().int().min(1).max(1000).default(20),
  /** Wait after a 429 request.limit.exceeded that has no Retry-After (Awin sends none that we know of). */
  limitWaitMs: z.number().int().min(0).max(120_000).default(60_000),
  retries: z.number().int().min(0).max(10).default(4),
  minBackoffMs: z.number().int().min(0).default(1000),
  push: z
    .object({
      /** Items per batch request; Awin accepts at most 40,000. */
      maxBatch: z.number().int().min(1).max(40_000).default(40_000),
      pollIntervalMs: z.number().int().min(0).default(5_000),
      /** After this, the push reports 'sent' with the job id; the next push/pushStatus polls the same job. */
      pollTimeoutMs: z.number().int().min(0).default(10 * 60_000),
    })
    .prefault({}),
  /** ShareASale → Awin id mapping, so a partner's ShareASale and Awin history is one partner. */
  identityMap: z.array(identityEntrySchema).default([]),
  /** The same mapping as a CSV file: shareasale_id,awin_id[,kind]. */
  identityMapFile: z.string().min(1).optional(),
});
export type AwinOptions = z.infer<typeof awinOptionsSchema>;

export function parseAwinOptions(connection: ConnectionConfig): AwinOptions {
  const r = awinOptionsSchema.safeParse(connection.options ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  - connections.${connection.name}.options.${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`Invalid Awin options:\n${lines.join('\n')}`);
  }
  return r.data;
}

const money = z.looseObject({ amount: z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)]), currency: z.string().regex(/^[A-Za-z]{3}$/) });
const id = z.union([z.number().int(), z.string().regex(/^\d+$/)]);

export const awinTransactionSchema = z.looseObject({
  id,
  advertiserId: id.nullish(),
  publisherId: id,
  commissionStatus: z.string().refine((s) => ['pending', 'approved', 'declined', 'deleted'].includes(s.toLowerCase()), 'expected pending, approved, declined or deleted'),
  commissionAmount: money,
  saleAmount: money.nullish(),
  transactionDate: z.string().refine((v) => DateTime.fromISO(v.trim().replace(' ', 'T'), { setZone: true }).isValid, 'expected an ISO date-time such as 2025-01-15T10:23:00'),
  validationDate: z.string().nullish(),
  clickDate: z.string().nullish(),
  orderRef: z.union([z.string(), z.number()]).nullish(),
  clickRefs: z.record(z.string(), z.union([z.string(), z.number(), z.null()])).nullish(),
  transactionParts: z
    .array(
      z.looseObject({
        commissionGroupId: z.union([z.number(), z.string()]).nullish(),
        commissionGroupCode: z.string().nullish(),
        commissionGroupName: z.string().nullish(),
        amount: z.union([z.number(), z.string()]),
        commissionAmount: z.union([z.number(), z.string()]).nullish(),
      }),
    )
    .nullish(),
  paidToPublisher: z.boolean().nullish(),
  siteName: z.string().nullish(),
  declineReason: z.string().nullish(),
  amended: z.boolean().nullish(),
  amendReason: z.string().nullish(),
  type: z.string().nullish(),
});
export type AwinTransaction = z.infer<typeof awinTransactionSchema>;
