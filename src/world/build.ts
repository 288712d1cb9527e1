// Expands a scenario into a World: dated payments with their refunds and disputes (the billing
// truth), and what each network reports by its own simple plan, with the scenario's errors injected.
// The world knows every discrepancy it injected (`world.injected`), in the terms reconciliation uses.
import { DateTime } from 'luxon';
import { Decimal } from 'decimal.js';
import { convertToUsdMinor, minorUnitExponent } from '../rules/money.ts';
import type { Affiliate, InjectedKind, NetworkPlan, Scenario, ScenarioCustomer, ScenarioSubscription, WorldNetwork } from './schema.ts';

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });
const roundRate = (amount: number, rate: string): number => new D(amount).times(rate).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();

export interface WorldRefund {
  id: string;
  at: Date;
  /** Amount returned to the customer (incl. its tax share), minor units. */
  grossMinor: number;
}

export interface WorldDispute {
  id: string;
  openedAt: Date;
  outcome: 'won' | 'lost' | 'open';
  closedAt: Date | null;
}

export interface WorldPayment {
  /** `<subscription>:<cycle>` */
  key: string;
  subscription: string;
  customer: string;
  cycle: number;
  billing: 'stripe' | 'chargebee';
  /** The billing document id: Stripe `in_…`, Chargebee `inv_…`. Networks reference it. */
  invoiceId: string;
  /** Invoice issued (period start). */
  issuedAt: Date;
  /** Paid (the billing event's time). */
  paidAt: Date;
  baseMinor: number;
  taxMinor: number;
  currency: string;
  /** Settlement rate, USD per unit. */
  rate: string;
  usdMinor: number;
  trial: boolean;
  refunds: WorldRefund[];
  dispute: WorldDispute | null;
}

export type ReportStatus = 'pending' | 'hold' | 'approved' | 'paid' | 'declined';

/** One commission as a network reports it. */
export interface NetworkReport {
  id: string;
  network: WorldNetwork;
  /** The account the network credits (external id) and the affiliate behind it. */
  account: string;
  affiliate: string;
  payment: string;
  invoiceId: string;
  kind: 'direct' | 'second_tier';
  amountMinor: number;
  currency: string;
  usdMinor: number;
  saleMinor: number;
  saleCurrency: string;
  status: ReportStatus;
  at: Date;
  injected?: InjectedKind;
}

export interface Injected {
  /** The discrepancy kind reconciliation must report. */
  kind: 'missing_in_network' | 'amount_mismatch' | 'duplicate_in_network' | 'status_mismatch' | 'partner_mismatch';
  /** The scenario's error kind. */
  error: InjectedKind;
  network: WorldNetwork;
  /** Affiliate id owed the commission. */
  partner: string;
  /** The affiliate's account on that network (external id). */
  account: string;
  /** Billing document id of the payment. */
  payment: string;
  /**
   * USD minor units of the error on the network's side: the omitted commission (missing), the
   * signed delta (wrong_amount), the duplicate's amount, the approved-but-refunded amount, the
   * misattributed amount (wrong_partner).
   */
  usdMinor: number;
  /** wrong_amount: the delta in the commission currency; wrong_partner: who was credited instead. */
  deltaMinor?: number;
  currency: string;
  reportedPartner?: string;
  reportedAccount?: string;
}

export interface World {
  scenario: Scenario;
  asOf: Date;
  affiliates: Map<string, Affiliate>;
  customers: Map<string, ScenarioCustomer>;
  subscriptions: Map<string, ScenarioSubscription>;
  payments: WorldPayment[];
  paymentsByKey: Map<string, WorldPayment>;
  reports: NetworkReport[];
  injected: Injected[];
  plans: Record<WorldNetwork, NetworkPlan & { commissionCurrency: 'USD' | 'payment' }>;
}

export const DEFAULT_COMMISSION_CURRENCY: Record<WorldNetwork, 'USD' | 'payment'> = { partnerstack: 'USD', shareasale: 'USD', awin: 'payment' };

export function invoiceIdOf(billing: 'stripe' | 'chargebee', sub: string, cycle: number): string {
  return billing === 'stripe' ? `in_${sub}_${cycle}` : `inv_${sub}_${cycle}`;
}

function rateFor(s: Scenario, sub: ScenarioSubscription, cur: string, cycle: number): string {
  if (cur === 'USD') return '1';
  const explicit = sub.fx?.[String(cycle)];
  if (explicit) return explicit;
  const base = s.fx[cur] ?? '1';
  if (!s.fxJitter) return base;
  // Deterministic per payment: a hash of the payment key picks a point in [-jitter, +jitter].
  const u = (numericId(`${sub.id}:${cycle}`) % 10_000) / 9_999;
  return new D(base).times(new D(1).plus(new D(s.fxJitter).times(u * 2 - 1))).toDecimalPlaces(8).toFixed();
}

