// R2: does a payment count as a qualified sale for a given affiliate?
import { matchingMailbox } from './email.ts';
import type { ProgramVersion } from './program.ts';
import type { BillingEvent, Customer, Partner } from './types.ts';

export interface Qualification {
  /** null = qualified. */
  reason: string | null;
  /** Why, for the explanation (e.g. which normalized email matched). */
  detail: { [key: string]: string };
}

const ok: Qualification = { reason: null, detail: {} };

/** Reasons that belong to the payment itself, whoever the affiliate is. */
export function paymentExclusion(payment: BillingEvent, customer: Customer | undefined, version: ProgramVersion): Qualification {
  const q = version.qualification;
  if (!payment.subscriptionId) return { reason: 'not_subscription', detail: {} };
  // Trial first: a $0 trial invoice is a trial, not merely a zero amount.
  if (q.excludeTrialCharges && payment.isTrialCharge === true) return { reason: 'trial_charge', detail: {} };
  if (payment.amountMinor === 0) return { reason: 'zero_amount', detail: {} };
  if (payment.amountMinor < 0) return { reason: 'negative_amount', detail: {} };
  if (q.excludeTestCustomers && customer?.isTest === true) return { reason: 'test_customer', detail: {} };
  return ok;
}

/** Reasons tied to the affiliate who would be paid: personal use and agency sub-accounts. */
export function affiliateExclusion(partner: Partner, customer: Customer | undefined, version: ProgramVersion): Qualification {
  const q = version.qualification;
  if (!customer) return ok;
  if (q.excludeSelfReferral) {
    const partnerEmails = [...(partner.email ? [partner.email] : []), ...(partner.emails ?? [])];
    const mailbox = partnerEmails.length > 0 ? matchingMailbox(partnerEmails, customer.emails, q.gmailLikeDomains) : null;
    if (mailbox) return { reason: 'self_referral', detail: { matchedEmail: mailbox } };
    const ids = new Set(partner.billingCustomerIds ?? []);
    const sharedId = customer.billingCustomerIds.find((id) => ids.has(id));
    if (sharedId !== undefined) return { reason: 'self_referral', detail: { matchedBillingCustomerId: sharedId } };
  }
  if (q.excludeAgencySubAccounts && customer.agencyOwnerPartnerId != null && customer.agencyOwnerPartnerId === partner.id) {
    return { reason: 'agency_sub_account', detail: { agencyOwnerPartnerId: partner.id } };
  }
  return ok;
}

/** Full R2 check for `partner`: payment reasons first, then affiliate reasons. */
export function qualify(payment: BillingEvent, customer: Customer | undefined, partner: Partner, version: ProgramVersion): Qualification {
  const p = paymentExclusion(payment, customer, version);
  return p.reason ? p : affiliateExclusion(partner, customer, version);
}
