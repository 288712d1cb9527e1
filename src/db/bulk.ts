// Multi-row writes as ONE statement with ONE parameter: the rows go over as a JSON array and
// json_populate_recordset turns them into rows of the target table's own type. Compared with a
// knex multi-row VALUES insert this saves the per-value placeholder work on both sides (knex
// numbering thousands of bindings, pg encoding each, the server planning a wide VALUES list), which
// was a large share of the sync's CPU. Works the same on PostgreSQL and PGlite.
import type { Knex } from 'knex';

/** A value that is already JSON text (e.g. a raw API payload for a jsonb column), embedded as is. */
export class JsonText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

export type BulkRow = Record<string, unknown>;

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

function rowsJson(rows: BulkRow[], cols: string[]): string {
  const keys = cols.map((c) => JSON.stringify(c));
  const parts: string[] = [];
  for (const r of rows) {
    let s = '{';
    for (let i = 0; i < cols.length; i++) {
      const v = r[cols[i]!];
      if (i > 0) s += ',';
      s += keys[i] + ':' + (v instanceof JsonText ? v.text : v === undefined ? 'null' : JSON.stringify(v));
    }
    parts.push(s + '}');
  }
  return `[${parts.join(',')}]`;
}

export interface BulkInsertOptions {
  /** Text after ON CONFLICT, e.g. `(connection, stream, external_id) DO NOTHING`. */
  onConflict?: string;
  returning?: string[];
  /** Rows per statement (the JSON text of one statement stays a few MB at most). */
  chunkSize?: number;
}

/**
 * INSERT INTO table (cols of the first row) SELECT … FROM json_populate_recordset(NULL::table, $1).
 * Dates serialize as ISO strings, objects as JSON (for json/jsonb columns), JsonText verbatim.
 */
export async function bulkInsert<R = Record<string, unknown>>(db: Knex, table: string, rows: BulkRow[], opts: BulkInsertOptions = {}): Promise<R[]> {
  if (rows.length === 0) return [];
  const cols = Object.keys(rows[0]!);
  const colList = cols.map(ident).join(', ');
  const tail = `${opts.onConflict ? ` ON CONFLICT ${opts.onConflict}` : ''}${opts.returning?.length ? ` RETURNING ${opts.returning.map(ident).join(', ')}` : ''}`;
  const sql = `INSERT INTO ${ident(table)} (${colList}) SELECT ${colList} FROM json_populate_recordset(NULL::${ident(table)}, ?::json)${tail}`;
  const size = opts.chunkSize ?? 2_000;
  const out: R[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const res = await db.raw(sql, [rowsJson(rows.slice(i, i + size), cols)]);
    if (opts.returning?.length) out.push(...(res.rows as R[]));
  }
  return out;
}

/** `(k1, k2) DO UPDATE SET c = excluded.c, …` for bulkInsert's onConflict. */
export function upsertClause(conflict: string[], merge: string[]): string {
  return `(${conflict.map(ident).join(', ')}) DO UPDATE SET ${merge.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(', ')}`;
}
