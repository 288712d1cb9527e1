// The rules engine (R1–R11): pure and deterministic, no I/O.
//
// Scale: an affiliate's tier depends only on that affiliate's own payments, so the unit of work is
// one partner: computePartnerCommissions() takes the partner, its recruiter, its attributed customers
// and their billing events, and returns the partner's direct rows, their clawbacks, and the
// second-tier rows its payments earn the recruiter. The DB adapter iterates partners in batches
// (keyset on partner id), loads each batch's customers/events, computes, and upserts rows by `key`;
// memory is bounded by the largest partner, not by the tables. computeCommissions() is the same thing
// over in-memory arrays, for tests and small data.
import { byTimeThenId, clearingWithDisputes, disputeWindows, DISPUTE_KINDS, REFUND_KINDS, refundSteps } from './adjustments.ts';
import { clearedAtFor } from './dates.ts';
import { buildLines, type PaymentFacts } from './lines.ts';
import { createFxTable, usdValueOf, type FxTable } from './money.ts';
import { rateFor, versionAt, type ProgramVersion, type TierDefinition } from './program.ts';
import { affiliateExclusion, paymentExclusion, type Qualification } from './qualify.ts';
import { TierTracker, type CountableSale, type CountedSale, type TierResult } from './tiers.ts';
import type {
  Attribution,
  BillingEvent,
  ComputedCommission,
  Customer,
  FxRate,
  JsonValue,
  Network,
  Partner,
  PartnerAccount,
  Subscription,
} from './types.ts';

/** How many counted sales an explanation lists (totals always cover all of them). */
export const MAX_LISTED_COUNTED_SALES = 50;
/** What each entry of explanation.tier.countedSales holds, in order. */
export const COUNTED_SALES_COLUMNS = ['paymentEventId', 'customerId', 'usdMinor'];

export interface PartnerComputationInput {
  partner: Partner;
  /** The recruiter (second tier), if any, and its network accounts. */
  recruiter?: Partner | null;
  recruiterAccounts?: readonly PartnerAccount[];
  /** Resolved attributions of this partner: at most one per customer (see resolveAttributions). */
  attributions: readonly Attribution[];
  customers: readonly Customer[];
  subscriptions: readonly Subscription[];
  /** Billing events of the attributed customers; events after asOf are ignored. */
  events: readonly BillingEvent[];
  programVersions: readonly ProgramVersion[];
  asOf: Date;
  fx: FxTable;
  /**
   * Keys of rows already paid out (R8: never edited again). Per-partner batches must include the
   * keys of every row this call can return: the partner's direct/clawback rows and the recruiter's
   * second-tier rows on this partner's payments (query paid rows by payment event id).
   */
  paidCommissionKeys?: ReadonlySet<string> | readonly string[];
  /** customerId → other partners that also claimed the customer (flag multiple_attributions). */
  competingPartners?: ReadonlyMap<string, readonly string[]>;
  /**
   * Only return the rows of these payments (the adapter's append-only shortcut: payments that came
   * after the partner's whole known history cannot change the rows of earlier payments). Every
   * payment still feeds the tiers and each subscription's first qualified payment, so the rows
   * returned are exactly the ones a call without it returns for these payments.
   */
  emitOnly?: ReadonlySet<string>;
  /**
   * Sales (R4) of this partner whose payments are not in `events`: the adapter's stored tier facts
   * of the history before what it loaded. They only feed the tiers (merged in paid order with the
   * sales of the loaded payments), so with every sale of the tier windows of the returned payments
   * given one way or the other, the rows are those of a whole-history call.
   */
  priorSales?: readonly CountableSale[];
  /**
   * Rows are handed over one by one as they are built instead of being returned (commissions is
   * then empty): the adapter turns each into its write-ready form at once, so a large partner's
   * engine objects (explanations with their counted sales) never pile up.
   */
  onRow?: (row: ComputedCommission) => void;
}