/** The cycle's period start: trial end (or start) plus whole periods. */
function cycleTime(sub: ScenarioSubscription, cycle: number): Date {
  const start = DateTime.fromJSDate(sub.start, { zone: 'UTC' });
  if (cycle === 0) return sub.start;
  const first = sub.trial ? start.plus({ days: sub.trial.days }) : start;
  return first.plus(sub.interval === 'month' ? { months: cycle - 1 } : { years: cycle - 1 }).toJSDate();
}

export function expandPayments(s: Scenario, asOf: Date): WorldPayment[] {
  const customers = new Map(s.customers.map((c) => [c.id, c]));
  const out: WorldPayment[] = [];
  for (const sub of s.subscriptions) {
    const c = customers.get(sub.customer)!;
    const first = sub.trial && sub.trial.chargeMinor > 0 ? 0 : 1;
    for (let cycle = first; cycle <= sub.cycles; cycle++) {
      const issuedAt = cycleTime(sub, cycle);
      const paidAt = new Date(issuedAt.getTime() + 60_000);
      if (paidAt > asOf) break;
      if (sub.canceledAt && issuedAt >= sub.canceledAt) break;
      const trial = cycle === 0;
      const baseMinor = trial ? sub.trial!.chargeMinor : sub.priceMinor;
      const taxMinor = trial ? 0 : sub.taxMinor;
      const rate = rateFor(s, sub, c.currency, cycle);
      out.push({
        key: `${sub.id}:${cycle}`,
        subscription: sub.id,
        customer: c.id,
        cycle,
        billing: c.billing,
        invoiceId: invoiceIdOf(c.billing, sub.id, cycle),
        issuedAt,
        paidAt,
        baseMinor,
        taxMinor,
        currency: c.currency,
        rate,
        usdMinor: convertToUsdMinor(baseMinor, c.currency, rate),
        trial,
        refunds: [],
        dispute: null,
      });
    }
  }
  const byKey = new Map(out.map((p) => [p.key, p]));
  s.refunds.forEach((r, i) => {
    const p = byKey.get(`${r.subscription}:${r.cycle}`);
    if (!p || r.at > asOf) return;
    const gross = r.amountMinor ?? p.baseMinor + p.taxMinor;
    p.refunds.push({ id: `${p.billing === 'stripe' ? 're' : 'cn'}_${r.subscription}_${r.cycle}_${i}`, at: r.at, grossMinor: Math.min(gross, p.baseMinor + p.taxMinor - p.refunds.reduce((a, x) => a + x.grossMinor, 0)) });
  });
  s.disputes.forEach((d) => {
    const p = byKey.get(`${d.subscription}:${d.cycle}`);
    if (!p || d.openedAt > asOf) return;
    const closed = d.outcome === 'open' ? null : (d.closedAt ?? new Date(d.openedAt.getTime() + 21 * 86_400_000));
    p.dispute = { id: `dp_${d.subscription}_${d.cycle}`, openedAt: d.openedAt, outcome: closed && closed > asOf ? 'open' : d.outcome, closedAt: closed && closed <= asOf ? closed : null };
  });
  return out;
}

export function fullyRefunded(p: WorldPayment): boolean {
  return p.refunds.reduce((a, r) => a + r.grossMinor, 0) >= p.baseMinor + p.taxMinor;
}

/** The network's simple plan status for a sale of this age and billing history. */
function planStatus(p: WorldPayment, asOf: Date): ReportStatus {
  if (fullyRefunded(p) || (p.dispute?.outcome === 'lost')) return 'declined';
  if (p.dispute?.outcome === 'open') return 'hold';
  const ageDays = (asOf.getTime() - p.paidAt.getTime()) / 86_400_000;
  return ageDays < 30 ? 'pending' : ageDays < 75 ? 'approved' : 'paid';
}

/** Network report ids are numeric on ShareASale/Awin (stable hash of the key), strings on PartnerStack. */
export function numericId(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return 100_000_000 + ((h >>> 0) % 800_000_000);
}

