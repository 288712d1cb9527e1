// A seeded generator of Kartra-like worlds of any size (≈ `size` payments): monthly and annual
// plans ($99–$499 a month, annual at ten months' price), a third on a $1 or free 14-day trial, 16
// account currencies with per-payment settlement FX, monthly churn, refunds (~4%, a third partial)
// and disputes (~0.6%) at realistic rates, PartnerStack / ShareASale / Awin affiliates with a
// power-law share of customers, a quarter of PartnerStack affiliates recruited by another (second
// tier), a few self-referrals and test customers, and ~3% of network-reported sales carrying an
// injected network error. Same seed, same size, same asOf → the same world.
import { DateTime } from 'luxon';
import { Decimal } from 'decimal.js';
import { buildWorld, type World } from './build.ts';
import { minorUnitExponent } from '../rules/money.ts';
import type { ScenarioInput, WorldNetwork } from './schema.ts';
import { parseScenario, type Scenario } from './schema.ts';
import { mulberry32 } from '../util/random.ts';

export { mulberry32 };


/** Account currencies with their share of customers and a USD-per-unit reference rate. */
export const CURRENCIES: Array<{ code: string; weight: number; usd: string }> = [
  { code: 'USD', weight: 52, usd: '1' },
  { code: 'EUR', weight: 10, usd: '1.0850' },
  { code: 'GBP', weight: 7, usd: '1.2700' },
  { code: 'CAD', weight: 5, usd: '0.7350' },
  { code: 'AUD', weight: 5, usd: '0.6600' },
  { code: 'NZD', weight: 2, usd: '0.6100' },
  { code: 'CHF', weight: 2, usd: '1.1300' },
  { code: 'SEK', weight: 2, usd: '0.0950' },
  { code: 'NOK', weight: 2, usd: '0.0930' },
  { code: 'DKK', weight: 2, usd: '0.1450' },
  { code: 'PLN', weight: 2, usd: '0.2500' },
  { code: 'JPY', weight: 3, usd: '0.006700' },
  { code: 'SGD', weight: 1, usd: '0.7400' },
  { code: 'BRL', weight: 2, usd: '0.1900' },
  { code: 'MXN', weight: 2, usd: '0.0540' },
  { code: 'INR', weight: 1, usd: '0.012000' },
];

const MONTHLY_USD = [9900, 19900, 29900, 49900];
const NAMES = ['Ava', 'Ben', 'Cleo', 'Dev', 'Eli', 'Faye', 'Gus', 'Hana', 'Ivo', 'Jade', 'Kai', 'Lena', 'Milo', 'Nora', 'Omar', 'Pia', 'Quin', 'Rosa', 'Sami', 'Tess', 'Uma', 'Vik', 'Wren', 'Xia', 'Yara', 'Zed'];
const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

export interface GenerateOptions {
  /** Approximate number of payments. */
  size: number;
  seed?: number;
  /** The world's "now": newest possible payment (default: now). */
  asOf?: Date;
  /** Months of history (default 14). */
  months?: number;
  /** Share of network-reported direct sales carrying an injected error (default 0.03). */
  errorRate?: number;
}

/** A price in the currency, rounded to a whole unit (a price list, not a conversion). */
function priceIn(usdMinor: number, cur: { code: string; usd: string }): number {
  const exp = minorUnitExponent(cur.code);
  const units = new D(usdMinor).dividedBy(100).dividedBy(cur.usd).toDecimalPlaces(0, D.ROUND_HALF_UP);
  return units.times(new D(10).pow(exp)).toNumber();
}

