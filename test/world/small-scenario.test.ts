// The hand-written small world (config/scenarios/small.yaml) through the real pipeline: fakes → sync
// → compute → reconcile. Every figure is worked by hand from docs rules R2–R6 and the networks'
// 40% / 10% plans; none is computed by the engine's own code here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { readScenarioFile } from '../../src/world/schema.ts';
import { buildWorld } from '../../src/world/build.ts';
import { runWorldPipeline, type PipelineResult } from '../../src/world/pipeline.ts';

let t: TestDb;
let r: PipelineResult;
const NOW = new Date('2025-09-01T00:00:00Z');

beforeAll(async () => {
  t = await createTestDb();
  const world = buildWorld(readScenarioFile('config/scenarios/small.yaml'), { asOf: NOW });
  r = await runWorldPipeline({ world, db: t.db, now: NOW });
}, 120_000);
afterAll(async () => t?.destroy());

const find = (kind: string, payment: string) => r.report.discrepancies.filter((d) => d.kind === kind && d.payment === payment);

describe('small scenario, hand-worked', () => {
  it('syncs all five connections and finishes ok', () => {
    expect(r.summary.errors).toEqual([]);
    expect(r.summary.ok).toBe(true);
    expect(r.summary.sync.connections.map((c) => [c.connection, c.status])).toEqual([
      ['stripe', 'succeeded'], ['chargebee', 'succeeded'], ['partnerstack', 'succeeded'], ['shareasale', 'succeeded'], ['awin', 'succeeded'],
    ]);
  });

  it('reports exactly the hand-worked discrepancies', () => {
    const got = r.report.discrepancies.map((d) => `${d.kind} ${d.network} ${d.partner_account} ${d.payment} ${d.usd_minor}`).sort();
    expect(got).toEqual([
      // Awin, GBP at 1.25: owed 100% of £100.00 (Referral, first monthly) = 10000; reported 40% = 4000;
      // diff 6000 GBP × 1.25 = 7500 USD. The duplicate: 4000 GBP × 1.25 = 5000 USD.
      'amount_mismatch awin awin:900001 in_s5_1 7500',
      // PartnerStack, c2 annual €900.00 at 1.10 = $990.00: owed Referral annual 20% = $198.00;
      // reported 40% of $990.00 = $396.00 → $198.00 over.
      'amount_mismatch partnerstack partnerstack:ps_alice inv_s2_1 19800',
      // ShareASale: owed 100% of $299.00 = 29900; reported 40% = 11960 + injected 1000 = 12960 → 16940 under.
      'amount_mismatch shareasale shareasale:500001 in_s4_1 16940',
      'duplicate_in_network awin awin:900001 in_s5_1 5000',
      // Injected missing reward: owed 100% of $99.00 (Alice's first sale, Referral tier).
      'missing_in_network partnerstack partnerstack:ps_alice in_s1_1 9900',
      // Bob's first sale credited to Erin: owed 100% of $199.00 = 19900 > reported 40% = 7960.
      'partner_mismatch partnerstack partnerstack:ps_bob in_s3_1 19900',
      // c7 fully refunded before clearing (void), network still approved 40% of $49.00 = 1960.
      'status_mismatch shareasale shareasale:500001 in_s7_1 1960',
      // Rules differences, not network errors: later payments at Referral tier owe 0 (R5), the
      // network pays 40% of $99.00 = 3960 / of $199.00 = 7960; c6 is Alice herself (self_referral).
      'unexpected_in_network partnerstack partnerstack:ps_alice in_s1_2 3960',
      'unexpected_in_network partnerstack partnerstack:ps_alice in_s1_3 3960',
      'unexpected_in_network partnerstack partnerstack:ps_alice in_s6_1 3960',
      'unexpected_in_network partnerstack partnerstack:ps_bob in_s3_2 7960',
    ]);
    expect(find('unexpected_in_network', 'in_s6_1')[0]!.reason).toBe('self_referral');
    expect(find('unexpected_in_network', 'in_s1_2')[0]!.reason).toBe('referral_tier_renewal');
    // The fully refunded s4 cycle 2 was declined by ShareASale as well: no discrepancy.
    expect(r.report.discrepancies.filter((d) => d.payment === 'in_s4_2')).toEqual([]);
  });

  it('computes the hand-worked commissions', () => {
    const rows = r.report.commissions.filter((c) => c.status !== 'void').map((c) => `${c.kind} ${c.partner_external_id} ${c.document_id} ${c.rate} ${c.amount_minor} ${c.amount_currency} ${c.amount_usd_minor}`).sort();
    expect(rows).toEqual([
      'direct 500001 in_s4_1 1 29900 USD 29900',
      'direct 900001 in_s5_1 1 10000 GBP 12500', // £100.00 × 1.25
      'direct ps_alice in_s1_1 1 9900 USD 9900',
      'direct ps_alice inv_s2_1 0.2 18000 EUR 19800', // 20% of €900.00; × 1.10
      'direct ps_bob in_s3_1 1 19900 USD 19900',
      // R6: Alice recruited Bob: 10% of each of Bob's qualified payments ($199.00), whatever the tier.
      'second_tier ps_alice in_s3_1 0.1 1990 USD 1990',
      'second_tier ps_alice in_s3_2 0.1 1990 USD 1990',
    ]);
  });

  it('totals per network: reported, owed, collected (USD minor units)', () => {
    // PartnerStack reported: 3960×2 (s1 c2,c3) + 39600 (s2) + 7960×2 (s3 c1,c2) + 1990×2 (2nd tier) + 3960 (s6) = 71380.
    // Owed: 9900 + 19800 + 19900 + 1990 + 1990 = 53580.
    expect(r.report.totals.partnerstack).toMatchObject({ reported_usd_minor: 71380, owed_usd_minor: 53580 });
    // ShareASale reported 12960 + 1960 = 14920 (the declined s4 c2 counts nothing); owed 29900.
    expect(r.report.totals.shareasale).toMatchObject({ reported_usd_minor: 14920, owed_usd_minor: 29900 });
    expect(r.report.totals.awin).toMatchObject({ reported_usd_minor: 5000, owed_usd_minor: 12500, collected_usd_minor: 12500 });
  });
});
