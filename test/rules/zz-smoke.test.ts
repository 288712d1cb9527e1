import { test } from 'vitest';
import { Scenario } from './helpers.ts';
import { explainCommission } from '../../src/rules/explain.ts';
test('smoke', () => {
  const s = new Scenario().partner('A').customer('c1', 'A').pay('p1', 'c1', '2025-01-03', 8000).pay('p2','c1','2025-02-03',8000);
  const rows = s.compute('2025-06-01');
  for (const r of rows) console.log(explainCommission(r).join('\n'));
  console.log(JSON.stringify(rows[0], null, 1));
});
