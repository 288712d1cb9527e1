// Plain in-memory shapes reconciliation works on. The run module (run.ts) loads them from the
// canonical tables; match.ts and classify.ts are pure functions over them.

export const DISCREPANCY_KINDS = [
  'missing_in_network',
  'unexpected_in_network',
  'amount_mismatch',
  'status_mismatch',
  'partner_mismatch',
  'duplicate_in_network',
  'attribution_window_exceeded',
] as const;
export type DiscrepancyKind = (typeof DISCREPANCY_KINDS)[number];

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A commission as a network reported it (network_commissions). */
export interface NetworkRow {
  id: number;
  connection: string;
  network: string;
  externalId: string;
  partnerAccountId: number | null;
  partnerExternalId: string | null;
  customerId: number | null;
  customerExternalKey: string | null;
  transactionKey: string | null;
  orderRef: string | null;
  kindHint: 'direct' | 'second_tier' | null;
  amountMinor: number;
  currency: string;
  amountUsdMinor: number | null;
  saleAmountMinor: number | null;
  saleCurrency: string | null;
  status: 'pending' | 'hold' | 'approved' | 'scheduled' | 'paid' | 'declined' | 'deleted';
  occurredAt: Date;
  clickAt: Date | null;
  description: string | null;
}

/** Billing facts of one payment (billing_events kind=payment) with what was taken back since. */
export interface BillingFacts {
  id: number;
  connection: string;
  externalId: string;
  documentId: string;
  paymentExternalId: string | null;
  customerId: number | null;
  subscriptionId: number | null;
  occurredAt: Date;
  amountMinor: number;
  currency: string;
  amountUsdMinor: number | null;
  /** Refunds + chargebacks + reversals + lost disputes against this payment (minor units, positive). */
  takenBackMinor: number;
  takenBackUsdMinor: number;
  takenBackKinds: string[];
  classification: string | null;
  billingReason: string | null;
  /** When the subscription started (sign-up), for the attribution-window check. */
  signupAt: Date | null;
}

/** A commission the program rules computed (computed_commissions, kind direct|second_tier). */
export interface ExpectedRow {
  key: string;
  kind: 'direct' | 'second_tier';
  partnerId: number;
  partnerAccountId: number | null;
  network: string | null;
  amountMinor: number;
  currency: string;
  amountUsdMinor: number | null;
  status: 'reserve' | 'due' | 'void' | 'paid';
  exclusionReason: string | null;
  /** Clawbacks booked against this commission (USD minor, negative or zero). */
  clawbackUsdMinor: number;
  /**
   * The row's content_hash as the compute stored it (it covers every computed column and the
   * explanation), or md5 of the explanation for a row written without one: for the row signature
   * only. A discrepancy names its commission instead of copying the explanation (migration 015), so
   * reconcile never loads it, but a re-explained row must still be re-evaluated. md5 of the jsonb text
   * cost the server ~35 µs a row (detoast + jsonb output: ~40 s of a 1M full reconcile).
   */
  contentSig: string;
  billing: BillingFacts;
}

export interface Tolerance {
  absMinor: number;
  relative: number;
}

/** One discrepancy as classified; persisted by run.ts under its fingerprint. */
export interface Finding {
  fingerprint: string;
  kind: DiscrepancyKind;
  severity: Severity;
  network: string;
  connection: string | null;
  partnerId: number | null;
  partnerAccountId: number | null;
  billingEventId: number | null;
  networkCommissionId: number | null;
  computedCommissionKey: string | null;
  /** The period (yyyy-mm) that owns the finding: the payment's month, else the network record's. */
  period: string;
  expectedMinor: number | null;
  reportedMinor: number | null;
  currency: string | null;
  usdAtStakeMinor: number;
  detail: { [key: string]: JsonValue };
}
