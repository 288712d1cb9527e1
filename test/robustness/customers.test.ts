// upsertCustomers with several records of one page naming the same new shared customer key.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { upsertCustomers } from '../../src/model/index.ts';

describe('upsertCustomers: one page, one new customer key', () => {
  const t = useTestDb();

  it('two placeholder customers revealing the same new key in one page do not abort the page', async () => {
    // Both Stripe customers were first seen through invoices (placeholder keys "~stripe:…").
    await upsertCustomers(t.db, [
      { identity: { system: 'stripe', connection: 's', externalId: 'cus_1' } },
      { identity: { system: 'stripe', connection: 's', externalId: 'cus_2' } },
    ]);
    // The customers page then tells that both carry the company's key acct_9.
    const ids = await t.db.transaction((trx) =>
      upsertCustomers(trx, [
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_1' }, customerKey: 'acct_9' },
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_2' }, customerKey: 'acct_9' },
      ]),
    );
    expect(ids.size).toBe(2);
    // Both are the same customer: the second placeholder is merged into the one that took acct_9.
    expect(new Set(ids.values()).size).toBe(1);
    const keyed = await t.db('customers').where({ customer_key: 'acct_9' });
    expect(keyed).toHaveLength(1);
    // Re-running the same page is a no-op.
    await t.db.transaction((trx) =>
      upsertCustomers(trx, [
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_1' }, customerKey: 'acct_9' },
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_2' }, customerKey: 'acct_9' },
      ]),
    );
    expect(await t.db('customers').count<{ n: string }[]>('* as n')).toEqual([{ n: expect.anything() }]);
    expect(Number((await t.db('customers').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(1);
    expect(await t.db('customers').where({ customer_key: 'acct_9' })).toHaveLength(1);
  });

  it('the same new customer twice in one page, second time with its key, yields one customer', async () => {
    const ids = await t.db.transaction((trx) =>
      upsertCustomers(trx, [
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_7' } },
        { identity: { system: 'stripe', connection: 's', externalId: 'cus_7' }, customerKey: 'acct_7', email: 'A@x.org' },
        { identity: { system: 'chargebee', connection: 'c', externalId: 'cb_7' }, customerKey: 'acct_7' },
      ]),
    );
    expect(new Set(ids.values()).size).toBe(1);
    expect(await t.db('customers').select('customer_key')).toEqual([{ customer_key: 'acct_7' }]);
  });
});
