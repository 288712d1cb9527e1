// Builds small worlds directly on canonical rows (no connectors, no rules engine): partners and
// their accounts, customers, billing payments/refunds, computed and network commissions.
import type { Knex } from 'knex';

export interface World {
  db: Knex;
  partner(key: string, opts?: { recruiterId?: number; email?: string }): Promise<number>;
  account(partnerId: number, connection: string, network: 'partnerstack' | 'shareasale' | 'awin', externalId: string): Promise<number>;
  customer(key: string, opts?: { isTest?: boolean }): Promise<number>;
  subscription(customerId: number, externalId: string, opts?: { status?: string; startedAt?: string; canceledAt?: string }): Promise<number>;
  payment(p: { id: string; invoice?: string; customerId: number | null; subscriptionId?: number; at: string; amountMinor: number; currency?: string; usdMinor?: number }): Promise<number>;
  takeBack(p: { kind?: 'refund' | 'chargeback'; id: string; paymentId: number; at: string; amountMinor: number; usdMinor?: number; customerId?: number }): Promise<number>;
  computed(c: { key: string; kind?: 'direct' | 'second_tier' | 'clawback'; partnerId: number; accountId: number | null; network: string | null; paymentId: number; amountMinor: number; usdMinor?: number; currency?: string; status?: 'reserve' | 'due' | 'void' | 'paid'; exclusion?: string | null; at: string; clawbackOf?: 'direct' | 'second_tier'; sourceId?: number }): Promise<number>;
  network(n: { id: string; connection: string; network: 'partnerstack' | 'shareasale' | 'awin'; accountId: number | null; customerId?: number | null; tx?: string | null; orderRef?: string | null; kind?: 'direct' | 'second_tier' | null; amountMinor: number; currency?: string; usdMinor?: number | null; saleMinor?: number | null; status?: string; at: string; clickAt?: string; description?: string }): Promise<number>;
}

export function world(db: Knex): World {
  const id = (rows: unknown): number => Number((rows as Array<{ id: number }>)[0]!.id);
  return {
    db,
    partner: async (key, opts = {}) => id(await db('partners').insert({ partner_key: key, name: key, email: opts.email ?? `${key}@example.com`, email_normalized: opts.email ?? `${key}@example.com`, recruiter_partner_id: opts.recruiterId ?? null }).returning('id')),
    account: async (partnerId, connection, network, externalId) => id(await db('partner_accounts').insert({ partner_id: partnerId, connection, network, external_id: externalId }).returning('id')),
    customer: async (key, opts = {}) => id(await db('customers').insert({ customer_key: key, email: `${key}@cust.example`, email_normalized: `${key}@cust.example`, is_test: opts.isTest ?? false }).returning('id')),
    subscription: async (customerId, externalId, opts = {}) =>
      id(
        await db('subscriptions')
          .insert({ connection: 'stripe', billing_system: 'stripe', external_id: externalId, customer_id: customerId, plan_interval: 'month', status: opts.status ?? 'active', currency: 'USD', started_at: opts.startedAt ?? null, canceled_at: opts.canceledAt ?? null })
          .returning('id'),
      ),
    payment: async (p) =>
      id(
        await db('billing_events')
          .insert({
            connection: 'stripe',
            billing_system: 'stripe',
            kind: 'payment',
            external_id: p.id,
            document_id: p.invoice ?? `in_${p.id}`,
            customer_id: p.customerId,
            subscription_id: p.subscriptionId ?? null,
            occurred_at: p.at,
            amount_minor: p.amountMinor,
            currency: p.currency ?? 'USD',
            amount_usd_minor: p.usdMinor ?? p.amountMinor,
            fx_source: 'identity',
          })
          .returning('id'),
      ),
    takeBack: async (p) =>
      id(
        await db('billing_events')
          .insert({ connection: 'stripe', billing_system: 'stripe', kind: p.kind ?? 'refund', external_id: p.id, document_id: p.id, customer_id: p.customerId ?? null, payment_event_id: p.paymentId, occurred_at: p.at, amount_minor: p.amountMinor, currency: 'USD', amount_usd_minor: p.usdMinor ?? p.amountMinor })
          .returning('id'),
      ),
    computed: async (c) =>
      id(
        await db('computed_commissions')
          .insert({
            commission_key: c.key,
            kind: c.kind ?? 'direct',
            clawback_of: c.clawbackOf ?? null,
            partner_id: c.partnerId,
            partner_account_id: c.accountId,
            network: c.network,
            payment_event_id: c.paymentId,
            source_event_id: c.sourceId ?? c.paymentId,
            tier: 'tier1',
            rate: c.exclusion ? '0' : '0.2',
            base_minor: 0,
            base_currency: c.currency ?? 'USD',
            amount_minor: c.amountMinor,
            amount_usd_minor: c.usdMinor ?? c.amountMinor,
            status: c.status ?? (c.exclusion ? 'void' : 'reserve'),
            paid_at: c.at,
            rule_version: 'v1',
            exclusion_reason: c.exclusion ?? null,
            explanation: JSON.stringify({ note: `test ${c.key}` }),
            as_of: c.at,
          })
          .returning('id'),
      ),
    network: async (n) =>
      id(
        await db('network_commissions')
          .insert({
            connection: n.connection,
            network: n.network,
            external_id: n.id,
            partner_account_id: n.accountId,
            partner_external_id: n.accountId ? `ext-${n.accountId}` : null,
            customer_id: n.customerId ?? null,
            customer_external_key: n.customerId ? `ck-${n.customerId}` : null,
            transaction_key: n.tx ?? null,
            order_ref: n.orderRef ?? null,
            kind_hint: n.kind ?? null,
            amount_minor: n.amountMinor,
            currency: n.currency ?? 'USD',
            amount_usd_minor: n.usdMinor === undefined ? n.amountMinor : n.usdMinor,
            sale_amount_minor: n.saleMinor ?? null,
            sale_currency: n.saleMinor ? (n.currency ?? 'USD') : null,
            status: n.status ?? 'approved',
            occurred_at: n.at,
            click_at: n.clickAt ?? null,
            description: n.description ?? null,
          })
          .returning('id'),
      ),
  };
}

