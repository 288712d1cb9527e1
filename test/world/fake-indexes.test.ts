// The fakes answer lists from indexes sorted once per change (binary search for ranges and cursors):
// paging through them gives exactly the filtered, sorted collection, and changes made after a first
// request (add/put/remove, rows pushed or edited in place) show up in the next one.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { StripeObject } from '../../connectors/stripe/fake-server.ts';
import type { ApiObject } from '../../connectors/partnerstack/fake-server.ts';
import type { CbObject } from '../../connectors/chargebee/fake-server.ts';
import { fakeSasRow } from '../../connectors/shareasale/fake-server.ts';
import { fakeAwinTransaction } from '../../connectors/awin/fake-server.ts';
import { useFiveFakes } from './five-fakes.ts';
import { mulberry32 } from '../../src/util/random.ts';

const T0 = 1_700_000_000;
const rnd = mulberry32(11);
/** Few distinct timestamps, so ties (broken by id/key) are common. */
const when = (): number => T0 + Math.floor(rnd() * 40) * 3600;

const fakes = useFiveFakes();

async function json<T>(url: string, headers: Record<string, string>): Promise<T> {
  const r = await fetch(url, { headers });
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()) as T;
}

describe('fake list indexes', () => {
  it('Stripe: created range + starting_after pages = the filtered newest-first list; adds are seen at once', async () => {
    const h = { authorization: `Bearer ${fakes.stripe.apiKey}` };
    fakes.stripe.store.add(...Array.from({ length: 130 }, (_, i): StripeObject => ({ id: `ch_${String(i).padStart(3, '0')}`, object: 'charge', created: when(), customer: `cus_${i % 3}` })));
    const pageAll = async (qs: Record<string, string>): Promise<string[]> => {
      const ids: string[] = [];
      let after: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ ...qs, limit: '7', ...(after ? { starting_after: after } : {}) });
        const body = await json<{ data: StripeObject[]; has_more: boolean }>(`${fakes.stripe.url}/v1/charges?${q}`, h);
        ids.push(...body.data.map((o) => o.id));
        if (!body.has_more) return ids;
        after = body.data[body.data.length - 1]!.id;
      }
    };
    const naive = (pred: (o: StripeObject) => boolean): string[] =>
      [...fakes.stripe.store.collections.charges.values()].filter(pred).sort((a, b) => b.created! - a.created! || (a.id < b.id ? 1 : -1)).map((o) => o.id);
    const lo = T0 + 10 * 3600;
    const hi = T0 + 30 * 3600;
    expect(await pageAll({ 'created[gte]': String(lo), 'created[lt]': String(hi) })).toEqual(naive((o) => o.created! >= lo && o.created! < hi));
    expect(await pageAll({ customer: 'cus_1' })).toEqual(naive((o) => o.customer === 'cus_1'));
    fakes.stripe.store.add({ id: 'ch_new', object: 'charge', created: lo + 1, customer: 'cus_1' });
    expect(await pageAll({ 'created[gte]': String(lo), 'created[lt]': String(hi) })).toContain('ch_new');
    expect(await pageAll({ customer: 'cus_1' })).toContain('ch_new');
    // ending_before: the page just before the cursor.
    const all = naive(() => true);
    const body = await json<{ data: StripeObject[]; has_more: boolean }>(`${fakes.stripe.url}/v1/charges?limit=5&ending_before=${all[20]}`, h);
    expect(body.data.map((o) => o.id)).toEqual(all.slice(15, 20));
    expect(body.has_more).toBe(true);
  });

  it('PartnerStack: min_created + starting_after pages; put/remove are seen at once', async () => {
    const h = { authorization: `Basic ${Buffer.from(`${fakes.ps.publicKey}:${fakes.ps.secretKey}`).toString('base64')}` };
    fakes.ps.store.put('transactions', Array.from({ length: 120 }, (_, i): ApiObject => ({ key: `txn_${String(i).padStart(3, '0')}`, created_at: when() * 1000, updated_at: 0 })));
    const pageAll = async (): Promise<string[]> => {
      const keys: string[] = [];
      let after: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ limit: '9', min_created: String((T0 + 5 * 3600) * 1000), ...(after ? { starting_after: after } : {}) });
        const { data } = await json<{ data: { items: ApiObject[]; has_more: boolean } }>(`${fakes.ps.url}/transactions?${q}`, h);
        keys.push(...data.items.map((o) => o.key));
        if (!data.has_more) return keys;
        after = data.items[data.items.length - 1]!.key;
      }
    };
    const naive = (): string[] =>
      [...fakes.ps.store.transactions.values()]
        .filter((o) => (o.created_at as number) >= (T0 + 5 * 3600) * 1000)
        .sort((a, b) => (b.created_at as number) - (a.created_at as number) || (a.key < b.key ? 1 : -1))
        .map((o) => o.key);
    expect(await pageAll()).toEqual(naive());
    fakes.ps.store.remove('transactions', naive()[3]!);
    fakes.ps.store.put('transactions', { key: 'txn_new', created_at: (T0 + 20 * 3600) * 1000, updated_at: 0 });
    const after = await pageAll();
    expect(after).toEqual(naive());
    expect(after).toContain('txn_new');
  });

  it('Chargebee: updated_at[between] sorted both ways with the keyset offset; adds are seen at once', async () => {
    const h = { authorization: `Basic ${Buffer.from(`${fakes.cb.apiKey}:`).toString('base64')}` };
    fakes.cb.store.add('invoices', ...Array.from({ length: 110 }, (_, i): CbObject => ({ id: `inv_${String(i).padStart(3, '0')}`, created_at: when(), updated_at: when(), deleted: i % 17 === 0 })));
    const lo = T0 + 8 * 3600;
    const hi = T0 + 33 * 3600;
    const pageAll = async (dir: 'asc' | 'desc', includeDeleted: boolean): Promise<string[]> => {
      const ids: string[] = [];
      let offset: string | undefined;
      for (;;) {
        const q = new URLSearchParams({ limit: '8', [`sort_by[${dir}]`]: 'updated_at', 'updated_at[between]': JSON.stringify([lo, hi]), ...(includeDeleted ? { include_deleted: 'true' } : {}), ...(offset ? { offset } : {}) });
        const body = await json<{ list: Array<{ invoice: CbObject }>; next_offset?: string }>(`${fakes.cb.baseUrl}/invoices?${q}`, h);
        ids.push(...body.list.map((x) => x.invoice.id));
        if (!body.next_offset) return ids;
        offset = body.next_offset;
      }
    };
    const naive = (includeDeleted: boolean): string[] =>
      [...fakes.cb.store.invoices.values()]
        .filter((o) => o.updated_at! >= lo && o.updated_at! <= hi && (includeDeleted || !o.deleted))
        .sort((a, b) => a.updated_at! - b.updated_at! || (a.id < b.id ? -1 : 1))
        .map((o) => o.id);
    expect(await pageAll('asc', true)).toEqual(naive(true));
    expect(await pageAll('desc', false)).toEqual(naive(false).reverse());
    fakes.cb.store.add('invoices', { id: 'inv_new', created_at: lo, updated_at: lo + 5, deleted: false });
    expect(await pageAll('asc', true)).toEqual(naive(true));
    expect(naive(true)).toContain('inv_new');
  });

  it('ShareASale: rows pushed, removed or re-dated in place after a request are seen by the next', async () => {
    const s = fakes.sas.store;
    const get = async (start: string, end: string): Promise<string[]> => {
      const date = new Date().toUTCString();
      const sig = createHash('sha256').update(`${s.token}:${date}:transactiondetail:${s.secret}`).digest('hex');
      const q = new URLSearchParams({ merchantId: s.merchantId, token: s.token, action: 'transactiondetail', datestart: start, dateend: end });
      const text = await (await fetch(`${fakes.sas.url}/w.cfm?${q}`, { headers: { 'x-shareasale-date': date, 'x-shareasale-authentication': sig } })).text();
      return text.trim().split('\n').slice(1).map((l) => l.split('|')[0]!);
    };
    s.transactions.push(fakeSasRow({ transId: 30, userId: 1, transDate: '01/10/2025 10:00:00 AM', amount: '1.00', commission: '0.40' }), fakeSasRow({ transId: 10, userId: 1, transDate: '01/12/2025 10:00:00 AM', amount: '1.00', commission: '0.40' }));
    expect(await get('01/01/2025', '01/31/2025')).toEqual(['10', '30']);
    s.transactions.push(fakeSasRow({ transId: 20, userId: 1, transDate: '01/11/2025 10:00:00 AM', amount: '1.00', commission: '0.40' }));
    expect(await get('01/01/2025', '01/31/2025')).toEqual(['10', '20', '30']);
    s.transactions[0]!['Trans Date'] = '02/01/2025 10:00:00 AM';
    expect(await get('01/01/2025', '01/31/2025')).toEqual(['10', '20']);
    s.transactions.splice(1, 1);
    expect(await get('01/01/2025', '01/31/2025')).toEqual(['20']);
  });

  it('Awin: a validation date edited in place is seen by the next validation window', async () => {
    const h = { authorization: `Bearer ${fakes.awin.store.token}` };
    fakes.awin.store.transactions.push(
      fakeAwinTransaction({ id: 1, publisherId: 5, transactionDate: new Date('2025-01-05T10:00:00Z'), sale: '10.00', commission: '4.00', validationDate: new Date('2025-01-20T10:00:00Z'), status: 'approved' }),
      fakeAwinTransaction({ id: 2, publisherId: 5, transactionDate: new Date('2025-01-06T10:00:00Z'), sale: '10.00', commission: '4.00' }),
    );
    const ids = async (dateType: string): Promise<number[]> => (await json<Array<{ id: number }>>(`${fakes.awin.url}/advertisers/${fakes.awin.store.advertiserId}/transactions/?startDate=2025-01-01T00:00:00&endDate=2025-01-31T00:00:00&timezone=UTC&dateType=${dateType}`, h)).map((t) => t.id);
    expect(await ids('transaction')).toEqual([1, 2]);
    expect(await ids('validation')).toEqual([1]);
    fakes.awin.store.transactions[1]!.validationDate = '2025-01-25T00:00:00';
    expect(await ids('validation')).toEqual([1, 2]);
  });
});
