// Builders for hand-worked engine scenarios.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseProgramYaml, type Program, type ProgramVersion } from '../../src/rules/program.ts';
import { computeCommissions, type EngineInput } from '../../src/rules/engine.ts';
import type { Attribution, BillingEvent, ComputedCommission, Customer, Partner, PartnerAccount, Subscription } from '../../src/rules/types.ts';

const kartraPath = fileURLToPath(new URL('../../config/programs/kartra.yaml', import.meta.url));
export const kartra: Program = parseProgramYaml(readFileSync(kartraPath, 'utf8'));
/** The current tier program only (no flat version), for tests about tiers. */
export const tiersOnly: ProgramVersion[] = kartra.versions.filter((v) => v.version === 'kartra-tiers-2024');

export const d = (s: string): Date => new Date(s.length === 10 ? `${s}T12:00:00Z` : s);

export class Scenario {
  partners: Partner[] = [];
  accounts: PartnerAccount[] = [];
  customers: Customer[] = [];
  attributions: Attribution[] = [];
  subscriptions: Subscription[] = [];
  events: BillingEvent[] = [];
  private seq = 0;

  partner(id: string, extra: Partial<Partner> = {}, network: PartnerAccount['network'] = 'partnerstack'): this {
    this.partners.push({ id, email: `${id}@example.com`, ...extra });
    this.accounts.push({ id: `acct-${id}`, partnerId: id, network, externalId: `ext-${id}` });
    return this;
  }

  /** A customer attributed to `partnerId`, with one subscription `sub-<id>`. */
  customer(id: string, partnerId: string, interval: 'month' | 'year' = 'month', extra: Partial<Customer> = {}): this {
    this.customers.push({ id, emails: [`${id}@cust.example`], billingCustomerIds: [`cus_${id}`], isTest: false, ...extra });
    const acct = this.accounts.find((a) => a.partnerId === partnerId)!;
    this.attributions.push({ customerId: id, partnerId, partnerAccountId: acct.id, network: acct.network });
    this.subscriptions.push({ id: `sub-${id}`, customerId: id, interval });
    return this;
  }

  /** A USD payment of `cents` on the customer's subscription. */
  pay(id: string, customerId: string, at: string, cents: number, extra: Partial<BillingEvent> = {}): this {
    this.events.push({
      id,
      kind: 'payment',
      billingSystem: 'stripe',
      documentId: `in_${id}`,
      customerId,
      subscriptionId: `sub-${customerId}`,
      occurredAt: d(at),
      amountMinor: cents,
      currency: 'USD',
      usdMinor: cents,
      ...extra,
    });
    return this;
  }

  adjust(id: string, kind: BillingEvent['kind'], paymentId: string, at: string, cents: number, extra: Partial<BillingEvent> = {}): this {
    const p = this.events.find((e) => e.id === paymentId)!;
    this.events.push({
      id,
      kind,
      billingSystem: p.billingSystem,
      documentId: `re_${id}`,
      customerId: p.customerId,
      subscriptionId: p.subscriptionId ?? null,
      paymentId,
      occurredAt: d(at),
      amountMinor: cents,
      currency: p.currency,
      usdMinor: null,
      ...extra,
    });
    return this;
  }

  /** Filler: `n` cleared USD payments from distinct customers to lift a partner's tier. */
  sales(partnerId: string, at: string, centsEach: number[]): this {
    for (const cents of centsEach) {
      const c = `fill${++this.seq}`;
      this.customer(c, partnerId).pay(`p-${c}`, c, at, cents);
    }
    return this;
  }

  input(asOf: string, versions: ProgramVersion[] = tiersOnly, extra: Partial<EngineInput> = {}): EngineInput {
    return {
      partners: this.partners,
      partnerAccounts: this.accounts,
      customers: this.customers,
      attributions: this.attributions,
      subscriptions: this.subscriptions,
      events: this.events,
      programVersions: versions,
      asOf: d(asOf),
      ...extra,
    };
  }

  compute(asOf: string, versions: ProgramVersion[] = tiersOnly, extra: Partial<EngineInput> = {}): ComputedCommission[] {
    return computeCommissions(this.input(asOf, versions, extra));
  }
}

export function row(rows: ComputedCommission[], key: string): ComputedCommission {
  const r = rows.find((x) => x.key === key);
  if (!r) throw new Error(`no row ${key}; have ${rows.map((x) => x.key).join(', ')}`);
  return r;
}
