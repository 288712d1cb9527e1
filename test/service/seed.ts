// A small canonical world for the service and dashboard tests, written straight into the tables.
// Figures (USD cents):
//   Jan 2025, partnerstack (Alice): payment 10000 × 20% = owed 2000; network reported 2500
//            → amount_mismatch, 500 at stake (2500 − 2000).
//   Feb 2025, partnerstack (Alice): payment 20000 × 20% = owed 4000, refund 5000 → collected 15000;
//            clawback −1000 (4000 × 5000/20000) → owed 4000 − 1000 = 3000; network reported nothing
//            → missing_in_network, 3000 at stake.
//   Feb 2025, awin (Bob): payment 5000 × 10% = owed 500; network reported 800
//            → amount_mismatch 300 at stake (800 − 500), already ignored.
import type { Knex } from 'knex';
import { configSchema, type Config } from '../../src/config/schema.ts';

/** Service config for tests: tokens from VIEWER_TOKEN / OPERATOR_TOKEN, one connection per webhook source. */
export function testConfig(extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    timezone: 'UTC',
    server: { tokens: [{ env: 'VIEWER_TOKEN', role: 'viewer' }, { env: 'OPERATOR_TOKEN', role: 'operator' }], bodyLimitBytes: 4096 },
    connections: [
      { name: 'ps', type: 'partnerstack', credentials: { webhookToken: 'PS_WEBHOOK_TOKEN' } },
      { name: 'stripe', type: 'stripe', baseUrl: 'http://127.0.0.1:9', credentials: { apiKey: 'STRIPE_API_KEY', webhookSecret: 'STRIPE_WEBHOOK_SECRET' } },
      { name: 'cb', type: 'chargebee', baseUrl: 'http://127.0.0.1:9', credentials: { apiKey: 'CB_API_KEY', webhookUsername: 'CB_WH_USER', webhookPassword: 'CB_WH_PASS' }, options: { site: 'test' } },
      { name: 'awin', type: 'awin' },
    ],
    ...extra,
  });
}

export interface Seeded {
  alice: number;
  bob: number;
  discrepancies: { janMismatch: number; febMissing: number; awinIgnored: number };
}

async function one<T = number>(q: Promise<Array<{ id: T }>>): Promise<T> {
  const rows = await q;
  return rows[0]!.id;
}

