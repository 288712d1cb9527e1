// Refunds and disputes find their stored payment through the payment intent or charge ids kept in
// the payment event's metadata (GIN-indexed, migration 007) without asking the API.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../../test/helpers/db.ts';
import { resolvePayments } from '../streams.ts';
import type { StripeApi } from '../client.ts';

describe('resolvePayments', () => {
  const t = useTestDb();

  it('matches refs by payment intent or charge from stored payments, and asks the API for nothing it found', async () => {
    await t.db('connections').insert({ name: 'stripe', type: 'stripe' });
    const at = new Date(Date.UTC(2025, 0, 5));
    const ev = (id: string, meta: Record<string, unknown>) => ({ connection: 'stripe', billing_system: 'stripe', kind: 'payment', external_id: id, document_id: id, occurred_at: at, amount_minor: 1000, currency: 'USD', metadata: JSON.stringify(meta) });
    await t.db('billing_events').insert([
      ev('in_1', { payment_intents: ['pi_1'], charges: ['ch_1'] }),
      ev('in_2', { payment_intents: ['pi_2', 'pi_2b'], charges: [] }),
      ev('in_3', { charges: ['ch_3'] }),
    ]);
    const api = { options: { concurrency: 2 }, call: () => { throw new Error('the API must not be asked'); } } as unknown as StripeApi;
    const out = await resolvePayments(api, t.db, 'stripe', [
      { key: 're_a', paymentIntent: 'pi_1', charge: null },
      { key: 're_b', paymentIntent: null, charge: 'ch_3' },
      { key: 're_c', paymentIntent: 'pi_2b', charge: 'ch_none' },
      { key: 're_d', paymentIntent: null, charge: 'ch_unknown' },
    ]);
    expect(out.get('re_a')?.invoiceId).toBe('in_1');
    expect(out.get('re_b')?.invoiceId).toBe('in_3');
    expect(out.get('re_c')?.invoiceId).toBe('in_2');
    expect(out.get('re_a')?.payment?.externalId).toBe('in_1');
    expect(out.get('re_d')?.invoiceId ?? null).toBeNull();
  });
});
