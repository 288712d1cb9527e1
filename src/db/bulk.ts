// Multi-row writes as ONE statement with ONE parameter: the rows go over as a JSON array and
// json_populate_recordset turns them into rows of the target table's own type. Compared with a
// knex multi-row VALUES insert this saves the per-value placeholder work on both sides (knex
// numbering thousands of bindings, pg encoding each, the server planning a wide VALUES list), which
// was a large share of the sync's CPU. Works the same on PostgreSQL and PGlite.
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { isPglite } from './connection.ts';
import { takeFront } from '../util/chunk.ts';

/**
 * The JSON text (in chars) one multi-row statement carries on PGlite. Its protocol writer copies a
 * statement's text about five times in JS on the way into the WASM heap (12.5 MB of ArrayBuffers
 * for a 2.5 MB parameter), and that heap keeps the high-water mark of what Postgres allocated for
 * the statement: smaller statements kept the 100k compute ~30 MB lower (bench/README, eleventh
 * round). PostgreSQL gets no such limit; its statements are bounded by their row counts.
 */
export const PGLITE_STATEMENT_CHARS = 750_000;

/** The char limit of one multi-row statement on this database: PGLITE_STATEMENT_CHARS on PGlite, else `postgres`. */
export function statementChars(db: Knex, postgres = Infinity): number {
  return isPglite(db) ? PGLITE_STATEMENT_CHARS : postgres;
}

// JsonText values serialize (through toJSON) as a numbered marker string; the markers are then
// replaced by the texts in one pass, so the rows themselves go through the native JSON.stringify.
// A per-call random nonce in the marker means no real string value can be mistaken for one.
let pendingTexts: string[] = [];
let mark = '';

/** A value that is already JSON text (e.g. a raw API payload for a jsonb column), embedded as is. */
export class JsonText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toJSON(): string {
    pendingTexts.push(this.text);
    return `${mark}${pendingTexts.length - 1}`;
  }
}

export type BulkRow = Record<string, unknown>;

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The rows as one JSON array (every row carries the same keys: they are built by one literal). */
function rowsJson(rows: BulkRow[]): string {
  pendingTexts = [];
  const nonce = randomBytes(6).toString('hex');
  mark = `\u0001${nonce}:`;
  try {
    const json = JSON.stringify(rows);
    const texts = pendingTexts;
    return texts.length === 0 ? json : json.replace(new RegExp(`"\\\\u0001${nonce}:(\\d+)"`, 'g'), (_m, i: string) => texts[Number(i)]!);
  } finally {
    pendingTexts = [];
  }
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
    const res = await db.raw(sql, [rowsJson(rows.slice(i, i + size))]);
    if (opts.returning?.length) out.push(...(res.rows as R[]));
  }
  return out;
}

export interface TextRowsSpec {
  /** Columns each row text carries (its JSON keys), with their SQL types (json_to_recordset needs them). */
  columns: Array<[name: string, type: string]>;
  /** Columns with one value for every row: sent once per statement as parameters, not in every row. */
  constants?: Array<[name: string, type: string, value: string | number | null]>;
  /** Text after ON CONFLICT. */
  onConflict?: string;
  chunkSize?: number;
}

/**
 * bulkInsert for rows the caller already serialized, each a JSON object text with `columns` as keys.
 * For rows that embed a large JSON text (raw payloads) this skips bulkInsert's second pass over the
 * whole statement text (the marker replacement), and columns equal for every row (connection,
 * stream, run, timestamps) go once as parameters instead of in each row: fewer bytes to send and
 * for the server to parse.
 */
export async function bulkInsertTexts(db: Knex, table: string, rowTexts: string[], spec: TextRowsSpec): Promise<void> {
  if (rowTexts.length === 0) return;
  const constants = spec.constants ?? [];
  const target = [...constants.map((c) => c[0]), ...spec.columns.map((c) => c[0])].map(ident).join(', ');
  const values = [...constants.map((c) => `?::${c[1]}`), ...spec.columns.map((c) => `r.${ident(c[0])}`)].join(', ');
  const shape = spec.columns.map(([n, t]) => `${ident(n)} ${t}`).join(', ');
  const sql = `INSERT INTO ${ident(table)} (${target}) SELECT ${values} FROM json_to_recordset(?::json) AS r(${shape})${spec.onConflict ? ` ON CONFLICT ${spec.onConflict}` : ''}`;
  const size = spec.chunkSize ?? 2_000;
  const chars = statementChars(db);
  const rest = rowTexts.slice();
  while (rest.length > 0) await db.raw(sql, [...constants.map((c) => c[2]), `[${takeFront(rest, size, chars, textLength).join(',')}]`]);
}

const textLength = (t: string): number => t.length + 1;

/**
 * `(k1, k2) DO UPDATE SET c = excluded.c, …`. With `skipUnchangedOn` (the target table's name) the
 * update only happens when a merged column other than `ignore` (bookkeeping such as updated_at)
 * differs: an unchanged re-synced row then costs no new row version, WAL or index entries — and
 * is not RETURNed, so a caller that needs every row's id must look the skipped ones up.
 */
export function upsertClause(conflict: string[], merge: string[], opts: { skipUnchangedOn?: string; ignore?: string[]; set?: Record<string, string> } = {}): string {
  const sets = merge.map((c) => `${ident(c)} = ${opts.set?.[c] ?? `excluded.${ident(c)}`}`);
  let sql = `(${conflict.map(ident).join(', ')}) DO UPDATE SET ${sets.join(', ')}`;
  if (opts.skipUnchangedOn) {
    const t = ident(opts.skipUnchangedOn);
    const cols = merge.filter((c) => !(opts.ignore ?? []).includes(c));
    const target = cols.map((c) => `${t}.${ident(c)}`).join(', ');
    const next = cols.map((c) => opts.set?.[c] ?? `excluded.${ident(c)}`).join(', ');
    sql += ` WHERE (${target}) IS DISTINCT FROM (${next})`;
  }
  return sql;
}

/** upsertClause `set` for deleted_at: null when the row is live again, else when it was first seen deleted. */
export const keepFirstDeletion = (table: string): string => `CASE WHEN excluded.deleted_at IS NULL THEN NULL ELSE coalesce(${ident(table)}.deleted_at, excluded.deleted_at) END`;