export async function seedWorld(db: Knex): Promise<Seeded> {
  await db('connections').insert([
    { name: 'ps', type: 'partnerstack' },
    { name: 'stripe', type: 'stripe' },
    { name: 'awin', type: 'awin' },
  ]);
  const alice = await one(db('partners').insert({ partner_key: 'alice@example.com', name: 'Alice Able', email: 'alice@example.com', email_normalized: 'alice@example.com' }).returning('id'));
  const bob = await one(db('partners').insert({ partner_key: 'bob@example.com', name: 'Bob Baker', email: 'bob@example.com', email_normalized: 'bob@example.com' }).returning('id'));
  const aliceAcct = await one(db('partner_accounts').insert({ partner_id: alice, connection: 'ps', network: 'partnerstack', external_id: 'part_alice', status: 'active' }).returning('id'));
  const bobAcct = await one(db('partner_accounts').insert({ partner_id: bob, connection: 'awin', network: 'awin', external_id: '777', status: 'active' }).returning('id'));
  const cust1 = await one(db('customers').insert({ customer_key: 'cust-1', name: 'Customer One', email: 'c1@example.com' }).returning('id'));
  const cust2 = await one(db('customers').insert({ customer_key: 'cust-2', name: 'Customer Two', email: 'c2@example.com' }).returning('id'));

  const pay = (external: string, customer: number, at: string, amount: number) =>
    one(db('billing_events').insert({ connection: 'stripe', billing_system: 'stripe', kind: 'payment', external_id: external, document_id: external, customer_id: customer, occurred_at: at, amount_minor: amount, currency: 'USD', amount_usd_minor: amount, fx_source: 'identity', plan_interval: 'month', status: 'paid' }).returning('id'));
  const payJan = await pay('in_jan', cust1, '2025-01-10T12:00:00Z', 10000);
  const payFeb = await pay('in_feb', cust1, '2025-02-10T12:00:00Z', 20000);
  const payAwin = await pay('in_awin', cust2, '2025-02-15T12:00:00Z', 5000);
  const refund = await one(db('billing_events').insert({ connection: 'stripe', billing_system: 'stripe', kind: 'refund', external_id: 're_1', document_id: 'in_feb', customer_id: cust1, payment_event_id: payFeb, payment_external_id: 'in_feb', occurred_at: '2025-02-20T12:00:00Z', amount_minor: 5000, currency: 'USD', amount_usd_minor: 5000, fx_source: 'identity' }).returning('id'));

  const cc = (key: string, o: { kind?: string; clawbackOf?: string; partner: number; account: number; network: string; payment: number; source?: number; tier: string | null; rate: string; base: number; amount: number; paidAt: string }) =>
    db('computed_commissions').insert({
      commission_key: key, kind: o.kind ?? 'direct', clawback_of: o.clawbackOf ?? null, partner_id: o.partner, partner_account_id: o.account, network: o.network,
      payment_event_id: o.payment, source_event_id: o.source ?? o.payment, tier: o.tier, rate: o.rate, base_minor: o.base, base_currency: 'USD', base_usd_minor: o.base,
      amount_minor: o.amount, amount_usd_minor: o.amount, status: 'due', paid_at: o.paidAt, cleared_at: null, payout_date: '2025-04-15', rule_version: 'kartra-2025',
      explanation: JSON.stringify({ formula: `${o.base} × ${o.rate} = ${o.amount} USD`, tier: { id: o.tier, at: o.paidAt, distinctCustomers: 3, revenueUsdMinor: o.base, windowStart: '2024-12-01', countedSalesTotal: 3 } }),
      as_of: '2025-03-01T00:00:00Z',
    });
  await cc('direct:in_jan:alice', { partner: alice, account: aliceAcct, network: 'partnerstack', payment: payJan, tier: 'tier1', rate: '0.20000000', base: 10000, amount: 2000, paidAt: '2025-01-10T12:00:00Z' });
  await cc('direct:in_feb:alice', { partner: alice, account: aliceAcct, network: 'partnerstack', payment: payFeb, tier: 'tier2', rate: '0.20000000', base: 20000, amount: 4000, paidAt: '2025-02-10T12:00:00Z' });
  await cc('clawback:re_1:alice', { kind: 'clawback', clawbackOf: 'direct', partner: alice, account: aliceAcct, network: 'partnerstack', payment: payFeb, source: refund, tier: 'tier2', rate: '0.20000000', base: 20000, amount: -1000, paidAt: '2025-02-10T12:00:00Z' });
  await cc('direct:in_awin:bob', { partner: bob, account: bobAcct, network: 'awin', payment: payAwin, tier: null, rate: '0.10000000', base: 5000, amount: 500, paidAt: '2025-02-15T12:00:00Z' });

  const ncJan = await one(db('network_commissions').insert({ connection: 'ps', network: 'partnerstack', external_id: 'rew_jan', partner_account_id: aliceAcct, partner_external_id: 'part_alice', customer_id: cust1, transaction_key: 'in_jan', amount_minor: 2500, currency: 'USD', amount_usd_minor: 2500, sale_amount_minor: 10000, sale_currency: 'USD', status: 'approved', raw_status: 'approved', occurred_at: '2025-01-10T13:00:00Z' }).returning('id'));
  const ncAwin = await one(db('network_commissions').insert({ connection: 'awin', network: 'awin', external_id: 'tx_awin', partner_account_id: bobAcct, partner_external_id: '777', customer_id: cust2, order_ref: 'in_awin', amount_minor: 800, currency: 'USD', amount_usd_minor: 800, status: 'pending', raw_status: 'pending', occurred_at: '2025-02-15T13:00:00Z' }).returning('id'));

  const disc = (o: Record<string, unknown>) => one(db('discrepancies').insert({ currency: 'USD', detail: JSON.stringify({ note: 'seeded' }), ...o }).returning('id'));
  const janMismatch = await disc({ fingerprint: 'fp-jan', kind: 'amount_mismatch', severity: 'medium', network: 'partnerstack', connection: 'ps', partner_id: alice, partner_account_id: aliceAcct, billing_event_id: payJan, network_commission_id: ncJan, computed_commission_key: 'direct:in_jan:alice', period: '2025-01', expected_minor: 2000, reported_minor: 2500, usd_at_stake_minor: 500, status: 'open' });
  const febMissing = await disc({ fingerprint: 'fp-feb', kind: 'missing_in_network', severity: 'high', network: 'partnerstack', connection: 'ps', partner_id: alice, partner_account_id: aliceAcct, billing_event_id: payFeb, computed_commission_key: 'direct:in_feb:alice', period: '2025-02', expected_minor: 3000, reported_minor: 0, usd_at_stake_minor: 3000, status: 'open' });
  const awinIgnored = await disc({ fingerprint: 'fp-awin', kind: 'amount_mismatch', severity: 'low', network: 'awin', connection: 'awin', partner_id: bob, partner_account_id: bobAcct, billing_event_id: payAwin, network_commission_id: ncAwin, computed_commission_key: 'direct:in_awin:bob', period: '2025-02', expected_minor: 500, reported_minor: 800, usd_at_stake_minor: 300, status: 'ignored', reason: 'known promo', decided_by: 'seed', decided_at: '2025-03-01T00:00:00Z' });

  await db('corrections').insert({ idempotency_key: 'corr-1', discrepancy_id: janMismatch, connection: 'ps', network: 'partnerstack', action_type: 'reward_adjustment', payload: JSON.stringify({ amount: -500 }), usd_minor: 500, status: 'failed', attempts: 1, error: 'HTTP 422 from network' });
  await db('payouts').insert({ partner_id: alice, network: 'partnerstack', payout_date: '2025-04-15', balance_usd_minor: 5000, payable_usd_minor: 5000, minimum_usd_minor: 5000, status: 'payable' });
  await db('sync_runs').insert([
    { connection: 'ps', status: 'succeeded', started_at: '2025-03-01T00:00:00Z', finished_at: '2025-03-01T00:01:00Z', stats: JSON.stringify({ rewards: { pages: 1, records: 2, written: 2, quarantined: 0, deleted: 0 } }) },
    { connection: 'awin', status: 'failed', started_at: '2025-03-01T00:00:00Z', finished_at: '2025-03-01T00:00:05Z', stats: JSON.stringify({}), error: 'HTTP 401 from Awin: check the token' },
  ]);
  await db('checkpoints').insert({ connection: 'ps', stream: 'rewards', state: JSON.stringify({ cursor: 'rew_jan' }) });
  return { alice, bob, discrepancies: { janMismatch, febMissing, awinIgnored } };
}