/**
 * The standard world: one of each discrepancy kind in 2025-01, plus clean matches.
 * Partners A (tier1, recruited by R), B, C (Awin). PartnerStack connection "ps", Awin "awin".
 */
export async function standardWorld(db: Knex) {
  const w = world(db);
  const R = await w.partner('recruiter');
  const A = await w.partner('alice', { recruiterId: R });
  const B = await w.partner('bob');
  const C = await w.partner('carol');
  const accR = await w.account(R, 'ps', 'partnerstack', 'ps-r');
  const accA = await w.account(A, 'ps', 'partnerstack', 'ps-a');
  const accB = await w.account(B, 'ps', 'partnerstack', 'ps-b');
  const accC = await w.account(C, 'awin', 'awin', 'aw-c');
  const cust: number[] = [];
  for (let i = 1; i <= 11; i++) cust.push(await w.customer(`c${i}`));
  const c = (i: number): number => cust[i - 1]!;
  const sub1 = await w.subscription(c(1), 'sub_1', { startedAt: '2025-01-05T10:00:00Z' });
  const sub5 = await w.subscription(c(5), 'sub_5', { status: 'canceled', startedAt: '2025-01-18T10:00:00Z', canceledAt: '2025-01-20T10:00:00Z' });

  // 1. clean: $100.00 paid; direct 20% = 2000 (by invoice), second tier 10% = 1000 (customer + time).
  const p1 = await w.payment({ id: 'ch_1', invoice: 'in_1', customerId: c(1), subscriptionId: sub1, at: '2025-01-05T10:00:00Z', amountMinor: 10000 });
  await w.computed({ key: 'cc-1-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p1, amountMinor: 2000, at: '2025-01-05T10:00:00Z' });
  await w.computed({ key: 'cc-1-s', kind: 'second_tier', partnerId: R, accountId: accR, network: 'partnerstack', paymentId: p1, amountMinor: 1000, at: '2025-01-05T10:00:00Z' });
  await w.network({ id: 'rw-1', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(1), tx: 'in_1', kind: 'direct', amountMinor: 2000, at: '2025-01-05T10:05:00Z' });
  await w.network({ id: 'rw-1s', connection: 'ps', network: 'partnerstack', accountId: accR, customerId: c(1), kind: 'second_tier', amountMinor: 1000, at: '2025-01-05T11:00:00Z' });

  // 2. missing: $200.00 → 20% = 4000 owed, nothing reported.
  const p2 = await w.payment({ id: 'ch_2', invoice: 'in_2', customerId: c(2), at: '2025-01-10T10:00:00Z', amountMinor: 20000 });
  await w.computed({ key: 'cc-2-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p2, amountMinor: 4000, at: '2025-01-10T10:00:00Z' });

  // 3. trial: $1 trial charge excluded (0 owed) but the network approved 40 cents.
  const p3 = await w.payment({ id: 'ch_3', invoice: 'in_3', customerId: c(3), at: '2025-01-12T10:00:00Z', amountMinor: 100 });
  await w.computed({ key: 'cc-3-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p3, amountMinor: 0, exclusion: 'trial_charge', at: '2025-01-12T10:00:00Z' });
  await w.network({ id: 'rw-3', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(3), tx: 'in_3', amountMinor: 40, at: '2025-01-12T10:01:00Z' });

  // 4. amount: $150.00 at 20% = 3000 owed; network paid 40% = 6000 → 3000 over.
  const p4 = await w.payment({ id: 'ch_4', invoice: 'in_4', customerId: c(4), at: '2025-01-15T10:00:00Z', amountMinor: 15000 });
  await w.computed({ key: 'cc-4-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p4, amountMinor: 3000, at: '2025-01-15T10:00:00Z' });
  await w.network({ id: 'rw-4', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(4), tx: 'in_4', amountMinor: 6000, at: '2025-01-15T10:01:00Z' });

  // 5. refunded in full two days later: commission void; network still approved 2000.
  const p5 = await w.payment({ id: 'ch_5', invoice: 'in_5', customerId: c(5), subscriptionId: sub5, at: '2025-01-18T10:00:00Z', amountMinor: 10000 });
  await w.takeBack({ id: 're_5', paymentId: p5, at: '2025-01-20T10:00:00Z', amountMinor: 10000, customerId: c(5) });
  await w.computed({ key: 'cc-5-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p5, amountMinor: 0, status: 'void', at: '2025-01-18T10:00:00Z' });
  await w.network({ id: 'rw-5', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(5), tx: 'in_5', amountMinor: 2000, at: '2025-01-18T10:01:00Z' });

  // 6. declined what is owed: $50.00 → 1000.
  const p6 = await w.payment({ id: 'ch_6', invoice: 'in_6', customerId: c(6), at: '2025-01-20T10:00:00Z', amountMinor: 5000 });
  await w.computed({ key: 'cc-6-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p6, amountMinor: 1000, at: '2025-01-20T10:00:00Z' });
  await w.network({ id: 'rw-6', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(6), tx: 'in_6', amountMinor: 1000, status: 'declined', at: '2025-01-20T10:01:00Z' });

  // 7. partner mismatch: owed to A (1600 = 20% of $80.00), network credits B.
  const p7 = await w.payment({ id: 'ch_7', invoice: 'in_7', customerId: c(7), at: '2025-01-22T10:00:00Z', amountMinor: 8000 });
  await w.computed({ key: 'cc-7-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p7, amountMinor: 1600, at: '2025-01-22T10:00:00Z' });
  await w.network({ id: 'rw-7', connection: 'ps', network: 'partnerstack', accountId: accB, customerId: c(7), tx: 'in_7', amountMinor: 1600, at: '2025-01-22T10:01:00Z' });

  // 8. duplicate: two rewards for the same invoice, 1200 each (20% of $60.00).
  const p8 = await w.payment({ id: 'ch_8', invoice: 'in_8', customerId: c(8), at: '2025-01-24T10:00:00Z', amountMinor: 6000 });
  await w.computed({ key: 'cc-8-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p8, amountMinor: 1200, at: '2025-01-24T10:00:00Z' });
  await w.network({ id: 'rw-8', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(8), tx: 'in_8', amountMinor: 1200, at: '2025-01-24T10:01:00Z' });
  await w.network({ id: 'rw-8b', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(8), tx: 'in_8', amountMinor: 1200, at: '2025-01-24T10:02:00Z' });

  // 9. Awin, clean amount (2000 = 20% of $100.00) by order reference, but clicked 40 days before sign-up.
  const p9 = await w.payment({ id: 'ch_9', invoice: 'in_9', customerId: c(9), at: '2025-01-26T10:00:00Z', amountMinor: 10000 });
  await w.computed({ key: 'cc-9-d', partnerId: C, accountId: accC, network: 'awin', paymentId: p9, amountMinor: 2000, at: '2025-01-26T10:00:00Z' });
  await w.network({ id: 'aw-9', connection: 'awin', network: 'awin', accountId: accC, orderRef: 'in_9', amountMinor: 2000, at: '2025-01-26T10:00:00Z', clickAt: '2024-12-17T10:00:00Z' });

  // 10. a reward for an invoice billing never saw: 500.
  await w.network({ id: 'rw-10', connection: 'ps', network: 'partnerstack', accountId: accA, tx: 'in_unknown', amountMinor: 500, at: '2025-01-27T10:00:00Z' });

  // 11. self-referral: excluded (0 owed); network pending 2000.
  const p11 = await w.payment({ id: 'ch_11', invoice: 'in_11', customerId: c(11), at: '2025-01-28T10:00:00Z', amountMinor: 10000 });
  await w.computed({ key: 'cc-11-d', partnerId: A, accountId: accA, network: 'partnerstack', paymentId: p11, amountMinor: 0, exclusion: 'self_referral', at: '2025-01-28T10:00:00Z' });
  await w.network({ id: 'rw-11', connection: 'ps', network: 'partnerstack', accountId: accA, customerId: c(11), amountMinor: 2000, status: 'pending', at: '2025-01-28T12:00:00Z' });

  return { w, partners: { R, A, B, C }, accounts: { accR, accA, accB, accC }, customers: cust, payments: { p1, p2, p3, p4, p5, p6, p7, p8, p9, p11 }, subs: { sub1, sub5 } };
}
