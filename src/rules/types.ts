// Plain input/output shapes of the rules engine. The DB adapter builds the inputs from rows and
// stores the outputs; nothing here knows about storage, so the engine stays pure and testable.

export type Network = 'partnerstack' | 'shareasale' | 'awin';
export type BillingSystem = 'stripe' | 'chargebee';
export type PlanInterval = 'month' | 'year';

export interface Partner {
  id: string;
  email?: string | null;
  /** Further addresses of the same affiliate (e.g. each network account's email), for R2 personal use. */
  emails?: string[];
  billingCustomerIds?: string[];
  recruiterPartnerId?: string | null;
  /** null/undefined = the network does not report it (R9 only blocks on an explicit false). */
  taxInfoOnFile?: boolean | null;
  payoutMethodOnFile?: boolean | null;
}

export interface PartnerAccount {
  id: string;
  partnerId: string;
  network: Network;
  externalId: string;
}

export interface Customer {
  id: string;
  emails: string[];
  billingCustomerIds: string[];
  isTest: boolean;
  /** Set from billing metadata when the customer is an agency sub-account of this partner. */
  agencyOwnerPartnerId?: string | null;
}

export interface Attribution {
  customerId: string;
  partnerId: string;
  partnerAccountId: string;
  network: Network;
  attributedAt?: Date;
  clickAt?: Date | null;
  signupAt?: Date | null;
}

export interface Subscription {
  id: string;
  customerId: string;
  interval: PlanInterval;
}

export type BillingEventKind =
  | 'payment'
  | 'refund'
  | 'chargeback'
  | 'reversal'
  | 'dispute_opened'
  | 'dispute_won'
  | 'dispute_lost';

export interface BillingEvent {
  id: string;
  kind: BillingEventKind;
  billingSystem: BillingSystem;
  /** Invoice / refund / credit note id in the billing system. */
  documentId: string;
  customerId: string;
  subscriptionId?: string | null;
  /** For refunds, chargebacks, reversals and disputes: the id of the payment event they apply to. */
  paymentId?: string | null;
  /** paid_at for payments; time of the refund / dispute step otherwise. */
  occurredAt: Date;
  /** Excluding tax, after discounts, integer minor units. Refunds: the refunded amount, positive. */
  amountMinor: number;
  currency: string;
  /** USD value from the settlement (Stripe balance transaction, Chargebee exchange_rate). */
  usdMinor: number | null;
  /** Settlement rate, decimal string: USD per 1 unit of `currency`. */
  exchangeRate?: string | null;
  isTrialCharge?: boolean;
  /** Payments: the plan interval this payment paid for (billing_events.plan_interval), when known.
   *  R5 prices a first payment by the plan sold, not by the subscription's current plan. */
  planInterval?: PlanInterval | null;
}

/** Configured FX table row: USD per 1 unit of `currency`, valid from `date` (yyyy-mm-dd). */
export interface FxRate {
  currency: string;
  date: string;
  rate: string;
}

export type CommissionKind = 'direct' | 'second_tier' | 'clawback';
export type CommissionStatus = 'reserve' | 'due' | 'void' | 'paid';

export interface ComputedCommission {
  /** Deterministic natural key; the DB upserts on it so recomputing is idempotent. */
  key: string;
  kind: CommissionKind;
  clawbackOf?: 'direct' | 'second_tier';
  partnerId: string;
  partnerAccountId: string | null;
  network: Network | null;
  paymentEventId: string;
  /** The payment, or the refund / chargeback / reversal / lost dispute behind a clawback. */
  sourceEventId: string;
  /** Tier id from the program file ('referral' | 'tier1' | 'tier2' | 'tier3' for Kartra); null when untiered. */
  tier: string | null;
  rate: string;
  baseMinor: number;
  baseCurrency: string;
  baseUsdMinor: number | null;
  amountMinor: number;
  amountUsdMinor: number;
  status: CommissionStatus;
  /** The payment's paid time (also on clawbacks). */
  paidAt: Date;
  /**
   * When it clears (R7, disputes applied): in the past for due/paid rows, the expected date for
   * reserve rows; null while an open dispute holds it and on void rows. Clawbacks: the refund time.
   */
  clearedAt: Date | null;
  /** yyyy-mm-dd payout this row belongs to (R7; clawbacks: per payout.clawbackPayoutDate). */
  payoutDate: string | null;
  ruleVersion: string | null;
  exclusionReason: string | null;
  flags: string[];
  explanation: Explanation;
}

/** JSON-serializable; dates are ISO strings. */
export type Explanation = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
