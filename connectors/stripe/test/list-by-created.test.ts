import { describe, expect, it } from 'vitest';
import type { StripeApi } from '../client.ts';
import { listByCreated } from '../streams.ts';

// A list endpoint over `n` objects created in the same second, newest first (id descending), 100 a page.
function burst(n: number) {
  const all = Array.from({ length: n }, (_, i) => ({ id: `ip_${String(n - 1 - i).padStart(5, '0')}`, created: 1000 }));
  const calls: Array<Record<string, unknown>> = [];
  const list = async (p: Record<string, unknown>) => {
    calls.push(p);
    const start = p.starting_after ? all.findIndex((o) => o.id === p.starting_after) + 1 : 0;
    return { data: all.slice(start, start + 100), has_more: start + 100 < all.length };
  };
  return { all, calls, list };
}
const api = { options: { concurrency: 4 } } as unknown as StripeApi;

describe('listByCreated', () => {
  it('lists through a same-second burst past the page cap while enough wanted objects remain', async () => {
    const b = burst(1000);
    // 100 wanted at positions 800–899: nine pages, past the cap of five.
    const wanted = new Map(b.all.slice(800, 900).map((o) => [o.id, o.created]));
    const found = await listByCreated(api, wanted, b.list);
    expect(found.size).toBe(100);
    expect(b.calls.length).toBe(9);
  });

  it('gives up at the cap plus one page per ten still wanted when the range holds mostly other objects', async () => {
    const b = burst(3000);
    const wanted = new Map(b.all.slice(2980, 3000).map((o) => [o.id, o.created]));
    const found = await listByCreated(api, wanted, b.list);
    expect(found.size).toBe(0); // the caller looks these 20 up one by one
    expect(b.calls.length).toBe(5 + 2);
  });
});