/** A payment whose rows were returned, with what later tiers read from it (null: not a countable sale). */
export interface PricedPayment {
  paymentEventId: string;
  customerId: string;
  paidAt: Date;
  sale: CountableSale | null;
}

export interface UnmatchedEvent {
  eventId: string;
  reason: 'payment_not_found' | 'no_payment_reference';
}

export interface PartnerResult {
  commissions: ComputedCommission[];
  /** Refunds/disputes that point at no known payment: reported, never silently dropped. */
  unmatchedEvents: UnmatchedEvent[];
  /** computePartnerCommissions: the payments whose rows were returned (every known one without emitOnly), in paid order. */
  priced?: PricedPayment[];
}

export interface EngineInput {
  partners: readonly Partner[];
  partnerAccounts: readonly PartnerAccount[];
  customers: readonly Customer[];
  attributions: readonly Attribution[];
  subscriptions: readonly Subscription[];
  events: readonly BillingEvent[];
  programVersions: readonly ProgramVersion[];
  asOf: Date;
  fxRates?: readonly FxRate[];
  paidCommissionKeys?: ReadonlySet<string> | readonly string[];
}

export interface EngineResult extends PartnerResult {
  /** Attributions naming a partner that is not in the input. */
  unknownPartnerAttributions: Attribution[];
}

export interface ResolvedAttributions {
  byCustomer: Map<string, Attribution>;
  competing: Map<string, string[]>;
}

const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * R1: the network's attribution is authoritative. If several exist for a customer (two networks
 * disagree), the latest attributedAt wins (last click), ties broken by ids so the choice is stable.
 */
export function resolveAttributions(attributions: readonly Attribution[]): ResolvedAttributions {
  const groups = new Map<string, Attribution[]>();
  for (const a of attributions) {
    let g = groups.get(a.customerId);
    if (!g) groups.set(a.customerId, (g = []));
    g.push(a);
  }
  const byCustomer = new Map<string, Attribution>();
  const competing = new Map<string, string[]>();
  for (const [customerId, g] of groups) {
    const sorted = [...g].sort(
      (x, y) =>
        (y.attributedAt?.getTime() ?? 0) - (x.attributedAt?.getTime() ?? 0) ||
        cmpStr(x.partnerAccountId, y.partnerAccountId) ||
        cmpStr(x.partnerId, y.partnerId),
    );
    const winner = sorted[0]!;
    byCustomer.set(customerId, winner);
    const others = [...new Set(sorted.map((a) => a.partnerId).filter((p) => p !== winner.partnerId))].sort();
    if (others.length > 0) competing.set(customerId, others);
  }
  return { byCustomer, competing };
}

/** The recruiter's account for a second-tier row: same network, else ShareASale↔Awin, else first by id. */
function recruiterAccountFor(accounts: readonly PartnerAccount[], network: Network): PartnerAccount | null {
  const sorted = [...accounts].sort((a, b) => cmpStr(a.id, b.id));
  const sibling: Network | null = network === 'shareasale' ? 'awin' : network === 'awin' ? 'shareasale' : null;
  return sorted.find((a) => a.network === network) ?? sorted.find((a) => a.network === sibling) ?? sorted[0] ?? null;
}

interface PaymentWork {
  payment: BillingEvent;
  version: ProgramVersion | null;
  customer: Customer | undefined;
  subscription: Subscription | undefined;
  attribution: Attribution;
  qualification: Qualification;
  usd: ReturnType<typeof usdValueOf>;
  facts: PaymentFacts;
}

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/**
 * One counted sale as an explanation row. The tier tracker hands consecutive commissions the same
 * CountedSale objects, so their rows are made once and shared by every explanation that lists them.
 */
const saleRows = new WeakMap<CountedSale, JsonValue[]>();
function countedSaleRow(s: CountedSale): JsonValue[] {
  let row = saleRows.get(s);
  if (!row) saleRows.set(s, (row = [s.paymentEventId, s.customerId, s.usdMinor]));
  return row;
}

