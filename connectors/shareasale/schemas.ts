// ShareASale connection options and the record schema of one transaction row.
// Merchant `transactiondetail` column headers are NOT published (reference §2): rows arrive as
// `{ <header as sent>: <text> }` and are normalized here by header *name* through alias lists, so a
// renamed or reordered column keeps working. Unknown columns pass through to the raw store.
import { z } from 'zod';
import { IANAZone } from 'luxon';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { parseSasMoney, parseSasTime } from './mapping.ts';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date yyyy-mm-dd');
const tz = z.string().refine((v) => IANAZone.isValidZone(v), 'expected an IANA time zone such as America/Chicago');

export const shareasaleOptionsSchema = z.object({
  merchantId: z.union([z.string().regex(/^\d+$/, 'expected the numeric ShareASale merchant id'), z.number().int().positive()]).transform(String),
  /** Merchant API version; 3.0 is the newest documented (reference §1). */
  apiVersion: z.string().regex(/^\d+(\.\d+)?$/).default('3.0'),
  /** ShareASale timestamps carry no zone; php-oara assumes America/Chicago (not confirmed). */
  timezone: tz.default('America/Chicago'),
  /** ShareASale amounts carry no currency; merchants bill in USD (php-oara treats all as USD). */
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code such as USD').default('USD'),
  /** Response format requested for reports: pipe (ShareASale's default) or csv. */
  format: z.enum(['pipe', 'csv']).default('pipe'),
  /** First day of history to pull on the first run (yyyy-mm-dd, in `timezone`); default 90 days back. */
  startDate: isoDate.optional(),
  /** Days re-read by a look-back sweep (every sync.lookback.everyHours) so voids and edits (possible until the lock date) are seen. */
  lookbackDays: z.number().int().min(0).max(365).default(60),
  /** Days per transactiondetail request (datestart..dateend). */
  windowDays: z.number().int().min(1).max(366).default(31),
  /** Rows per page: ShareASale returns at most 5,000; a full page means "ask for the next page". */
  pageSize: z.number().int().min(1).max(5000).default(5000),
  credits: z
    .object({
      /** Monthly request credits of the account (reported caps: 200 merchant, 600 affiliate). */
      monthlyQuota: z.number().int().positive().default(200),
      /** Credits a sync leaves unused (for pushes and manual work); pushes may spend it. */
      reserve: z.number().int().min(0).default(20),
      /** Ask `apitokencount` at the start of each sync to learn usage made elsewhere (costs a credit). */
      checkTokenCount: z.boolean().default(true),
    })
    .prefault({}),
  /** HTTP retry tuning (tests lower the backoff). Auth/IP/text errors are never retried. */
  retries: z.number().int().min(0).max(10).default(3),
  minBackoffMs: z.number().int().min(0).default(1000),
});
export type ShareasaleOptions = z.infer<typeof shareasaleOptionsSchema>;

export function parseShareasaleOptions(connection: ConnectionConfig): ShareasaleOptions {
  const r = shareasaleOptionsSchema.safeParse(connection.options ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  - connections.${connection.name}.options.${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`Invalid ShareASale options:\n${lines.join('\n')}`);
  }
  if (r.data.credits.reserve >= r.data.credits.monthlyQuota) {
    throw new ConfigError(`connections.${connection.name}.options.credits.reserve: must be below credits.monthlyQuota (${r.data.credits.monthlyQuota})`);
  }
  return r.data;
}

