// warmIndexes builds the fakes' list indexes ahead of the first list call after a change, so a timed
// run does not pay for sorting whole collections (the benchmark warms after loading data). Checked by
// counting sorts of collection-sized arrays during the list calls the connectors make, with a
// control showing the same calls do sort when not warmed; the lists are the same either way.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import type { StripeObject } from '../../connectors/stripe/fake-server.ts';
import type { ApiObject } from '../../connectors/partnerstack/fake-server.ts';
import type { CbObject } from '../../connectors/chargebee/fake-server.ts';
import { fakeSasRow } from '../../connectors/shareasale/fake-server.ts';
import { fakeAwinTransaction } from '../../connectors/awin/fake-server.ts';
import { useFiveFakes } from './five-fakes.ts';

const N = 600;
const T0 = 1_700_000_000;
/** Spread over ~60 days, not in order, so a sort has work to do. */
const at = (i: number): number => T0 + ((i * 7919) % N) * 8640;

const fakes = useFiveFakes();
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `f` counting Array#sort calls on arrays of at least N elements (a whole collection). */
async function bigSorts<T>(f: () => Promise<T>): Promise<[T, number]> {
  let n = 0;
  const orig = Array.prototype.sort;
  vi.spyOn(Array.prototype, 'sort').mockImplementation(function (this: unknown[], cmp?: (a: unknown, b: unknown) => number) {
    if (this.length >= N) n++;
    return orig.call(this, cmp);
  });
  const out = await f();
  vi.restoreAllMocks();
  return [out, n];
}

async function json<T>(url: string, headers: Record<string, string>): Promise<T> {
  const r = await fetch(url, { headers });
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()) as T;
}

/**
 * Each case: load (replacing what the fake held, so its indexes are stale), then list. Unwarmed, the
 * list sorts the collection; warmed, it does not, and returns the same items.
 */
const cases: Array<{ name: string; load(): void; warm(): void; list(): Promise<unknown> }> = [
  {
    name: 'Stripe invoices (created range) and invoice payments of one invoice',
    load: () => {
      fakes.stripe.store.clear();
      fakes.stripe.store.add(
        ...Array.from({ length: N }, (_, i): StripeObject => ({ id: `in_${i}`, object: 'invoice', created: at(i), customer: `cus_${i % 5}`, status: 'paid' })),
        ...Array.from({ length: N }, (_, i): StripeObject => ({ id: `inpay_${i}`, object: 'invoice_payment', created: at(i), invoice: `in_${i % 50}`, payment: { type: 'payment_intent', payment_intent: `pi_${i}` } })),
      );
    },
    warm: () => fakes.stripe.warmIndexes(),
    list: async () => {
      const h = { authorization: `Bearer ${fakes.stripe.apiKey}` };
      const inv = await json<{ data: StripeObject[] }>(`${fakes.stripe.url}/v1/invoices?limit=100&created[gte]=${T0 + 86_400}`, h);
      const ips = await json<{ data: StripeObject[] }>(`${fakes.stripe.url}/v1/invoice_payments?limit=100&invoice=in_7`, h);
      return [inv.data.map((o) => o.id), ips.data.map((o) => o.id)];
    },
  },
  {
    name: 'PartnerStack rewards (default order, min_created)',
    load: () => {
      fakes.ps.store.clear();
      fakes.ps.store.put('rewards', Array.from({ length: N }, (_, i): ApiObject => ({ key: `rew_${i}`, created_at: at(i) * 1000, updated_at: at(i) * 1000, reward_status: 'approved' })));
    },
    warm: () => fakes.ps.warmIndexes(),
    list: async () => {
      const h = { authorization: `Basic ${Buffer.from(`${fakes.ps.publicKey}:${fakes.ps.secretKey}`).toString('base64')}` };
      const { data } = await json<{ data: { items: ApiObject[] } }>(`${fakes.ps.url}/rewards?limit=250&min_created=${(T0 + 86_400) * 1000}`, h);
      return data.items.map((o) => o.key);
    },
  },
  {
    name: 'Chargebee invoices (sort_by[asc]=updated_at, updated_at[between])',
    load: () => {
      fakes.cb.store.clear();
      fakes.cb.store.add('invoices', ...Array.from({ length: N }, (_, i): CbObject => ({ id: `inv_${i}`, created_at: at(i), updated_at: at(i) + 60, date: at(i), deleted: false })));
    },
    warm: () => fakes.cb.warmIndexes(),
    list: async () => {
      const h = { authorization: `Basic ${Buffer.from(`${fakes.cb.apiKey}:`).toString('base64')}` };
      const q = new URLSearchParams({ limit: '100', 'sort_by[asc]': 'updated_at', 'updated_at[between]': JSON.stringify([T0, T0 + 30 * 86_400]), include_deleted: 'true' });
      const body = await json<{ list: Array<{ invoice: CbObject }> }>(`${fakes.cb.baseUrl}/invoices?${q}`, h);
      return body.list.map((x) => x.invoice.id);
    },
  },
  {
    name: 'ShareASale transaction detail (a month)',
    load: () => {
      fakes.sas.store.transactions = Array.from({ length: N }, (_, i) => fakeSasRow({ transId: i + 1, userId: 1, transDate: new Date(at(i) * 1000), amount: '1.00', commission: '0.40', orderNumber: `in_${i}` }, fakes.sas.store.timezone));
    },
    warm: () => fakes.sas.warmIndexes(),
    list: async () => {
      const s = fakes.sas.store;
      const date = new Date().toUTCString();
      const sig = createHash('sha256').update(`${s.token}:${date}:transactiondetail:${s.secret}`).digest('hex');
      const q = new URLSearchParams({ merchantId: s.merchantId, token: s.token, action: 'transactiondetail', datestart: '11/20/2023', dateend: '12/10/2023' });
      const text = await (await fetch(`${fakes.sas.url}/w.cfm?${q}`, { headers: { 'x-shareasale-date': date, 'x-shareasale-authentication': sig } })).text();
      return text.trim().split('\n').slice(1).map((l) => l.split('|')[0]);
    },
  },
  {
    name: 'Awin transactions (transaction and validation date windows)',
    load: () => {
      fakes.awin.store.transactions = Array.from({ length: N }, (_, i) => fakeAwinTransaction({ id: i + 1, publisherId: 5, transactionDate: new Date(at(i) * 1000), sale: '10.00', commission: '4.00', validationDate: new Date((at(i) + 86_400) * 1000), status: 'approved' }));
    },
    warm: () => fakes.awin.warmIndexes(),
    list: async () => {
      const h = { authorization: `Bearer ${fakes.awin.store.token}` };
      const ids = async (dateType: string): Promise<number[]> => (await json<Array<{ id: number }>>(`${fakes.awin.url}/advertisers/${fakes.awin.store.advertiserId}/transactions/?startDate=2023-11-20T00:00:00&endDate=2023-12-10T00:00:00&timezone=UTC&dateType=${dateType}`, h)).map((t) => t.id);
      return [await ids('transaction'), await ids('validation')];
    },
  },
];

describe('warmIndexes', () => {
  for (const c of cases) {
    it(`${c.name}: sorted before the list call, same items`, async () => {
      c.load();
      const [cold, coldSorts] = await bigSorts(c.list);
      expect(coldSorts, 'control: an unwarmed list call sorts the collection').toBeGreaterThan(0);
      c.load();
      c.warm();
      const [warm, warmSorts] = await bigSorts(c.list);
      expect(warmSorts).toBe(0);
      expect(warm).toEqual(cold);
      expect(JSON.stringify(warm).length).toBeGreaterThan(20);
    });
  }
});
