// Delimited ShareASale text (API reports in pipe or CSV form, and CSV report exports) → rows keyed
// by the header names found at run time. The header row is detected (exports may carry title lines
// above it); rows whose cell count does not match the header are returned as rejects with line numbers.
import { parse } from 'csv-parse/sync';
import { COLUMN_ALIASES, normalizeHeader } from './schemas.ts';

export interface DelimitedRow {
  record: Record<string, string>;
  /** 1-based line number in the text. */
  line: number;
}

export interface DelimitedResult {
  header: string[];
  delimiter: string;
  headerLine: number;
  rows: DelimitedRow[];
  rejects: Array<{ line: number; error: string; raw: string }>;
}

const ID_ALIASES = new Set<string>(COLUMN_ALIASES.transId);
const DATE_ALIASES = new Set<string>(COLUMN_ALIASES.transDate);

export function detectDelimiter(line: string): string {
  const counts: Array<[string, number]> = [
    ['|', line.split('|').length - 1],
    ['\t', line.split('\t').length - 1],
    [',', line.split(',').length - 1],
    [';', line.split(';').length - 1],
  ];
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0]![1] > 0 ? counts[0]![0] : ',';
}

function splitHeader(line: string, delimiter: string): string[] {
  try {
    const rec = parse(line, { delimiter, relax_quotes: true, quote: delimiter === '|' ? false : '"' }) as string[][];
    return (rec[0] ?? []).map((h) => h.trim());
  } catch {
    return line.split(delimiter).map((h) => h.trim().replace(/^"|"$/g, ''));
  }
}

/** True when a line looks like a transaction header: an id column and a date column. */
export function isHeaderLine(cells: string[]): boolean {
  const norm = cells.map(normalizeHeader);
  return norm.some((c) => ID_ALIASES.has(c)) && norm.some((c) => DATE_ALIASES.has(c));
}

/** Finds the header within the first `scanLines` lines. */
export function findHeader(lines: string[], scanLines = 30): { index: number; delimiter: string; header: string[] } | undefined {
  for (let i = 0; i < Math.min(lines.length, scanLines); i++) {
    const l = lines[i]!.replace(/^\uFEFF/, '');
    if (l.trim() === '') continue;
    const delimiter = detectDelimiter(l);
    const cells = splitHeader(l, delimiter);
    // A trailing delimiter gives an empty last header cell: ignore it (and the matching row cells).
    while (cells.length > 0 && cells[cells.length - 1] === '') cells.pop();
    if (isHeaderLine(cells)) return { index: i, delimiter, header: cells };
  }
  return undefined;
}

/**
 * Parses a whole delimited body. `requireHeader` (API replies) treats a body without a recognisable
 * header as an error; an empty body is an empty result.
 */
export function parseDelimited(text: string, opts: { firstLineNumber?: number } = {}): DelimitedResult {
  const lines = text.split(/\r?\n/);
  const base = opts.firstLineNumber ?? 1;
  const found = findHeader(lines);
  if (!found) {
    if (text.trim() === '') return { header: [], delimiter: '|', headerLine: 0, rows: [], rejects: [] };
    throw new Error(`no header row with a transaction id and a date column in the first lines (first line: "${(lines[0] ?? '').slice(0, 120)}")`);
  }
  const out: DelimitedResult = { header: found.header, delimiter: found.delimiter, headerLine: base + found.index, rows: [], rejects: [] };
  // Pipe reports are not quoted (inferred): a stray quote in a comment must not swallow lines.
  const quote = found.delimiter === '|' ? false : '"';
  for (let i = found.index + 1; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNo = base + i;
    if (raw.trim() === '') continue;
    let cells: string[];
    try {
      // An unquoted pipe row is its cells split on the pipe — what csv-parse returns for it, without
      // building a parser per line (most of the parse's cost on a large report). A '\r' (a record
      // delimiter to csv-parse) still goes through csv-parse.
      const rec = quote === false && !raw.includes('\r') ? [raw.split(found.delimiter)] : (parse(raw, { delimiter: found.delimiter, quote, relax_quotes: true, relax_column_count: true }) as string[][]);
      cells = rec[0] ?? [];
    } catch (err) {
      // A quoted field spanning lines: join with the following lines until it parses (CSV exports).
      let joined = raw;
      let j = i;
      let parsed: string[] | undefined;
      while (j + 1 < lines.length && j - i < 20) {
        j++;
        joined += `\n${lines[j]}`;
        try {
          parsed = (parse(joined, { delimiter: found.delimiter, quote, relax_column_count: true }) as string[][])[0];
          break;
        } catch {
          /* keep joining */
        }
      }
      if (!parsed) {
        out.rejects.push({ line: lineNo, error: `unparseable row: ${(err as Error).message}`, raw });
        continue;
      }
      cells = parsed;
      i = j;
    }
    while (cells.length > found.header.length && cells[cells.length - 1]!.trim() === '') cells.pop();
    if (cells.length !== found.header.length) {
      out.rejects.push({ line: lineNo, error: `row has ${cells.length} fields, header has ${found.header.length}`, raw });
      continue;
    }
    const record: Record<string, string> = {};
    found.header.forEach((h, k) => {
      record[h] = (cells[k] ?? '').trim();
    });
    out.rows.push({ record, line: lineNo });
  }
  return out;
}
