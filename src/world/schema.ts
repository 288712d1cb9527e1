// The scenario format: a whole affiliate program's world in one YAML/JSON document — affiliates and
// their network accounts, referred customers, subscriptions with dated payments, refunds, disputes,
// each network's own (simpler) commission plan, and the network errors to inject. The billing side
// is the truth; networks report what their plan says, plus the injected errors. Documented in
// docs/scenario.md; validated here (zod) so a typo fails loudly with its path.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { formatZodIssues } from '../util/zod-format.ts';
import { resolveShippedPath } from '../util/paths.ts';

export const WORLD_NETWORKS = ['partnerstack', 'shareasale', 'awin'] as const;
export type WorldNetwork = (typeof WORLD_NETWORKS)[number];
export const INJECTED_KINDS = ['missing_commission', 'wrong_amount', 'duplicate', 'refunded_but_approved', 'wrong_partner'] as const;
export type InjectedKind = (typeof INJECTED_KINDS)[number];

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'expected letters, digits, _ or - (used inside API ids)');
const rate = z.string().regex(/^\d+(\.\d+)?$/, 'expected a decimal string such as "0.40" (never a float)');
const currency = z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code such as USD');
const minor = z.number().int();
/** ISO instant or date (UTC midnight). */
const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((s) => new Date(s.length === 10 ? `${s}T00:00:00Z` : s));

export const networkPlanSchema = z.strictObject({
  /** Direct commission the network computes on every reported sale (its own plan). */
  directRate: rate.default('0.40'),
  /** Second tier the network pays the recruiter (PartnerStack only; null = not reported). */
  secondTierRate: rate.nullable().default(null),
  /** Whether the network also commissions $1 trial charges (default: no). */
  reportTrialCharges: z.boolean().default(false),
  /** Commission currency: USD, or `payment` for the payment's own currency (Awin). Default per network. */
  commissionCurrency: z.enum(['USD', 'payment']).optional(),
});
export type NetworkPlan = z.infer<typeof networkPlanSchema>;

export const affiliateSchema = z.strictObject({
  id,
  name: z.string().min(1),
  email: z.email(),
  /** network → the affiliate's account id there (PartnerStack partner_key, ShareASale/Awin numeric id). */
  accounts: z.partialRecord(z.enum(WORLD_NETWORKS), z.string().min(1)).refine((a) => Object.keys(a).length > 0, 'an affiliate needs at least one network account'),
  /** Affiliate id of the recruiter (second tier, R6). */
  recruiter: id.optional(),
  /** ShareASale → Awin migration: this affiliate's Awin id is the same person as its ShareASale id. */
  joinedAt: instant.optional(),
});

export const customerSchema = z.strictObject({
  id,
  email: z.email(),
  name: z.string().optional(),
  currency: currency.default('USD'),
  billing: z.enum(['stripe', 'chargebee']).default('stripe'),
  /** The network and affiliate that referred this customer (R1: the network's attribution). */
  referredBy: z.strictObject({ affiliate: id, network: z.enum(WORLD_NETWORKS) }).optional(),
  test: z.boolean().default(false),
  createdAt: instant,
});

export const subscriptionSchema = z.strictObject({
  id,
  customer: id,
  interval: z.enum(['month', 'year']),
  /** Price per period excluding tax, in minor units of the customer's currency. */
  priceMinor: minor.positive(),
  /** Tax on top of the price (billing excludes it from the base, R3). */
  taxMinor: minor.nonnegative().default(0),
  start: instant,
  /** Optional trial: `chargeMinor` 0 = free trial (no invoice), >0 = a paid trial charge ($1). */
  trial: z.strictObject({ days: z.number().int().positive(), chargeMinor: minor.nonnegative() }).optional(),
  /** Paid periods after the trial (cycle 1 = first full-price payment). */
  cycles: z.number().int().nonnegative(),
  canceledAt: instant.optional(),
  /** Settlement rate per cycle (USD per unit); default the scenario's fx table. */
  fx: z.record(z.string(), rate).optional(),
});

const paymentRef = { subscription: id, cycle: z.number().int().nonnegative() };

export const refundSchema = z.strictObject({ ...paymentRef, at: instant, amountMinor: minor.positive().optional() });
export const disputeSchema = z.strictObject({ ...paymentRef, openedAt: instant, outcome: z.enum(['won', 'lost', 'open']), closedAt: instant.optional() });

export const errorSchema = z.strictObject({
  kind: z.enum(INJECTED_KINDS),
  network: z.enum(WORLD_NETWORKS),
  ...paymentRef,
  /** wrong_amount: added to the commission the plan gives (minor units of the commission currency). */
  deltaMinor: minor.optional(),
  /** wrong_partner: the affiliate the network credits instead. */
  partner: id.optional(),
});