export function generateScenario(opts: GenerateOptions): Scenario {
  const rnd = mulberry32(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const weighted = <T extends { weight: number }>(xs: readonly T[]): T => {
    const total = xs.reduce((a, x) => a + x.weight, 0);
    let r = rnd() * total;
    for (const x of xs) if ((r -= x.weight) < 0) return x;
    return xs[xs.length - 1]!;
  };
  const asOf = DateTime.fromJSDate(opts.asOf ?? new Date(), { zone: 'UTC' }).startOf('day');
  const months = opts.months ?? 14;
  const start = asOf.minus({ months });
  const errorRate = opts.errorRate ?? 0.03;
  const size = Math.max(10, Math.floor(opts.size));
  const iso = (d: DateTime): string => d.toUTC().toISO({ suppressMilliseconds: true })!;

  // Affiliates: ~1 per 25 payments, at least 6.
  const nAff = Math.max(6, Math.round(size / 25));
  const affiliates: NonNullable<ScenarioInput['affiliates']> = [];
  let sasId = 400_000;
  let awinId = 800_000;
  for (let i = 0; i < nAff; i++) {
    const r = rnd();
    const network: WorldNetwork = i < 3 ? (['partnerstack', 'shareasale', 'awin'] as const)[i]! : r < 0.6 ? 'partnerstack' : r < 0.85 ? 'shareasale' : 'awin';
    const name = `${pick(NAMES)} ${pick(NAMES)}son`;
    const email = i % 3 === 0 ? `aff.${i}@gmail.com` : `affiliate${i}@partners.example.com`;
    const accounts: Partial<Record<WorldNetwork, string>> = {};
    if (network === 'partnerstack') accounts.partnerstack = `ps_aff_${i}`;
    else if (network === 'shareasale') accounts.shareasale = String(++sasId);
    else accounts.awin = String(++awinId);
    affiliates.push({ id: `aff${i}`, name, email, accounts, joinedAt: iso(start.minus({ days: 30 + Math.floor(rnd() * 300) })) });
  }
  // Second tier: a quarter of PartnerStack affiliates were recruited by an earlier PartnerStack one.
  const ps = affiliates.filter((a) => a.accounts.partnerstack);
  ps.forEach((a, i) => {
    if (i >= 2 && rnd() < 0.25) a.recruiter = ps[Math.floor(rnd() * Math.min(i, 5))]!.id;
  });
  // Power-law share of customers (a few super-affiliates).
  const weights = affiliates.map((_, i) => ({ i, weight: 1 / Math.pow(i + 1, 0.8) }));
  // weighted(weights) without walking all affiliates per customer (that was quadratic in the size):
  // running sums built in the same order as weighted's total, then a binary search for the first
  // affiliate whose running sum exceeds the roll. Same draws of rnd(), same picks.
  const cumulative: number[] = [];
  let running = 0;
  for (const w of weights) cumulative.push((running += w.weight));
  const pickAffiliate = (): number => {
    const r = rnd() * running;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };

  const customers: NonNullable<ScenarioInput['customers']> = [];
  const subscriptions: NonNullable<ScenarioInput['subscriptions']> = [];
  const refunds: NonNullable<ScenarioInput['refunds']> = [];
  const disputes: NonNullable<ScenarioInput['disputes']> = [];
  const errors: NonNullable<ScenarioInput['errors']> = [];
  const fx: Record<string, string> = {};
  for (const c of CURRENCIES) if (c.code !== 'USD') fx[c.code] = c.usd;

  let payments = 0;
  let n = 0;
  const spanDays = asOf.diff(start, 'days').days;
  const reported: Array<{ sub: string; cycle: number; network: WorldNetwork; affiliate: string; paidAt: DateTime; refundedFully: boolean; disputed: boolean }> = [];
  while (payments < size) {
    const ci = n++;
    const aff = affiliates[pickAffiliate()]!;
    const network = Object.keys(aff.accounts)[0] as WorldNetwork;
    const cur = weighted(CURRENCIES);
    const selfReferral = rnd() < 0.01;
    const test = !selfReferral && rnd() < 0.005;
    const created = start.plus({ days: Math.floor(rnd() * spanDays * 0.97), seconds: Math.floor(rnd() * 86_400) });
    const email = selfReferral ? aff.email.replace('@', '+kartra@') : `customer${ci}@${pick(['example.org', 'mail.example.net', 'gmail.com'])}`;
    const cid = `c${ci}`;
    customers.push({
      id: cid,
      email,
      name: `Customer ${ci}`,
      currency: cur.code,
      billing: rnd() < 0.75 ? 'stripe' : 'chargebee',
      referredBy: { affiliate: aff.id, network },
      test,
      createdAt: iso(created),
    });
    const annual = rnd() < 0.2;
    const monthlyUsd = pick(MONTHLY_USD);
    const priceMinor = priceIn(annual ? monthlyUsd * 10 : monthlyUsd, cur);
    const trialRoll = rnd();
    const trial = trialRoll < 0.2 ? { days: 14, chargeMinor: priceIn(100, cur) || 1 } : trialRoll < 0.33 ? { days: 14, chargeMinor: 0 } : undefined;
    // Cycles until churn (monthly ~7%/month; annual renews 70%) or asOf.
    const firstPaid = created.plus({ days: trial?.days ?? 0 });
    const maxCycles = Math.max(0, Math.floor(annual ? asOf.diff(firstPaid, 'years').years : asOf.diff(firstPaid, 'months').months) + 1);
    let cycles = 0;
    while (cycles < maxCycles) {
      cycles++;
      if (rnd() < (annual ? 0.3 : 0.07)) break;
    }
    const trialLost = trial && rnd() < 0.3; // a third of trials never convert
    if (trialLost) cycles = 0;
    const canceled = cycles < maxCycles || trialLost;
    const sub = `s${ci}`;
    const lastCycleAt = cycles === 0 ? created : firstPaid.plus(annual ? { years: cycles - 1 } : { months: cycles - 1 });
    subscriptions.push({
      id: sub,
      customer: cid,
      interval: annual ? 'year' : 'month',
      priceMinor,
      start: iso(created),
      ...(trial ? { trial } : {}),
      cycles,
      ...(canceled ? { canceledAt: iso(cycles === 0 ? created.plus({ days: Math.max(1, (trial?.days ?? 1) - 1) }) : lastCycleAt.plus({ days: 20 })) } : {}),
    });
    const paidCycles = cycles + (trial && trial.chargeMinor > 0 ? 1 : 0);
    payments += paidCycles;
    for (let k = 1; k <= cycles; k++) {
      const paidAt = firstPaid.plus(annual ? { years: k - 1 } : { months: k - 1 });
      if (paidAt > asOf) break;
      let refundedFully = false;
      const roll = rnd();
      if (roll < 0.04) {
        const at = paidAt.plus({ days: 1 + Math.floor(rnd() * 25) });
        if (at < asOf) {
          const partial = rnd() < 0.33;
          refunds.push({ subscription: sub, cycle: k, at: iso(at), ...(partial ? { amountMinor: Math.max(1, Math.floor(priceMinor / 2)) } : {}) });
          refundedFully = !partial;
        }
      } else if (roll < 0.046) {
        const opened = paidAt.plus({ days: 5 + Math.floor(rnd() * 30) });
        if (opened < asOf) {
          const o = rnd();
          const outcome = o < 0.4 ? 'won' : o < 0.9 ? 'lost' : 'open';
          disputes.push({ subscription: sub, cycle: k, openedAt: iso(opened), outcome, ...(outcome === 'open' ? {} : { closedAt: iso(opened.plus({ days: 20 + Math.floor(rnd() * 40) })) }) });
        }
      }
      if (!test && !selfReferral) reported.push({ sub, cycle: k, network, affiliate: aff.id, paidAt, refundedFully, disputed: roll >= 0.04 && roll < 0.046 });
    }
  }

  // Injected network errors: ~errorRate of reported direct sales, every kind at least once.
  const kinds = ['missing_commission', 'wrong_amount', 'duplicate', 'refunded_but_approved', 'wrong_partner'] as const;
  const want = Math.max(kinds.length, Math.round(reported.length * errorRate));
  const used = new Set<string>();
  // Old enough to be past the reconciliation grace period and clearly settled.
  // (asOf.diff(paidAt, 'days').days > 7, in UTC where every day is 86,400,000 ms.)
  const eligible = reported.filter((r) => asOf.toMillis() - r.paidAt.toMillis() > 7 * 86_400_000);
  // Errors that change what is owed go on a subscription's first qualified payment (cycle 1): the
  // rules always owe something there (a later payment at Referral tier owes nothing, so a missing or
  // wrong commission on it is no discrepancy at all). Wrong partner only on PartnerStack: on
  // ShareASale/Awin the sale itself attributes the customer (R1), so a wrong partner on the first
  // sale re-homes the customer rather than being a mismatch.
  const firstSales = eligible.filter((r) => r.cycle === 1 && !r.disputed);
  const fullyRefunded = firstSales.filter((r) => r.refundedFully);
  const others = firstSales.filter((r) => !r.refundedFully);
  const anySale = eligible.filter((r) => !r.refundedFully && !r.disputed);
  for (let i = 0; i < want; i++) {
    const kind = kinds[i % kinds.length]!;
    const pool = kind === 'refunded_but_approved' ? fullyRefunded : kind === 'wrong_partner' ? others.filter((r) => r.network === 'partnerstack') : kind === 'duplicate' ? anySale : others;
    let target: (typeof reported)[number] | undefined;
    for (let tries = 0; tries < 20 && pool.length > 0; tries++) {
      const t = pool[Math.floor(rnd() * pool.length)]!;
      if (!used.has(`${t.sub}:${t.cycle}`)) {
        target = t;
        break;
      }
    }
    if (!target) continue;
    const ref = { network: target.network, subscription: target.sub, cycle: target.cycle };
    if (kind === 'wrong_partner') {
      const alt = affiliates.find((a) => a.id !== target.affiliate && a.accounts[target.network] && a.recruiter !== target.affiliate && affiliates.find((x) => x.id === target.affiliate)?.recruiter !== a.id);
      if (!alt) continue;
      errors.push({ kind, ...ref, partner: alt.id });
    } else if (kind === 'wrong_amount') {
      const sign = rnd() < 0.5 ? -1 : 1;
      errors.push({ kind, ...ref, deltaMinor: sign * (500 + Math.floor(rnd() * 3000)) });
    } else errors.push({ kind, ...ref });
    used.add(`${target.sub}:${target.cycle}`);
  }

  return parseScenario(
    {
      version: 1,
      name: `generated-${size}-seed${opts.seed ?? 1}`,
      description: `Generated Kartra-like world: ~${size} payments, seed ${opts.seed ?? 1}, as of ${asOf.toISODate()}`,
      fx,
      fxJitter: 0.01,
      networks: { partnerstack: { directRate: '0.40', secondTierRate: '0.10' }, shareasale: { directRate: '0.40' }, awin: { directRate: '0.40' } },
      affiliates,
      customers,
      subscriptions,
      refunds,
      disputes,
      errors,
    } satisfies ScenarioInput,
    'generated scenario',
  );
}

/** generateScenario + buildWorld: the world with its injected errors. */
export function generateWorld(opts: GenerateOptions & { inject?: boolean }): World {
  const asOf = opts.asOf ?? new Date();
  return buildWorld(generateScenario({ ...opts, asOf }), { asOf, inject: opts.inject });
}
