// Inputs to the canonical writers. Connectors map API records to these; writers upsert them on
// natural keys. Money is integer minor units + ISO currency; times are Date.
import type { BillingSystem, Network } from '../config/schema.ts';

export interface PartnerAccountInput {
  connection: string;
  network: Network;
  externalId: string;
  /** Canonical partner identity when the connector knows it; else identity links, email, or network:id. */
  partnerKey?: string | null;
  name?: string | null;
  email?: string | null;
  groupKey?: string | null;
  status?: string | null;
  recruiterExternalId?: string | null;
  taxInfoOnFile?: boolean | null;
  payoutMethodOnFile?: boolean | null;
  joinedAt?: Date | null;
  sourceUpdatedAt?: Date | null;
  deleted?: boolean;
}

export interface IdentityRef {
  system: string;
  connection: string;
  externalId: string;
}

export interface CustomerInput {
  /** This system's identity of the customer (e.g. stripe cus_…, partnerstack customer key). */
  identity: IdentityRef;
  /** The company's own customer key shared across systems (Stripe metadata.customer_key …). */
  customerKey?: string | null;
  /** Other identities the record reveals (PartnerStack provider_key = Stripe customer id). */
  otherIdentities?: IdentityRef[];
  email?: string | null;
  name?: string | null;
  isTest?: boolean | null;
  agencyOwnerRef?: string | null;
}

export interface AttributionInput {
  connection: string;
  network: Network;
  sourceRef: string;
  customerId: number;
  partnerAccountId: number;
  clickAt?: Date | null;
  signupAt?: Date | null;
  attributedAt?: Date | null;
  deleted?: boolean;
}

export interface SubscriptionInput {
  connection: string;
  billingSystem: BillingSystem;
  externalId: string;
  customerId: number | null;
  planInterval: 'month' | 'year' | null;
  planRef?: string | null;
  status: string;
  currency?: string | null;
  trialStart?: Date | null;
  trialEnd?: Date | null;
  startedAt?: Date | null;
  canceledAt?: Date | null;
  sourceUpdatedAt?: Date | null;
  metadata?: Record<string, unknown>;
  /** Known state transitions (status, from) in addition to the current status at sourceUpdatedAt. */
  states?: Array<{ status: string; validFrom: Date; source: string }>;
}

export type BillingEventKind = 'payment' | 'refund' | 'chargeback' | 'reversal' | 'dispute_opened' | 'dispute_won' | 'dispute_lost';

export interface BillingEventInput {
  connection: string;
  billingSystem: BillingSystem;
  kind: BillingEventKind;
  externalId: string;
  documentId: string;
  customerId: number | null;
  /** Subscription by external id on the same connection. */
  subscriptionExternalId?: string | null;
  /** For refunds/disputes/reversals: the payment's external id on the same connection. */
  paymentExternalId?: string | null;
  occurredAt: Date;
  amountMinor: number;
  grossMinor?: number | null;
  taxMinor?: number | null;
  currency: string;
  amountUsdMinor?: number | null;
  exchangeRate?: string | null;
  fxSource?: 'settlement' | 'rate_table' | 'identity' | null;
  settlementMinor?: number | null;
  settlementCurrency?: string | null;
  /** R2 classification: qualified | trial | zero | non_subscription | … */
  classification?: string | null;
  billingReason?: string | null;
  planInterval?: 'month' | 'year' | null;
  status?: string | null;
  metadata?: Record<string, unknown>;
  deleted?: boolean;
}

export type NetworkCommissionStatus = 'pending' | 'hold' | 'approved' | 'scheduled' | 'paid' | 'declined' | 'deleted';

export interface NetworkCommissionInput {
  connection: string;
  network: Network;
  externalId: string;
  partnerAccountId: number | null;
  partnerExternalId?: string | null;
  customerId?: number | null;
  customerExternalKey?: string | null;
  transactionKey?: string | null;
  orderRef?: string | null;
  kindHint?: 'direct' | 'second_tier' | null;
  amountMinor: number;
  currency: string;
  amountUsdMinor?: number | null;
  saleAmountMinor?: number | null;
  saleCurrency?: string | null;
  status: NetworkCommissionStatus;
  rawStatus?: string | null;
  occurredAt: Date;
  clickAt?: Date | null;
  offerKey?: string | null;
  triggerKey?: string | null;
  invoiceStatus?: string | null;
  description?: string | null;
  metadata?: Record<string, unknown>;
}

export interface NetworkTransactionInput {
  connection: string;
  network: Network;
  externalId: string;
  customerExternalKey?: string | null;
  customerId?: number | null;
  partnerAccountId?: number | null;
  amountMinor: number;
  currency: string;
  amountUsdMinor?: number | null;
  occurredAt: Date;
  metadata?: Record<string, unknown>;
}