export const scenarioSchema = z
  .strictObject({
    version: z.literal(1).default(1),
    name: z.string().default('scenario'),
    description: z.string().optional(),
    /** Settlement FX: USD per 1 unit, per currency (USD is always 1). */
    fx: z.record(currency, rate).default({}),
    /** Settlement rates vary per payment by up to ± this fraction around \`fx\` (deterministic per payment; 0 = exact). */
    fxJitter: z.number().min(0).max(0.2).default(0),
    networks: z
      .strictObject({ partnerstack: networkPlanSchema.prefault({ secondTierRate: '0.10' }), shareasale: networkPlanSchema.prefault({}), awin: networkPlanSchema.prefault({}) })
      .prefault({}),
    affiliates: z.array(affiliateSchema).min(1),
    customers: z.array(customerSchema).default([]),
    subscriptions: z.array(subscriptionSchema).default([]),
    refunds: z.array(refundSchema).default([]),
    disputes: z.array(disputeSchema).default([]),
    errors: z.array(errorSchema).default([]),
  })
  .superRefine((s, ctx) => {
    const aff = new Map(s.affiliates.map((a) => [a.id, a]));
    const cust = new Map(s.customers.map((c) => [c.id, c]));
    const subs = new Map(s.subscriptions.map((x) => [x.id, x]));
    const dup = (list: Array<{ id: string }>, path: string): void => {
      const seen = new Set<string>();
      list.forEach((x, i) => {
        if (seen.has(x.id)) ctx.addIssue({ code: 'custom', path: [path, i, 'id'], message: `duplicate id "${x.id}"` });
        seen.add(x.id);
      });
    };
    dup(s.affiliates, 'affiliates');
    dup(s.customers, 'customers');
    dup(s.subscriptions, 'subscriptions');
    s.affiliates.forEach((a, i) => {
      if (a.recruiter && !aff.has(a.recruiter)) ctx.addIssue({ code: 'custom', path: ['affiliates', i, 'recruiter'], message: `unknown affiliate "${a.recruiter}"` });
      if (a.recruiter === a.id) ctx.addIssue({ code: 'custom', path: ['affiliates', i, 'recruiter'], message: 'an affiliate cannot recruit itself' });
      for (const [n, ext] of Object.entries(a.accounts)) {
        if (n !== 'partnerstack' && !/^\d+$/.test(ext)) ctx.addIssue({ code: 'custom', path: ['affiliates', i, 'accounts', n], message: `${n} account ids are numeric` });
      }
    });
    s.customers.forEach((c, i) => {
      const r = c.referredBy;
      if (!r) return;
      const a = aff.get(r.affiliate);
      if (!a) ctx.addIssue({ code: 'custom', path: ['customers', i, 'referredBy', 'affiliate'], message: `unknown affiliate "${r.affiliate}"` });
      else if (!a.accounts[r.network]) ctx.addIssue({ code: 'custom', path: ['customers', i, 'referredBy', 'network'], message: `affiliate "${a.id}" has no ${r.network} account` });
      if (c.currency !== 'USD' && !s.fx[c.currency]) ctx.addIssue({ code: 'custom', path: ['customers', i, 'currency'], message: `no fx rate for ${c.currency} (add fx.${c.currency})` });
    });
    s.subscriptions.forEach((x, i) => {
      if (!cust.has(x.customer)) ctx.addIssue({ code: 'custom', path: ['subscriptions', i, 'customer'], message: `unknown customer "${x.customer}"` });
    });
    const checkRef = (list: Array<{ subscription: string; cycle: number }>, path: string): void => {
      list.forEach((r, i) => {
        const sub = subs.get(r.subscription);
        if (!sub) return ctx.addIssue({ code: 'custom', path: [path, i, 'subscription'], message: `unknown subscription "${r.subscription}"` });
        const hasTrialCharge = !!sub.trial && sub.trial.chargeMinor > 0;
        if (r.cycle > sub.cycles || (r.cycle === 0 && !hasTrialCharge)) ctx.addIssue({ code: 'custom', path: [path, i, 'cycle'], message: `subscription "${sub.id}" has no paid cycle ${r.cycle}` });
      });
    };
    checkRef(s.refunds, 'refunds');
    checkRef(s.disputes, 'disputes');
    checkRef(s.errors, 'errors');
    s.errors.forEach((e, i) => {
      if (e.kind === 'wrong_amount' && !e.deltaMinor) ctx.addIssue({ code: 'custom', path: ['errors', i, 'deltaMinor'], message: 'wrong_amount needs a non-zero deltaMinor' });
      if (e.kind === 'wrong_partner') {
        const p = e.partner ? aff.get(e.partner) : undefined;
        if (!p) ctx.addIssue({ code: 'custom', path: ['errors', i, 'partner'], message: 'wrong_partner needs the affiliate the network credits instead' });
        else if (!p.accounts[e.network]) ctx.addIssue({ code: 'custom', path: ['errors', i, 'partner'], message: `affiliate "${p.id}" has no ${e.network} account` });
      }
      if (e.kind === 'refunded_but_approved' && !s.refunds.some((r) => r.subscription === e.subscription && r.cycle === e.cycle)) {
        ctx.addIssue({ code: 'custom', path: ['errors', i], message: 'refunded_but_approved needs a full refund of that payment in `refunds`' });
      }
    });
  });

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;
export type Affiliate = Scenario['affiliates'][number];
export type ScenarioCustomer = Scenario['customers'][number];
export type ScenarioSubscription = Scenario['subscriptions'][number];
export type ScenarioError = Scenario['errors'][number];

export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) throw new UserError(`Invalid ${source}:\n${formatZodIssues(r.error)}`);
  return r.data;
}

export function readScenarioFile(file: string): Scenario {
  let text: string;
  try {
    // A path in the working directory first, else a scenario shipped with the package.
    text = readFileSync(resolveShippedPath(file), 'utf8');
  } catch (err) {
    throw new UserError(`--scenario: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new UserError(`--scenario: ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return parseScenario(raw, `scenario ${file}`);
}
