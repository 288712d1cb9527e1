import { describe, expect, it } from 'vitest';
import { mapAhead } from '../streams.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

async function* listed(n: number, log: string[], failAt?: number): AsyncIterable<number> {
  for (let i = 1; i <= n; i++) {
    log.push(`list ${i} start`);
    await tick();
    if (i === failAt) throw new Error(`list ${i} failed`);
    log.push(`list ${i} done`);
    yield i;
  }
}

describe('mapAhead (page look-ups while the next page is listed)', () => {
  it('hands pages out in order, mapping page n while page n+1 is listed', async () => {
    const log: string[] = [];
    const out: string[] = [];
    for await (const p of mapAhead(listed(3, log), async (i) => {
      log.push(`map ${i} start`);
      await tick();
      await tick();
      log.push(`map ${i} done`);
      return `p${i}`;
    })) out.push(p);
    expect(out).toEqual(['p1', 'p2', 'p3']);
    // Page 2 was being listed while page 1 was mapped.
    expect(log.indexOf('list 2 start')).toBeLessThan(log.indexOf('map 1 done'));
  });

  it('drops the page in flight when listing fails, and raises a mapping failure', async () => {
    const got: number[] = [];
    await expect(async () => {
      for await (const p of mapAhead(listed(5, [], 3), async (i) => i)) got.push(p);
    }).rejects.toThrow('list 3 failed');
    expect(got).toEqual([1]); // page 2 was listed but its mapping not handed out before the failure
    const got2: number[] = [];
    await expect(async () => {
      for await (const p of mapAhead(listed(5, []), async (i) => {
        if (i === 2) throw new Error('map 2 failed');
        return i;
      })) got2.push(p);
    }).rejects.toThrow('map 2 failed');
    expect(got2).toEqual([1]);
  });
});
