// One page naming the same account twice (e.g. with an e-mail changed between the two reads).
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { upsertPartnerAccounts } from '../../src/model/index.ts';

describe('upsertPartnerAccounts: the same account twice in one page', () => {
  const t = useTestDb();

  it('creates one partner and one account, not an orphan partner for the first version', async () => {
    await t.db.transaction((trx) =>
      upsertPartnerAccounts(trx, [
        { connection: 'ps', network: 'partnerstack', externalId: 'p_1', email: 'old@example.com', name: 'Pat' },
        { connection: 'ps', network: 'partnerstack', externalId: 'p_1', email: 'new@example.com', name: 'Pat' },
      ]),
    );
    expect(await t.db('partner_accounts').select('external_id', 'email')).toEqual([{ external_id: 'p_1', email: 'new@example.com' }]);
    expect(await t.db('partners').select('partner_key')).toEqual([{ partner_key: 'email:new@example.com' }]);
  });
});
