// A payment arriving before its customer creates a placeholder customer (`~stripe:cus_2`); when a
// later record shows cus_2 belongs to a keyed customer, the placeholder is merged into it.
import { describe, expect, it, vi } from 'vitest';
import type { Logger } from 'pino';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.ts';
import { ensureCustomers, ensurePartnerAccounts, upsertAttributions, upsertBillingEvents, upsertCustomers } from '../../src/model/index.ts';
import { writeCustomers } from '../../connectors/stripe/streams.ts';
import type { StripeCustomer } from '../../connectors/stripe/schemas.ts';

const stripeCustomer = (id: string, customerKey: string): StripeCustomer => ({ id, object: 'customer', email: `${id}@example.org`, name: 'Acme', metadata: { customer_key: customerKey } }) as unknown as StripeCustomer;

async function invoicePage(trx: Knex): Promise<void> {
  const custs = await ensureCustomers(trx, 'stripe', 's', ['cus_2']);
  await upsertBillingEvents(trx, [
    {
      connection: 's',
      billingSystem: 'stripe',
      kind: 'payment',
      externalId: 'in_1',
      documentId: 'in_1',
      customerId: custs.get('cus_2') ?? null,
      occurredAt: new Date('2026-01-05T00:00:00Z'),
      amountMinor: 10000,
      currency: 'USD',
    },
  ]);
}

async function partnerstackPage(trx: Knex): Promise<void> {
  const ids = await upsertCustomers(trx, [{ identity: { system: 'partnerstack', connection: 'ps', externalId: 'psc_1' }, customerKey: 'acct_9', email: 'Billing@Acme.org' }]);
  const accounts = await ensurePartnerAccounts(trx, 'ps', 'partnerstack', ['part_1']);
  await upsertAttributions(trx, [{ connection: 'ps', network: 'partnerstack', sourceRef: 'psc_1', customerId: ids.get('psc_1')!, partnerAccountId: accounts.get('part_1')!.accountId }]);
}

async function snapshot(db: Knex): Promise<unknown> {
  return {
    customers: await db('customers').orderBy('id').select('id', 'customer_key', 'email'),
    identities: await db('customer_identities').orderBy('id').select('customer_id', 'system', 'external_id'),
    emails: await db('customer_emails').orderBy(['customer_id', 'email_normalized']).select('customer_id', 'email_normalized'),
    events: await db('billing_events').orderBy('id').select('id', 'customer_id'),
    attributions: await db('attributions').orderBy('id').select('id', 'customer_id', 'source_ref'),
  };
}

describe('upsertCustomers: merging a placeholder customer into the keyed one', () => {
  const t = useTestDb();

  it('invoice first (placeholder), then the customer page naming acct_9 known via PartnerStack → one customer', async () => {
    await t.db.transaction((trx) => partnerstackPage(trx));
    await t.db.transaction((trx) => invoicePage(trx));
    expect(await t.db('customers').orderBy('id').pluck('customer_key')).toEqual(['acct_9', '~stripe:cus_2']);

    await t.db.transaction((trx) => writeCustomers(trx, 's', [stripeCustomer('cus_2', 'acct_9')]));

    const customers = await t.db('customers').select('id', 'customer_key');
    expect(customers).toHaveLength(1);
    const id = Number(customers[0]!.id);
    expect(customers[0]!.customer_key).toBe('acct_9');
    expect(await t.db('customer_identities').where({ customer_id: id }).orderBy('system').pluck('external_id')).toEqual(['psc_1', 'cus_2']);
    expect(await t.db('billing_events').pluck('customer_id')).toEqual([id]);
    expect(await t.db('attributions').pluck('customer_id')).toEqual([id]);
    expect(await t.db('customer_emails').where({ customer_id: id }).orderBy('email_normalized').pluck('email_normalized')).toEqual(['billing@acme.org', 'cus_2@example.org']);

    // Running the same pages again changes nothing.
    const before = await snapshot(t.db);
    await t.db.transaction((trx) => partnerstackPage(trx));
    await t.db.transaction((trx) => invoicePage(trx));
    await t.db.transaction((trx) => writeCustomers(trx, 's', [stripeCustomer('cus_2', 'acct_9')]));
    expect(await snapshot(t.db)).toEqual(before);
  });

  it('a PartnerStack customer whose provider_key names the placeholder merges it too', async () => {
    await t.db.transaction((trx) => invoicePage(trx));
    await t.db.transaction((trx) => upsertCustomers(trx, [{ identity: { system: 'stripe', connection: 's', externalId: 'cus_1' }, customerKey: 'acct_9' }]));
    const ids = await t.db.transaction((trx) =>
      upsertCustomers(trx, [{ identity: { system: 'partnerstack', connection: 'ps', externalId: 'psc_1' }, customerKey: 'acct_9', otherIdentities: [{ system: 'stripe', connection: 'ps', externalId: 'cus_2' }] }]),
    );
    const customers = await t.db('customers').select('id', 'customer_key');
    expect(customers).toEqual([{ id: ids.get('psc_1'), customer_key: 'acct_9' }]);
    expect(await t.db('billing_events').pluck('customer_id')).toEqual([ids.get('psc_1')]);
    expect(Number((await t.db('customer_identities').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(3);
  });

  it('a key first seen in the same page as the placeholder is merged in the same call', async () => {
    await t.db.transaction((trx) => invoicePage(trx));
    const ids = await t.db.transaction((trx) =>
      upsertCustomers(trx, [
        { identity: { system: 'partnerstack', connection: 'ps', externalId: 'psc_1' }, customerKey: 'acct_9' },
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_2' }, customerKey: 'acct_9' },
      ]),
    );
    const customers = await t.db('customers').select('id', 'customer_key');
    expect(customers).toHaveLength(1);
    expect(customers[0]!.customer_key).toBe('acct_9');
    expect(ids.get('psc_1')).toBe(Number(customers[0]!.id));
    expect(ids.get('cus_2')).toBe(Number(customers[0]!.id));
    expect(await t.db('billing_events').pluck('customer_id')).toEqual([Number(customers[0]!.id)]);
  });

  it('two keyed customers with conflicting identities are not merged', async () => {
    await t.db.transaction((trx) => upsertCustomers(trx, [{ identity: { system: 'stripe', connection: 's', externalId: 'cus_1' }, customerKey: 'acct_1' }]));
    await t.db.transaction((trx) => upsertCustomers(trx, [{ identity: { system: 'partnerstack', connection: 'ps', externalId: 'psc_9' }, customerKey: 'acct_9' }]));
    const before = await snapshot(t.db);
    // PartnerStack now says psc_9 (acct_9) is Stripe's cus_1 (acct_1): two keyed customers.
    const warn = vi.fn();
    await t.db.transaction((trx) =>
      upsertCustomers(
        trx,
        [{ identity: { system: 'partnerstack', connection: 'ps', externalId: 'psc_9' }, customerKey: 'acct_9', otherIdentities: [{ system: 'stripe', connection: 's', externalId: 'cus_1' }] }],
        { warn } as unknown as Logger,
      ),
    );
    expect(warn).toHaveBeenCalledTimes(1);
    expect(await t.db('customers').orderBy('id').pluck('customer_key')).toEqual(['acct_1', 'acct_9']);
    expect(await snapshot(t.db)).toEqual(before);
  });
});