function tierExplanation(t: TierResult): JsonValue {
  return {
    id: t.tier.id,
    name: t.tier.name ?? t.tier.id,
    at: t.at.toISOString(),
    windowStart: t.windowStart.toISOString(),
    distinctCustomers: t.distinctCustomers,
    revenueUsdMinor: t.revenueUsdMinor,
    countedSalesTotal: t.countedSalesTotal,
    countedSalesListed: Math.min(t.countedSales.length, MAX_LISTED_COUNTED_SALES),
    // Rows, not objects: the list is most of a busy partner's explanation, and every commission row
    // carries one (100k world: 2.85 kB a direct row with objects; the compute spent a quarter of its
    // time writing them). Rows written before carry objects with these names.
    countedSalesColumns: COUNTED_SALES_COLUMNS,
    countedSales: t.countedSales.slice(0, MAX_LISTED_COUNTED_SALES).map(countedSaleRow),
  };
}

export function computePartnerCommissions(input: PartnerComputationInput): PartnerResult {
  const { partner, asOf } = input;
  const paidKeys: ReadonlySet<string> = input.paidCommissionKeys instanceof Set ? input.paidCommissionKeys : new Set(input.paidCommissionKeys ?? []);
  const attributionByCustomer = new Map<string, Attribution>();
  for (const a of [...input.attributions].sort((x, y) => cmpStr(x.partnerAccountId, y.partnerAccountId))) {
    if (a.partnerId === partner.id && !attributionByCustomer.has(a.customerId)) attributionByCustomer.set(a.customerId, a);
  }
  const customers = new Map(input.customers.map((c) => [c.id, c]));
  const subscriptions = new Map(input.subscriptions.map((s) => [s.id, s]));

  const known = input.events.filter((e) => e.occurredAt.getTime() <= asOf.getTime() && attributionByCustomer.has(e.customerId));
  const payments = known.filter((e) => e.kind === 'payment').sort(byTimeThenId);
  const paymentIds = new Set(payments.map((p) => p.id));
  const adjustmentsByPayment = new Map<string, BillingEvent[]>();
  const unmatchedEvents: UnmatchedEvent[] = [];
  for (const e of [...known].sort(byTimeThenId)) {
    if (e.kind === 'payment') continue;
    if (!e.paymentId) unmatchedEvents.push({ eventId: e.id, reason: 'no_payment_reference' });
    else if (!paymentIds.has(e.paymentId)) unmatchedEvents.push({ eventId: e.id, reason: 'payment_not_found' });
    else {
      let list = adjustmentsByPayment.get(e.paymentId);
      if (!list) adjustmentsByPayment.set(e.paymentId, (list = []));
      list.push(e);
    }
  }

  // Pass 1: facts of every payment that do not depend on tier (qualification, USD, clearing, refunds).
  const work: PaymentWork[] = [];
  for (const payment of payments) {
    const version = versionAt(input.programVersions, payment.occurredAt);
    const customer = customers.get(payment.customerId);
    const subscription = payment.subscriptionId ? subscriptions.get(payment.subscriptionId) : undefined;
    const attribution = attributionByCustomer.get(payment.customerId)!;
    const qualification: Qualification = version
      ? (() => {
          const q = paymentExclusion(payment, customer, version);
          return q.reason ? q : affiliateExclusion(partner, customer, version);
        })()
      : { reason: 'no_program_version', detail: {} };
    const usd = usdValueOf(payment, input.fx);
    const baseUsd = usd.ok ? usd.usdMinor : null;
    const adjustments = adjustmentsByPayment.get(payment.id) ?? [];
    const disputes = disputeWindows(adjustments.filter((e) => DISPUTE_KINDS.has(e.kind)));
    const normal = version ? clearedAtFor(payment.occurredAt, version.hold.days, version.payout.timeZone) : null;
    const clearing = normal ? clearingWithDisputes(normal, disputes) : { clearedAt: null, lostAtClearing: false };
    const clearedAt = clearing.clearedAt;
    const refunds = refundSteps(payment, baseUsd, adjustments.filter((e) => REFUND_KINDS.has(e.kind)));

    const flags: string[] = [];
    if (!customer) flags.push('customer_missing');
    if (disputes.some((d) => d.resolvedAt === null)) flags.push('dispute_open');
    if (normal && clearedAt === null) flags.push('held_by_dispute');
    if (input.competingPartners?.get(payment.customerId)?.length) flags.push('multiple_attributions');
    const cookieDays = version?.attribution.cookieDays ?? 30;
    if (attribution.clickAt && attribution.signupAt && attribution.signupAt.getTime() - attribution.clickAt.getTime() > cookieDays * 86_400_000) {
      flags.push('attribution_window_exceeded'); // R1: flag only, money unchanged
    }

    const emit = input.emitOnly === undefined || input.emitOnly.has(payment.id);
    const paymentExplanation: { [key: string]: JsonValue } = !emit ? {} : {
      ruleVersion: version?.version ?? null,
      payment: {
        id: payment.id,
        billingSystem: payment.billingSystem,
        documentId: payment.documentId,
        customerId: payment.customerId,
        subscriptionId: payment.subscriptionId ?? null,
        interval: payment.planInterval ?? subscription?.interval ?? null,
        paidAt: payment.occurredAt.toISOString(),
        baseMinor: payment.amountMinor,
        currency: payment.currency,
        baseUsdMinor: baseUsd,
        usdSource: usd.ok ? usd.source : null,
        fxRate: usd.ok ? usd.rate : null,
        fxRateDate: usd.ok ? usd.rateDate : null,
      },
      attribution: {
        partnerId: attribution.partnerId,
        partnerAccountId: attribution.partnerAccountId,
        network: attribution.network,
        clickAt: iso(attribution.clickAt),
        signupAt: iso(attribution.signupAt),
      },
      disputes: disputes.map((d) => ({ openedAt: d.openedAt.toISOString(), resolvedAt: iso(d.resolvedAt), resolution: d.resolution })),
    };
    work.push({
      payment,
      version,
      customer,
      subscription,
      attribution,
      qualification,
      usd,
      facts: { payment, version, baseUsdMinor: baseUsd, clearedAt, normalClearedAt: normal, lostAtClearing: clearing.lostAtClearing, refunds, asOf, paidKeys, paymentExplanation, flags },
    });
  }

  // Sales the tier calculation may count (R4): qualified with a known USD value.
  const saleOf = new Map<string, CountableSale>();
  for (const w of work) {
    if (w.qualification.reason !== null || !w.usd.ok) continue;
    saleOf.set(w.payment.id, {
      paymentEventId: w.payment.id,
      customerId: w.payment.customerId,
      paidAt: w.payment.occurredAt,
      clearedAt: w.facts.clearedAt,
      usdMinor: w.facts.baseUsdMinor!,
      refunds: w.facts.refunds.filter((r) => r.usdMinor > 0).map((r) => ({ at: r.event.occurredAt, usdMinor: r.usdMinor })),
    });
  }
  const sales: CountableSale[] = [...saleOf.values()];
  if (input.priorSales && input.priorSales.length > 0) {
    // A loaded payment's own facts win over a stored copy; the order is byTimeThenId's (paid time, then id).
    for (const p of input.priorSales) if (!paymentIds.has(p.paymentEventId)) sales.push(p);
    sales.sort((a, b) => a.paidAt.getTime() - b.paidAt.getTime() || cmpStr(a.paymentEventId, b.paymentEventId));
  }

  const tracker = new TierTracker(sales, MAX_LISTED_COUNTED_SALES);

  // First qualified payment of each subscription (R5); a trial never is, its full-price rebill is.
  // A payment lacking only its FX rate still takes the slot: that gap is data, not qualification,
  // so filling it later does not reprice the subscription's other payments.
  const firstOfSubscription = new Map<string, string>();
  // Tier that priced the first qualified payment (for the Decision on Referral-sold subscriptions).
  const firstTierOfSubscription = new Map<string, TierDefinition>();

  const out: ComputedCommission[] = [];
  const emitRows = (rows: readonly ComputedCommission[]): void => {
    if (input.onRow) for (const r of rows) input.onRow(r);
    else out.push(...rows);
  };
  const priced: PricedPayment[] = [];
  for (const w of work) {
    const { payment, version, qualification } = w;
    const subId = payment.subscriptionId ?? null;
    const isFirst = qualification.reason === null && subId !== null && !firstOfSubscription.has(subId);
    if (isFirst) firstOfSubscription.set(subId, payment.id);
    if (input.emitOnly !== undefined && !input.emitOnly.has(payment.id)) {
      // Not returned: only what later payments read from it (the tier its subscription was first sold at).
      if (isFirst && version) firstTierOfSubscription.set(subId, tracker.at(payment.occurredAt, version).tier);
      continue;
    }
    priced.push({ paymentEventId: payment.id, customerId: payment.customerId, paidAt: payment.occurredAt, sale: saleOf.get(payment.id) ?? null });

    // ---- direct row
    let exclusion = qualification.reason;
    let tierId: string | null = null;
    let rate = '0';
    const directExpl: { [key: string]: JsonValue } = {
      qualification: { qualified: qualification.reason === null, reason: qualification.reason, ...qualification.detail },
      firstQualifiedPaymentOfSubscription: isFirst,
    };
    if (version && exclusion === null) {
      const tier = tracker.at(payment.occurredAt, version);
      tierId = tier.tier.id;
      directExpl['tier'] = tierExplanation(tier);
      if (isFirst && subId) firstTierOfSubscription.set(subId, tier.tier);
      if (!w.usd.ok) exclusion = 'missing_fx_rate';
      else if (!w.subscription) exclusion = 'unknown_subscription';
      else {
        // R5: the plan this payment paid for; a later switch (monthly → annual) must not reprice it.
        const interval = payment.planInterval ?? w.subscription.interval;
        let pricingTier = tier.tier;
        const first = subId ? firstTierOfSubscription.get(subId) : undefined;
        if (!isFirst && !version.laterPaymentsUseCurrentTier && first && first.laterZeroReason !== null) {
          // Decision off: a subscription first sold at a zero-renewal tier stays at zero.
          pricingTier = first;
          directExpl['pricedAsTierOfFirstPayment'] = first.id;
        }
        rate = rateFor(pricingTier, isFirst, interval);
        if (!isFirst && pricingTier.laterZeroReason !== null && Number(rate) === 0) exclusion = pricingTier.laterZeroReason;
      }
    }
    emitRows(
      buildLines(w.facts, {
        kind: 'direct',
        partnerId: partner.id,
        partnerAccountId: w.attribution.partnerAccountId,
        network: w.attribution.network,
        tier: tierId,
        rate: exclusion === null ? rate : '0',
        exclusionReason: exclusion,
        flags: [],
        explanation: directExpl,
      }),
    );

    // ---- second-tier row (R6): the recruiter earns on every qualified payment of its recruit
    const recruiter = input.recruiter;
    if (!recruiter || recruiter.id === partner.id || partner.recruiterPartnerId !== recruiter.id) continue;
    if (version && version.secondTier === null) continue; // the version has no second tier at all
    let stExclusion = qualification.reason;
    let stDetail: { [key: string]: string } = { ...qualification.detail };
    if (stExclusion === null && version) {
      const q = affiliateExclusion(recruiter, w.customer, version);
      stExclusion = q.reason;
      stDetail = q.detail;
    }
    if (stExclusion === null && !w.usd.ok) stExclusion = 'missing_fx_rate';
    const account = recruiterAccountFor(input.recruiterAccounts ?? [], w.attribution.network);
    emitRows(
      buildLines(w.facts, {
        kind: 'second_tier',
        partnerId: recruiter.id,
        partnerAccountId: account?.id ?? null,
        network: account?.network ?? null,
        tier: null,
        rate: stExclusion === null && version?.secondTier ? version.secondTier.rate : '0',
        exclusionReason: stExclusion,
        flags: account ? [] : ['recruiter_has_no_account'],
        explanation: {
          recruitPartnerId: partner.id,
          qualification: { qualified: stExclusion === null, reason: stExclusion, ...stDetail },
        },
      }),
    );
  }
  out.sort((a, b) => cmpStr(a.key, b.key));
  unmatchedEvents.sort((a, b) => cmpStr(a.eventId, b.eventId));
  return { commissions: out, unmatchedEvents, priced };
}