/** Header name → comparable key: "Trans ID", "TRANSID", "trans_id" all become "transid". */
export function normalizeHeader(h: string): string {
  return h.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Candidate header names per field, most specific first (normalized form). */
export const COLUMN_ALIASES = {
  transId: ['transid', 'transactionid', 'transactionnumber', 'transnumber', 'id'],
  affiliateId: ['userid', 'affiliateid', 'affid', 'affiliate', 'affiliateuserid'],
  merchantId: ['merchantid'],
  transDate: ['transdate', 'dateoftrans', 'transactiondate', 'date', 'orderdate'],
  saleAmount: ['transamount', 'saleamount', 'ssamount', 'amount', 'orderamount'],
  commission: ['commission', 'affiliatecommission', 'commissionamount'],
  comment: ['comment', 'comments', 'merchantcomment'],
  voided: ['voided', 'void', 'isvoided', 'voiddate'],
  lockDate: ['lockdate', 'locked', 'datelocked'],
  paidDate: ['paiddate', 'datepaid', 'paid'],
  orderNumber: ['ordernumber', 'orderid', 'ordernum', 'tracking', 'trackingnumber', 'order'],
  transType: ['transtype', 'type', 'transactiontype'],
  affiliateName: ['affiliateorganization', 'organization', 'affiliatename', 'affiliatecompany', 'affiliatewebsite'],
  affiliateEmail: ['affiliateemail', 'email'],
  clickDate: ['clickdate', 'clickdatetime'],
  clickTime: ['clicktime'],
  referenceTrans: ['referencetrans', 'parenttransid', 'referencetransid'],
} as const;
export type SasField = keyof typeof COLUMN_ALIASES;

/** A row's values by normalized header (the first column of each normalized name wins). */
export function normalizedRow(row: Record<string, unknown>): Map<string, unknown> {
  const byNorm = new Map<string, unknown>();
  for (const [k, v] of Object.entries(row)) {
    const n = normalizeHeader(k);
    if (!byNorm.has(n)) byNorm.set(n, v);
  }
  return byNorm;
}

/** Finds the field's value in a row whose headers are in any spelling (or in a normalizedRow, built once per row). */
export function pick(row: Record<string, unknown> | Map<string, unknown>, field: SasField): string | undefined {
  const byNorm = row instanceof Map ? row : normalizedRow(row);
  for (const alias of COLUMN_ALIASES[field]) {
    const v = byNorm.get(alias);
    if (v !== undefined && v !== null && String(v).trim() !== '') return String(v).trim();
  }
  return undefined;
}

/** A transaction row after normalization: what mapping and writers use. */
export interface SasTransaction {
  transId: string;
  affiliateId: string;
  merchantId: string | null;
  /** The row's timestamp as an instant (interpreted in the configured zone). */
  occurredAt: string;
  /** Order date in ShareASale's own calendar (mm/dd/yyyy): what void/edit identify a sale by. */
  orderDate: string;
  saleAmountMinor: number | null;
  commissionMinor: number;
  comment: string | null;
  voided: boolean;
  voidedAt: string | null;
  locked: boolean;
  lockDate: string | null;
  paidDate: string | null;
  orderNumber: string | null;
  transType: string | null;
  affiliateName: string | null;
  affiliateEmail: string | null;
  clickAt: string | null;
  referenceTrans: string | null;
  /** The row as received (original headers). */
  raw: Record<string, string>;
}

const rowInput = z.record(z.string(), z.union([z.string(), z.number(), z.null()]).transform((v) => (v === null ? '' : String(v))));

/** Schema for one row; the zone/currency are per connection so the schema is built per connection. */
export function transactionRowSchema(opts: { timezone: string; currency: string; now?: () => Date }): z.ZodType<SasTransaction> {
  return rowInput.transform((input, ctx): SasTransaction => {
    const row = normalizedRow(input);
    const problems: string[] = [];
    const transId = pick(row, 'transId');
    if (!transId) problems.push('missing transaction id (no "Trans ID" column value)');
    else if (!/^[A-Za-z0-9_-]+$/.test(transId)) problems.push(`transaction id "${transId}" is not an id`);
    const affiliateId = pick(row, 'affiliateId');
    if (!affiliateId) problems.push('missing affiliate id (no "User ID"/"Affiliate ID" column value)');
    const dateText = pick(row, 'transDate');
    const when = dateText ? parseSasTime(dateText, opts.timezone) : null;
    if (!dateText) problems.push('missing transaction date');
    else if (!when) problems.push(`transaction date "${dateText}" is not a date (expected mm/dd/yyyy [hh:mm:ss AM])`);
    const commissionText = pick(row, 'commission');
    const commission = commissionText === undefined ? null : parseSasMoney(commissionText, opts.currency);
    if (commissionText === undefined) problems.push('missing commission');
    else if (commission === null) problems.push(`commission "${commissionText}" is not an amount`);
    const saleText = pick(row, 'saleAmount');
    const sale = saleText === undefined ? null : parseSasMoney(saleText, opts.currency);
    if (saleText !== undefined && sale === null) problems.push(`sale amount "${saleText}" is not an amount`);
    if (problems.length > 0 || !transId || !affiliateId || !when || commission === null) {
      ctx.addIssue({ code: 'custom', message: problems.join('; ') });
      return z.NEVER;
    }
    const voidedText = pick(row, 'voided');
    const lockText = pick(row, 'lockDate');
    const lockAt = lockText ? parseSasTime(lockText, opts.timezone) : null;
    const now = opts.now?.() ?? new Date();
    const clickDate = pick(row, 'clickDate');
    const clickTime = pick(row, 'clickTime');
    const clickAt = clickDate ? parseSasTime(clickTime && !clickDate.includes(':') ? `${clickDate} ${clickTime}` : clickDate, opts.timezone) : null;
    return {
      transId,
      affiliateId,
      merchantId: pick(row, 'merchantId') ?? null,
      occurredAt: when.instant.toISOString(),
      orderDate: when.localDate,
      saleAmountMinor: sale,
      commissionMinor: commission,
      comment: pick(row, 'comment') ?? null,
      voided: isTruthyFlag(voidedText),
      voidedAt: voidedText && !isFlagWord(voidedText) ? (parseSasTime(voidedText, opts.timezone)?.instant.toISOString() ?? null) : null,
      // "Locked" may be a flag column or a lock date; a lock date in the past means locked.
      locked: lockText ? (isFlagWord(lockText) ? isTruthyFlag(lockText) : !!lockAt && lockAt.instant <= now) : false,
      lockDate: lockAt?.instant.toISOString() ?? null,
      paidDate: (() => {
        const p = pick(row, 'paidDate');
        if (!p || (isFlagWord(p) && !isTruthyFlag(p))) return null;
        return parseSasTime(p, opts.timezone)?.instant.toISOString() ?? (isTruthyFlag(p) ? now.toISOString() : null);
      })(),
      orderNumber: pick(row, 'orderNumber') ?? null,
      transType: pick(row, 'transType') ?? null,
      affiliateName: pick(row, 'affiliateName') ?? null,
      affiliateEmail: pick(row, 'affiliateEmail') ?? null,
      clickAt: clickAt?.instant.toISOString() ?? null,
      referenceTrans: pick(row, 'referenceTrans') ?? null,
      raw: input,
    };
  }) as unknown as z.ZodType<SasTransaction>;
}

function isFlagWord(v: string): boolean {
  return /^(0|1|y|n|yes|no|true|false|t|f|voided|locked|paid)$/i.test(v.trim());
}

/** Voided/locked columns: "1", "Yes", "True", "Voided", or a date (voided on that date). */
function isTruthyFlag(v: string | undefined): boolean {
  if (!v) return false;
  const t = v.trim();
  if (/^(0|n|no|false|f)$/i.test(t)) return false;
  return true;
}
