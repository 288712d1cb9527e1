// Review regressions for the DB adapter: hand-worked figures on canonical rows.
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { buildPayouts, computeAndStore, listCommissions, listPayouts } from '../../src/rules/store.ts';
import { useTestDb } from '../helpers/db.ts';
import { AS_OF, seedWorld, type Ids } from './world.ts';

const config = configSchema.parse({ program: { dir: fileURLToPath(new URL('../../config/programs', import.meta.url)), name: 'kartra' } });

describe('rules DB adapter regressions', () => {
  const t = useTestDb();
  let ids: Ids;
  beforeEach(async () => {
    ids = await seedWorld(t.db);
  });

  it("prices a first payment by the payment's own plan_interval after the subscription switched plans (R5)", async () => {
    // C5 (B): subscription now annual; its first payment on 2025-02-10 paid a monthly plan, $40.00.
    // B at 02-10: p3 (01-10) clears 02-24, after → nothing counted → Referral, monthly first 100%:
    // 4000 × 1.00 = 4000 (the annual 20% would give 800).
    const c5 = Number((await t.db('customers').insert({ customer_key: 'c5' }).returning('id'))[0]!.id);
    await t.db('attributions').insert({ customer_id: c5, partner_account_id: ids.accB, connection: 'partnerstack', network: 'partnerstack', source_ref: 'att-c5', attributed_at: '2025-02-01T00:00:00Z' });
    const s5 = Number((await t.db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: 'sub_5', customer_id: c5, plan_interval: 'year', status: 'active' }).returning('id'))[0]!.id);
    await t.db('billing_events').insert({
      connection: 'stripe', billing_system: 'stripe', kind: 'payment', external_id: 'ch_p5', document_id: 'in_p5', customer_id: c5, subscription_id: s5,
      occurred_at: '2025-02-10T12:00:00Z', amount_minor: 4_000, currency: 'USD', amount_usd_minor: 4_000, classification: 'qualified', plan_interval: 'month',
    });
    await computeAndStore(t.db, config, AS_OF);
    const [row] = await listCommissions(t.db, { payment: 'in_p5' });
    expect([row!.partner_key, row!.tier, row!.rate, row!.amount_minor, row!.status]).toEqual(['b', 'referral', '1', 4_000, 'reserve']);
  });

  it('blocks a payout on the network that reports missing tax info, whatever another network reported last (R9)', async () => {
    // B's PartnerStack account reports no tax form; B's Awin account (synced later) reports one, so
    // the partner-level flag the model keeps says true. B's 2025-03-15 PartnerStack statement: p3
    // 5000 (cleared 02-24) ≥ 2500 minimum, but PartnerStack reports missing tax info → blocked,
    // payable 0, 5000 carried out.
    await t.db('partner_accounts').where('id', ids.accB).update({ tax_info_on_file: false });
    await t.db('partner_accounts').insert({ partner_id: ids.b, connection: 'awin', network: 'awin', external_id: 'aw-b', tax_info_on_file: true });
    await t.db('partners').where('id', ids.b).update({ tax_info_on_file: true });
    await computeAndStore(t.db, config, AS_OF);
    await buildPayouts(t.db, config, '2025-03-15');
    const b = (await listPayouts(t.db, '2025-03-15')).find((p) => p.partner_key === 'b')!;
    expect([b.network, b.balance_usd_minor, b.payable_usd_minor, b.carried_out_usd_minor, b.status, b.reasons]).toEqual(['partnerstack', 5_000, 0, 5_000, 'blocked', ['missing_tax_info']]);
  });

  it("excludes personal use matched on another network account's email (R2)", async () => {
    // A's partner row says a@partners.example; A's PartnerStack account says Alias+kartra@Other.example.
    // C2 (A's customer) is alias@other.example: the same mailbox (lower-case, +tag dropped) → p2
    // ($1,200.00 annual) is self_referral, amount 0 (otherwise Referral 20% = 24000), and R's second
    // tier on it is excluded too (not a qualified payment).
    await t.db('partner_accounts').where('id', ids.accA).update({ email: 'Alias+kartra@Other.example' });
    await t.db('customers').where('id', ids.c2).update({ email: 'alias@other.example', email_normalized: 'alias@other.example' });
    await computeAndStore(t.db, config, AS_OF);
    const rows = await listCommissions(t.db, { payment: 'in_p2' });
    expect(rows.map((r) => [r.partner_key, r.kind, r.amount_minor, r.status, r.exclusion_reason])).toEqual([
      ['r', 'second_tier', 0, 'void', 'self_referral'],
      ['a', 'direct', 0, 'void', 'self_referral'],
    ]);
  });
});