export function buildWorld(scenario: Scenario, opts: { asOf?: Date; inject?: boolean } = {}): World {
  const asOf = opts.asOf ?? new Date();
  const affiliates = new Map(scenario.affiliates.map((a) => [a.id, a]));
  const customers = new Map(scenario.customers.map((c) => [c.id, c]));
  const subscriptions = new Map(scenario.subscriptions.map((x) => [x.id, x]));
  const payments = expandPayments(scenario, asOf);
  const paymentsByKey = new Map(payments.map((p) => [p.key, p]));
  const plans = Object.fromEntries(
    (['partnerstack', 'shareasale', 'awin'] as const).map((n) => [n, { ...scenario.networks[n], commissionCurrency: scenario.networks[n].commissionCurrency ?? DEFAULT_COMMISSION_CURRENCY[n] }]),
  ) as World['plans'];

  const reports: NetworkReport[] = [];
  const byPaymentDirect = new Map<string, NetworkReport>();
  for (const p of payments) {
    const c = customers.get(p.customer)!;
    const ref = c.referredBy;
    if (!ref) continue;
    const plan = plans[ref.network];
    if (p.trial && !plan.reportTrialCharges) continue;
    if (p.baseMinor <= 0) continue;
    const aff = affiliates.get(ref.affiliate)!;
    const status = planStatus(p, asOf);
    const inUsd = plan.commissionCurrency === 'USD';
    const make = (kind: 'direct' | 'second_tier', a: Affiliate, rate: string): NetworkReport => {
      const amountMinor = inUsd ? roundRate(p.usdMinor, rate) : roundRate(p.baseMinor, rate);
      return {
        id: `${ref.network === 'partnerstack' ? 'rew' : 'tx'}_${kind === 'direct' ? 'd' : 's'}_${p.subscription}_${p.cycle}`,
        network: ref.network,
        account: a.accounts[ref.network]!,
        affiliate: a.id,
        payment: p.key,
        invoiceId: p.invoiceId,
        kind,
        amountMinor,
        currency: inUsd ? 'USD' : p.currency,
        usdMinor: inUsd ? amountMinor : convertToUsdMinor(amountMinor, p.currency, p.rate),
        saleMinor: inUsd ? p.usdMinor : p.baseMinor,
        saleCurrency: inUsd ? 'USD' : p.currency,
        status,
        // Networks record the sale a little after billing (webhook / pixel delay).
        at: new Date(p.paidAt.getTime() + 5 * 60_000),
      };
    };
    const direct = make('direct', aff, plan.directRate);
    reports.push(direct);
    byPaymentDirect.set(p.key, direct);
    if (plan.secondTierRate && aff.recruiter) {
      const rec = affiliates.get(aff.recruiter)!;
      if (rec.accounts[ref.network]) reports.push(make('second_tier', rec, plan.secondTierRate));
    }
  }

  const injected: Injected[] = [];
  if (opts.inject !== false) {
    for (const e of scenario.errors) {
      const key = `${e.subscription}:${e.cycle}`;
      const p = paymentsByKey.get(key);
      const r = byPaymentDirect.get(key);
      if (!p || !r || r.network !== e.network) continue; // not reported by that network (or in the future): nothing to break
      const base = { error: e.kind, network: e.network, partner: r.affiliate, account: r.account, payment: p.invoiceId, currency: r.currency };
      switch (e.kind) {
        case 'missing_commission': {
          reports.splice(reports.indexOf(r), 1);
          injected.push({ ...base, kind: 'missing_in_network', usdMinor: r.usdMinor });
          break;
        }
        case 'wrong_amount': {
          const delta = e.deltaMinor!;
          r.amountMinor += delta;
          const deltaUsd = r.currency === 'USD' ? delta : convertToUsdMinor(delta, r.currency, p.rate);
          r.usdMinor += deltaUsd;
          r.injected = e.kind;
          injected.push({ ...base, kind: 'amount_mismatch', usdMinor: deltaUsd, deltaMinor: delta });
          break;
        }
        case 'duplicate': {
          const dup: NetworkReport = { ...r, id: `${r.id}_dup`, at: new Date(r.at.getTime() + 3_600_000), injected: e.kind };
          reports.push(dup);
          injected.push({ ...base, kind: 'duplicate_in_network', usdMinor: r.usdMinor });
          break;
        }
        case 'refunded_but_approved': {
          r.status = 'approved';
          r.injected = e.kind;
          injected.push({ ...base, kind: 'status_mismatch', usdMinor: r.usdMinor });
          break;
        }
        case 'wrong_partner': {
          const other = affiliates.get(e.partner!)!;
          r.account = other.accounts[e.network]!;
          r.affiliate = other.id;
          r.injected = e.kind;
          injected.push({ ...base, kind: 'partner_mismatch', usdMinor: r.usdMinor, reportedPartner: other.id, reportedAccount: r.account });
          break;
        }
      }
    }
  }
  return { scenario, asOf, affiliates, customers, subscriptions, payments, paymentsByKey, reports, injected, plans };
}

/** Minor units → decimal text in the currency's exponent ("12.30", "1230" for JPY). */
export function minorToDecimal(minor: number, currency: string): string {
  const exp = minorUnitExponent(currency);
  return new D(minor).dividedBy(new D(10).pow(exp)).toFixed(exp);
}
