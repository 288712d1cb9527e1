// Typed correction actions, per network. Payloads are plain JSON, and their field names are the ones
// the connectors' push.ts validate (connectors/partnerstack/push.ts, connectors/shareasale/push.ts;
// Awin's follows the batch-validation API: transactionId + status/amend values).
// Every payload sets a target state or carries a key the network dedupes on, so repeating an action
// with the same idempotency key is harmless — the basis of crash recovery (see executor.ts).
import type { Json } from '../sync/types.ts';

// ---- PartnerStack
/** POST /transactions: the sale billing collected but PartnerStack never recorded (key = billing document id). */
export interface PsCreateTransaction {
  key: string;
  customer_external_key: string;
  amount: number;
  currency: string;
  /** Epoch ms of the payment. */
  created_at?: number;
}
/** DELETE /transactions/{key}: a refunded / non-qualifying sale PartnerStack still counts. */
export interface PsDeleteTransaction {
  key: string;
}
/** POST /rewards: a positive or negative reward adjustment (delta, never 0) on a customer. */
export interface PsCreateReward {
  amount: number;
  currency?: string;
  target: { type: 'customer' | 'transaction'; key: string };
  reason?: string;
}
/** PATCH /customers/{key}: subscription-state / exclusion fields on the customer. */
export interface PsUpdateCustomer {
  customer_key: string;
  fields: Record<string, string | number | boolean | null>;
}

// ---- ShareASale (order number + order date identify the sale)
export interface SasEdit {
  orderNumber: string;
  orderDate: string;
  newCommissionMinor?: number;
  newAmountMinor?: number;
  comment?: string;
  currency?: string;
}
export interface SasVoid {
  orderNumber: string;
  orderDate: string;
  reason: string;
}

// ---- Awin (transaction validation)
export interface AwinAmend {
  transactionId: string;
  /** Absolute new commission (minor units), not a delta: repeating it changes nothing. */
  commissionAmountMinor: number;
  saleAmountMinor?: number;
  currency: string;
  reason: string;
}
export interface AwinDecline {
  transactionId: string;
  reason: string;
}
export interface AwinApprove {
  transactionId: string;
}

export type ActionSpec =
  | { network: 'partnerstack'; type: 'create_transaction'; payload: PsCreateTransaction }
  | { network: 'partnerstack'; type: 'delete_transaction'; payload: PsDeleteTransaction }
  | { network: 'partnerstack'; type: 'create_reward'; payload: PsCreateReward }
  | { network: 'partnerstack'; type: 'update_customer'; payload: PsUpdateCustomer }
  | { network: 'shareasale'; type: 'edit'; payload: SasEdit }
  | { network: 'shareasale'; type: 'void'; payload: SasVoid }
  | { network: 'awin'; type: 'amend'; payload: AwinAmend }
  | { network: 'awin'; type: 'decline'; payload: AwinDecline }
  | { network: 'awin'; type: 'approve'; payload: AwinApprove };

export type ActionType = ActionSpec['type'];

/** What justifies an action: the billing facts and the subscription state, plus the rule. */
export interface Justification {
  [key: string]: Json;
  /** Billing payment id (e.g. Stripe charge / invoice). */
  payment: string;
  /** The rule result in one line: commission key, amount, exclusion. */
  rule: string;
  /** e.g. "active since 2025-01-05" or "canceled 2025-01-20". */
  subscription_state: string;
}

/** A planned action, ready to record in `corrections` and hand to a connector. */
export interface PlannedAction {
  idempotencyKey: string;
  discrepancyId: number;
  discrepancyKind: string;
  connection: string;
  network: 'partnerstack' | 'shareasale' | 'awin';
  type: ActionType;
  payload: Record<string, Json>;
  justification: Justification;
  /** USD this action moves (for the per-run cap). */
  usdMinor: number;
}

export interface SkippedDiscrepancy {
  discrepancyId: number;
  kind: string;
  network: string | null;
  reason: string;
}
