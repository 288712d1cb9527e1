// Pipe rows are split by hand; every row must come out as csv-parse (the general path) reads it.
import { describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { parseDelimited } from '../delimited.ts';

describe('pipe report rows split without csv-parse', () => {
  it('gives csv-parse\'s cells for odd rows (quotes, empty cells, spaces, trailing pipes, tabs, commas)', () => {
    const header = 'Trans ID|User ID|Trans Date|Commission|Comment|Order Number|';
    const rows = [
      '1|500|01/01/2025 03:04:05 PM|1.00|plain|in_1|',
      '2|501|01/02/2025|2.00|"quoted|in_2|',
      '3|502|01/03/2025|3.00| spaced , with, commas |in_3|',
      '4|503|01/04/2025|4.00||in_4|',
      '5|504|01/05/2025|5.00|a "quote" inside|in_5||',
      '6|505|01/06/2025|6.00|tab\there|in_6',
      '7|506|01/07/2025|7.00|ünïcödé ✓|in_7|',
      '8|507|01/08/2025',
    ];
    const got = parseDelimited([header, ...rows].join('\n'));
    const cells = (line: string) => (parse(line, { delimiter: '|', quote: false, relax_quotes: true, relax_column_count: true }) as string[][])[0]!;
    const head = ['Trans ID', 'User ID', 'Trans Date', 'Commission', 'Comment', 'Order Number'];
    const expected = rows
      .map((r, i) => {
        const c = cells(r);
        while (c.length > head.length && c[c.length - 1]!.trim() === '') c.pop();
        return c.length === head.length ? { record: Object.fromEntries(head.map((h, k) => [h, c[k]!.trim()])), line: i + 2 } : null;
      })
      .filter((x) => x !== null);
    expect(got.rows).toEqual(expected);
    expect(got.rows).toHaveLength(7);
    expect(got.rows[1]!.record.Comment).toBe('"quoted');
    expect(got.rejects.map((r) => r.line)).toEqual([9]);
  });
});
