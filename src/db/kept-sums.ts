// Sums kept by difference: statement triggers append each write's signed difference per group to a
// small table (compute_totals, migration 014; discrepancy_counts, 015), so a run reads a handful of
// rows instead of aggregating the history.
import type { Knex } from 'knex';

/**
 * Folds the differences appended since the last fold into one row per group (one statement: a
 * concurrent writer's uncommitted rows are not touched, a concurrent fold's are skipped, never
 * counted twice), then reads the sums per group, without groups whose first sum column is 0.
 * Names are the caller's constants, never input.
 */
export async function foldKeptSums(db: Knex | Knex.Transaction, table: string, groups: readonly string[], sums: readonly string[]): Promise<Array<Record<string, unknown>>> {
  const g = groups.join(', ');
  const cols = [...groups, ...sums].join(', ');
  const summed = sums.map((c) => `sum(${c}) AS ${c}`).join(', ');
  await db.raw(
    `WITH d AS (DELETE FROM ${table} RETURNING ${cols})
     INSERT INTO ${table} (${cols}) SELECT ${g}, ${summed} FROM d GROUP BY ${g} HAVING ${sums.map((c) => `sum(${c}) <> 0`).join(' OR ')}`,
  );
  return (await db.raw(`SELECT ${g}, ${summed} FROM ${table} GROUP BY ${g} HAVING sum(${sums[0]!}) <> 0 ORDER BY ${g}`)).rows as Array<Record<string, unknown>>;
}
