// A small hand-worked world on canonical rows (no connectors): recruiter R, affiliate A recruited
// by R, affiliate B; Kartra tier program (2025 payments → version kartra-tiers-2024).
//
//   C1 (A, monthly)  p1   2025-01-03 12:00Z  $100.00   first payment at Referral tier → 100%
//                    re1  2025-03-01 12:00Z  −$25.00   partial refund after clearing (Feb 17) → clawback
//   C2 (A, annual)   tr2  2025-01-20 12:00Z  $1.00     trial charge → excluded (trial_charge)
//                    p2   2025-02-01 12:00Z  $1,200.00 first qualified payment, Referral (nothing cleared yet) → 20%
//   C3 (B, monthly)  p3   2025-01-10 12:00Z  $50.00    Referral 100%; C3 was claimed by A earlier, B's later claim wins (R1)
//   C1               px   2025-01-05 12:00Z  $999.00   deleted in billing (deleted_at) → ignored
import type { Knex } from 'knex';

export interface Ids {
  r: number;
  a: number;
  b: number;
  accR: number;
  accA: number;
  accB: number;
  c1: number;
  c2: number;
  c3: number;
  p1: number;
  re1: number;
  tr2: number;
  p2: number;
  p3: number;
  px: number;
}

export const AS_OF = new Date('2025-03-10T00:00:00Z');

export async function seedWorld(db: Knex): Promise<Ids> {
  const id = (rows: unknown): number => Number((rows as Array<{ id: number }>)[0]!.id);
  const partner = async (key: string, recruiter: number | null) =>
    id(await db('partners').insert({ partner_key: key, name: key.toUpperCase(), email: `${key}@partners.example`, email_normalized: `${key}@partners.example`, recruiter_partner_id: recruiter }).returning('id'));
  const account = async (partnerId: number, ext: string) => id(await db('partner_accounts').insert({ partner_id: partnerId, connection: 'partnerstack', network: 'partnerstack', external_id: ext }).returning('id'));
  const customer = async (key: string) => id(await db('customers').insert({ customer_key: key, email: `${key}@cust.example`, email_normalized: `${key}@cust.example` }).returning('id'));
  const attribute = async (customerId: number, accountId: number, ref: string, at: string) =>
    db('attributions').insert({ customer_id: customerId, partner_account_id: accountId, connection: 'partnerstack', network: 'partnerstack', source_ref: ref, attributed_at: at, signup_at: at });
  const subscription = async (customerId: number, ext: string, interval: 'month' | 'year') =>
    id(await db('subscriptions').insert({ connection: 'stripe', billing_system: 'stripe', external_id: ext, customer_id: customerId, plan_interval: interval, status: 'active', currency: 'USD' }).returning('id'));
  const event = async (e: { kind?: string; ext: string; doc?: string; customerId: number | null; subId?: number | null; paymentId?: number; at: string; amount: number; classification?: string; deleted?: boolean }) =>
    id(
      await db('billing_events')
        .insert({
          connection: 'stripe',
          billing_system: 'stripe',
          kind: e.kind ?? 'payment',
          external_id: e.ext,
          document_id: e.doc ?? e.ext,
          customer_id: e.customerId,
          subscription_id: e.subId ?? null,
          payment_event_id: e.paymentId ?? null,
          occurred_at: e.at,
          amount_minor: e.amount,
          currency: 'USD',
          amount_usd_minor: e.amount,
          fx_source: 'identity',
          classification: e.classification ?? (e.kind && e.kind !== 'payment' ? null : 'qualified'),
          deleted_at: e.deleted ? '2025-02-01T00:00:00Z' : null,
        })
        .returning('id'),
    );

  const r = await partner('r', null);
  const a = await partner('a', r);
  const b = await partner('b', null);
  const accR = await account(r, 'ps-r');
  const accA = await account(a, 'ps-a');
  const accB = await account(b, 'ps-b');
  const c1 = await customer('c1');
  const c2 = await customer('c2');
  const c3 = await customer('c3');
  await attribute(c1, accA, 'att-c1', '2024-12-20T00:00:00Z');
  await attribute(c2, accA, 'att-c2', '2025-01-15T00:00:00Z');
  await attribute(c3, accA, 'att-c3-a', '2024-12-01T00:00:00Z');
  await attribute(c3, accB, 'att-c3-b', '2025-01-05T00:00:00Z');
  const s1 = await subscription(c1, 'sub_1', 'month');
  const s2 = await subscription(c2, 'sub_2', 'year');
  const s3 = await subscription(c3, 'sub_3', 'month');
  const p1 = await event({ ext: 'ch_p1', doc: 'in_p1', customerId: c1, subId: s1, at: '2025-01-03T12:00:00Z', amount: 10_000 });
  const px = await event({ ext: 'ch_px', doc: 'in_px', customerId: c1, subId: s1, at: '2025-01-05T12:00:00Z', amount: 99_900, deleted: true });
  const tr2 = await event({ ext: 'ch_tr2', doc: 'in_tr2', customerId: c2, subId: s2, at: '2025-01-20T12:00:00Z', amount: 100, classification: 'trial' });
  const p2 = await event({ ext: 'ch_p2', doc: 'in_p2', customerId: c2, subId: s2, at: '2025-02-01T12:00:00Z', amount: 120_000 });
  const p3 = await event({ ext: 'ch_p3', doc: 'in_p3', customerId: c3, subId: s3, at: '2025-01-10T12:00:00Z', amount: 5_000 });
  // Filed without a customer: found through its payment.
  const re1 = await event({ kind: 'refund', ext: 're_1', customerId: null, paymentId: p1, at: '2025-03-01T12:00:00Z', amount: 2_500 });
  return { r, a, b, accR, accA, accB, c1, c2, c3, p1, re1, tr2, p2, p3, px };
}

/** Stored rows without the per-run stamp, in key order (for identity comparisons). */
export async function storedRows(db: Knex): Promise<Array<Record<string, unknown>>> {
  const rows = await db('computed_commissions').orderBy('commission_key').select('*');
  return rows.map((r: Record<string, unknown>) => {
    const { computed_at: _c, ...rest } = r;
    return rest;
  });
}
