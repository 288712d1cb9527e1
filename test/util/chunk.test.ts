import { describe, expect, it } from 'vitest';
import { chunk, takeFront } from '../../src/util/chunk.ts';

describe('chunk', () => {
  it('splits into parts of at most size, in order', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 3)).toEqual([]);
  });
});

describe('takeFront', () => {
  const len = (s: string): number => s.length;

  it('takes up to maxItems when the weight allows', () => {
    const items = ['a', 'b', 'c', 'd'];
    expect(takeFront(items, 3, 100, len)).toEqual(['a', 'b', 'c']);
    expect(items).toEqual(['d']);
  });

  it('stops before the item that would pass maxWeight', () => {
    const items = ['aaa', 'bbb', 'cc', 'd'];
    // 3 + 3 = 6 fits, + 2 = 8 > 7 does not
    expect(takeFront(items, 10, 7, len)).toEqual(['aaa', 'bbb']);
    expect(items).toEqual(['cc', 'd']);
    // exactly at the limit is allowed
    expect(takeFront(items, 10, 3, len)).toEqual(['cc', 'd']);
    expect(items).toEqual([]);
  });

  it('always takes the first item, even when it alone is over the limit', () => {
    const items = ['aaaaaaaa', 'b'];
    expect(takeFront(items, 10, 5, len)).toEqual(['aaaaaaaa']);
    expect(takeFront(items, 10, 5, len)).toEqual(['b']);
    expect(takeFront(items, 10, 5, len)).toEqual([]);
  });

  it('drains a list in parts that together are the list', () => {
    const src = Array.from({ length: 50 }, (_, i) => 'x'.repeat((i * 7) % 13 + 1));
    const items = [...src];
    const parts: string[][] = [];
    while (items.length > 0) parts.push(takeFront(items, 6, 20, len));
    expect(parts.flat()).toEqual(src);
    for (const p of parts) {
      expect(p.length).toBeGreaterThan(0);
      expect(p.length).toBeLessThanOrEqual(6);
      if (p.length > 1) expect(p.reduce((n, s) => n + s.length, 0)).toBeLessThanOrEqual(20);
    }
  });
});
