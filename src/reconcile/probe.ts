// Look-ups by many values that stay index probes whatever the planner estimates.
//
// `col = ANY(large array)`, OR'ed across columns, is planned as a scan of the whole table once the
// array is large enough (thousands of references per batch of a full run): one scan per batch made
// the full run quadratic in the history. Here each value is looked up on its own through
// unnest + LATERAL (… OFFSET 0, which keeps the subquery from being flattened into a join), and the
// matching ids are collected into an ARRAY(…) whose size the planner cannot see, so the outer
// `id = ANY(ARRAY(…))` is a primary-key probe per id.
import type { Knex } from 'knex';

export interface Lookup {
  /** Column compared with each value (an index on it is what makes this fast). */
  col: string;
  values: string[] | number[];
  type: 'text' | 'bigint';
}

/**
 * `<idCol> = ANY(ARRAY(ids of <table> rows where one lookup's column equals one of its values
 * [and `also`]))` for a knex whereRaw, or undefined when every lookup is empty (no row matches).
 * `extraIds` are ids taken as they are.
 */
export function idsMatching(table: string, idCol: string, lookups: Lookup[], opts: { also?: string; extraIds?: number[] } = {}): { sql: string; bindings: Knex.RawBinding[] } | undefined {
  const parts: string[] = [];
  const bindings: Knex.RawBinding[] = [];
  const also = opts.also ? ` AND ${opts.also}` : '';
  for (const l of lookups) {
    if (l.values.length === 0) continue;
    parts.push(`SELECT x.id FROM unnest(?::${l.type}[]) AS v(v) CROSS JOIN LATERAL (SELECT t.id FROM ${table} t WHERE t.${l.col} = v.v${also} OFFSET 0) x`);
    bindings.push(l.values);
  }
  if (opts.extraIds?.length) {
    parts.push(`SELECT unnest(?::bigint[])`);
    bindings.push(opts.extraIds);
  }
  if (parts.length === 0) return undefined;
  return { sql: `${idCol} = ANY(ARRAY(${parts.join(' UNION ')}))`, bindings };
}