/** All partners at once, from in-memory arrays (tests, small data). Rows sorted by key. */
export function computeCommissionsDetailed(input: EngineInput): EngineResult {
  const fx = createFxTable(input.fxRates ?? []);
  const paid: ReadonlySet<string> = input.paidCommissionKeys instanceof Set ? input.paidCommissionKeys : new Set(input.paidCommissionKeys ?? []);
  const partners = new Map(input.partners.map((p) => [p.id, p]));
  const { byCustomer, competing } = resolveAttributions(input.attributions);

  const attributionsByPartner = new Map<string, Attribution[]>();
  const unknownPartnerAttributions: Attribution[] = [];
  for (const a of byCustomer.values()) {
    if (!partners.has(a.partnerId)) {
      unknownPartnerAttributions.push(a);
      continue;
    }
    let list = attributionsByPartner.get(a.partnerId);
    if (!list) attributionsByPartner.set(a.partnerId, (list = []));
    list.push(a);
  }
  const group = <T,>(xs: readonly T[], k: (x: T) => string): Map<string, T[]> => {
    const m = new Map<string, T[]>();
    for (const x of xs) {
      const key = k(x);
      let l = m.get(key);
      if (!l) m.set(key, (l = []));
      l.push(x);
    }
    return m;
  };
  const eventsByCustomer = group(input.events, (e) => e.customerId);
  const subsByCustomer = group(input.subscriptions, (s) => s.customerId);
  const accountsByPartner = group(input.partnerAccounts, (a) => a.partnerId);
  const customers = new Map(input.customers.map((c) => [c.id, c]));

  const commissions: ComputedCommission[] = [];
  const unmatchedEvents: UnmatchedEvent[] = [];
  for (const partnerId of [...attributionsByPartner.keys()].sort()) {
    const partner = partners.get(partnerId)!;
    const attrs = attributionsByPartner.get(partnerId)!;
    const customerIds = attrs.map((a) => a.customerId);
    const recruiter = partner.recruiterPartnerId ? (partners.get(partner.recruiterPartnerId) ?? null) : null;
    const r = computePartnerCommissions({
      partner,
      recruiter,
      recruiterAccounts: recruiter ? (accountsByPartner.get(recruiter.id) ?? []) : [],
      attributions: attrs,
      customers: customerIds.flatMap((id) => {
        const c = customers.get(id);
        return c ? [c] : [];
      }),
      subscriptions: customerIds.flatMap((id) => subsByCustomer.get(id) ?? []),
      events: customerIds.flatMap((id) => eventsByCustomer.get(id) ?? []),
      programVersions: input.programVersions,
      asOf: input.asOf,
      fx,
      paidCommissionKeys: paid,
      competingPartners: competing,
    });
    commissions.push(...r.commissions);
    unmatchedEvents.push(...r.unmatchedEvents);
  }
  commissions.sort((a, b) => cmpStr(a.key, b.key));
  unmatchedEvents.sort((a, b) => cmpStr(a.eventId, b.eventId));
  unknownPartnerAttributions.sort((a, b) => cmpStr(a.customerId, b.customerId));
  return { commissions, unmatchedEvents, unknownPartnerAttributions };
}

/** computeCommissionsDetailed without the diagnostics. */
export function computeCommissions(input: EngineInput): ComputedCommission[] {
  return computeCommissionsDetailed(input).commissions;
}
