// Program definition: zod schema for a versioned program file, parsed into engine-ready values.
// Everything that differs between programs (tiers, thresholds, rates, hold, payout calendar,
// minimums, exclusions) is data here, so another program needs a YAML file, not code.
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { DECIMAL_RATE_PATTERN, usdToMinor } from './money.ts';
import { DEFAULT_GMAIL_LIKE_DOMAINS } from './email.ts';
import type { Network, PlanInterval } from './types.ts';

const rate = z.string().regex(DECIMAL_RATE_PATTERN, 'a decimal string such as "0.20"');
const rateLike = z.union([rate, z.number().nonnegative().transform((n) => String(n))]).pipe(rate);
const usd = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .pipe(z.string().regex(/^\d+(\.\d{1,2})?$/, 'USD amount such as "25.00"'))
  .transform((v) => usdToMinor(v));

const byInterval = z.object({ month: rateLike, year: rateLike }).strict();

/** A date (UTC midnight) or a full ISO instant; YAML may hand us a Date already. */
const instant = z.union([z.date(), z.string()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a date: ${String(v)}` });
    return z.NEVER;
  }
  return d;
});

const tierSchema = z
  .object({
    /** Stored on commission rows; null = an untiered (flat) version. */
    id: z.string().min(1).nullable(),
    name: z.string().optional(),
    /** Tier applies when distinct customers >= this ... */
    minDistinctCustomers: z.number().int().nonnegative(),
    /** ... and counted revenue is strictly over this USD amount (null = no revenue condition). */
    revenueOverUsd: usd.nullable(),
    rates: z.object({ first: byInterval, later: byInterval }).strict(),
    /** Reason recorded on later payments that earn 0 at this tier (Kartra: referral_tier_renewal). */
    laterZeroReason: z.string().min(1).nullable().default(null),
  })
  .strict();

const networkUsd = z.object({ partnerstack: usd, shareasale: usd, awin: usd }).strict();

const versionSchema = z
  .object({
    version: z.string().min(1),
    effectiveFrom: instant,
    description: z.string().optional(),
    attribution: z.object({ cookieDays: z.number().int().positive().default(30) }).strict().prefault({}),
    qualification: z
      .object({
        excludeTrialCharges: z.boolean().default(true),
        excludeTestCustomers: z.boolean().default(true),
        excludeSelfReferral: z.boolean().default(true),
        excludeAgencySubAccounts: z.boolean().default(true),
        gmailLikeDomains: z.array(z.string().min(1)).default([...DEFAULT_GMAIL_LIKE_DOMAINS]),
      })
      .strict()
      .prefault({}),
    tierWindow: z
      .object({
        months: z.number().int().positive().default(12),
        countOnlyClearedSales: z.boolean().default(true),
        windowAppliesToCustomerCount: z.boolean().default(true),
        subtractRefunds: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    tiers: z.array(tierSchema).min(1),
    laterPaymentsUseCurrentTier: z.boolean().default(true),
    secondTier: z.object({ rate: rateLike, levels: z.literal(1).default(1) }).strict().nullable(),
    hold: z.object({ days: z.number().int().nonnegative().default(45) }).strict().prefault({}),
    payout: z
      .object({
        dayOfMonth: z.number().int().min(1).max(28).default(15),
        monthsAfterClearing: z.number().int().min(0).default(1),
        timeZone: z.string().min(1).default('UTC'),
        clawbackPayoutDate: z.enum(['same_rule_as_clearing', 'next_payout_day']).default('same_rule_as_clearing'),
        minimumUsd: networkUsd,
      })
      .strict(),
    rounding: z.literal('half_away_from_zero').default('half_away_from_zero'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const first = v.tiers[0];
    if (first && (first.minDistinctCustomers !== 0 || first.revenueOverUsd !== null)) {
      ctx.addIssue({ code: 'custom', path: ['tiers', 0], message: 'the first tier must always apply (minDistinctCustomers 0, revenueOverUsd null)' });
    }
    if (v.tiers.length > 1 && v.tiers.some((t) => t.id === null)) {
      ctx.addIssue({ code: 'custom', path: ['tiers'], message: 'tier id null is only allowed for a single-tier (flat) version' });
    }
    const ids = v.tiers.map((t) => t.id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['tiers'], message: 'tier ids must be unique' });
    if (!isValidZone(v.payout.timeZone)) {
      ctx.addIssue({ code: 'custom', path: ['payout', 'timeZone'], message: `unknown time zone ${v.payout.timeZone}` });
    }
  });

export const programFileSchema = z
  .object({
    program: z.string().min(1),
    name: z.string().optional(),
    versions: z.array(versionSchema).min(1),
  })
  .strict()
  .superRefine((p, ctx) => {
    const names = p.versions.map((v) => v.version);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['versions'], message: 'version names must be unique' });
    const starts = p.versions.map((v) => v.effectiveFrom.getTime());
    if (new Set(starts).size !== starts.length) ctx.addIssue({ code: 'custom', path: ['versions'], message: 'two versions share an effective date' });
  });

function isValidZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export type TierDefinition = z.output<typeof tierSchema>;
export type ProgramVersion = z.output<typeof versionSchema>;
export interface Program {
  program: string;
  name?: string | undefined;
  /** Sorted by effectiveFrom ascending. */
  versions: ProgramVersion[];
}

export function parseProgram(data: unknown): Program {
  const parsed = programFileSchema.parse(data);
  const versions = [...parsed.versions].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime());
  return { program: parsed.program, name: parsed.name, versions };
}

export function parseProgramYaml(text: string): Program {
  return parseProgram(parseYaml(text));
}

/** R11: the version in force at `t` (latest effectiveFrom <= t), or null before the first. */
export function versionAt(versions: readonly ProgramVersion[], t: Date): ProgramVersion | null {
  let found: ProgramVersion | null = null;
  for (const v of versions) {
    if (v.effectiveFrom.getTime() <= t.getTime() && (!found || v.effectiveFrom.getTime() > found.effectiveFrom.getTime())) found = v;
  }
  return found;
}

export function rateFor(tier: TierDefinition, first: boolean, interval: PlanInterval): string {
  return first ? tier.rates.first[interval] : tier.rates.later[interval];
}

export function minimumPayoutUsdMinor(version: ProgramVersion, network: Network): number {
  return version.payout.minimumUsd[network];
}
