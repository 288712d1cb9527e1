// Renders rows for the terminal (table), machines (json) and spreadsheets (csv).
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { scrubValue } from '../util/secrets.ts';

export const formatSchema = z.enum(['table', 'json', 'csv']);
export type Format = z.infer<typeof formatSchema>;

export function parseFormat(value: unknown): Format {
  const r = formatSchema.safeParse(value ?? 'table');
  if (!r.success) throw new UserError(`--format: expected one of table, json, csv (got "${String(value)}")`);
  return r.data;
}

export function renderRows(rows: Array<Record<string, unknown>>, format: Format, columns?: string[]): string {
  const safe = scrubValue(rows);
  if (format === 'json') return JSON.stringify(safe, null, 2);
  const cols = columns ?? [...new Set(safe.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
  if (format === 'csv') return stringify([cols, ...safe.map((r) => cols.map((c) => cell(r[c])))]).trimEnd();
  if (safe.length === 0) return '(none)';
  const t = new Table({ head: cols, style: { head: [], border: [] } });
  for (const r of safe) t.push(cols.map((c) => cell(r[c])));
  return t.toString();
}

/** USD minor units as $1,234.56 for humans; machines get the integer. */
export function usd(minor: number | null | undefined): string {
  if (minor === null || minor === undefined) return '';
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}$${Math.floor(abs / 100).toLocaleString('en-US')}.${String(abs % 100).padStart(2, '0')}`;
}
