// ShareASale CSV history importer: transaction reports exported from the ShareASale UI (years of
// history that the API no longer serves). The header row is detected (title lines above it are
// skipped), columns are mapped by name, bad rows are quarantined with their line numbers, and rows
// upsert on the transaction id — so re-importing a file, or importing overlapping exports, is
// idempotent and merges with the API stream of the same connection.
// It runs through the sync engine as stream `csv_history` (raw store, quarantine, checkpoint, run row).
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig } from '../../src/config/schema.ts';
import type { Json, Page, StreamDef } from '../../src/sync/types.ts';
import { runStreams, type ProgressEvent, type SyncRunResult } from '../../src/sync/engine.ts';
import { ConfigError, UserError } from '../../src/util/errors.ts';
import { shareasaleOptionsSchema, transactionRowSchema, type SasTransaction } from './schemas.ts';
import { findHeader } from './delimited.ts';
import { writeSasTransactions } from './streams.ts';

export interface CsvImportOptions {
  db: Knex;
  config: Config;
  connection: ConnectionConfig;
  log: Logger;
  file: string;
  batchSize?: number;
  onProgress?: (e: ProgressEvent) => void;
  /** Called once the header is found. */
  onHeader?: (h: { line: number; delimiter: string; columns: string[] }) => void;
  now?: Date;
}

export interface CsvImportResult {
  run: SyncRunResult;
  headerLine: number;
  columns: string[];
  rows: number;
  quarantined: number;
}

interface CsvState {
  [k: string]: Json;
  v: 1;
  fileHash: string;
  /** Lines up to here were committed (resume point for the same file). */
  doneThroughLine: number;
  done: boolean;
}

/** Time zone and currency only: the importer needs no credentials or merchant id. */
const importOptions = shareasaleOptionsSchema.pick({ timezone: true, currency: true });

async function fileHash(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function headLines(file: string, bytes = 64 * 1024): Promise<string[]> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8').split(/\r?\n/);
  } finally {
    await fh.close();
  }
}

export async function importShareASaleCsv(o: CsvImportOptions): Promise<CsvImportResult> {
  const parsedOpts = importOptions.safeParse(o.connection.options ?? {});
  if (!parsedOpts.success) {
    throw new ConfigError(parsedOpts.error.issues.map((i) => `connections.${o.connection.name}.options.${i.path.join('.')}: ${i.message}`).join('\n'));
  }
  const { timezone, currency } = parsedOpts.data;
  let lines: string[];
  try {
    lines = await headLines(o.file);
  } catch (err) {
    throw new UserError(`Cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const header = findHeader(lines);
  if (!header) {
    throw new UserError(`${o.file}: no header row found in the first 30 lines (expected columns such as "Trans ID" and "Trans Date"). Export the Transaction Detail report as CSV.`);
  }
  const headerLine = header.index + 1;
  o.onHeader?.({ line: headerLine, delimiter: header.delimiter, columns: header.header });
  const hash = await fileHash(o.file);
  const name = path.basename(o.file);
  const batchSize = o.batchSize ?? 1000;
  const schema = transactionRowSchema({ timezone, currency, ...(o.now ? { now: () => o.now! } : {}) });
  let rows = 0;
  let quarantined = 0;

  const stream: StreamDef<SasTransaction, CsvState> = {
    name: 'csv_history',
    schema,
    key: (r) => r.transId,
    recordTime: (r) => new Date(r.occurredAt),
    initialState: () => ({ v: 1, fileHash: hash, doneThroughLine: 0, done: false }),
    async *read(_ctx, state): AsyncIterable<Page<CsvState>> {
      // A finished or different file starts from the top; an interrupted import of this file resumes.
      const resumeAfter = state.fileHash === hash && !state.done ? state.doneThroughLine : 0;
      const parser = createReadStream(o.file).pipe(
        parse({
          delimiter: header.delimiter,
          from_line: headerLine + 1,
          bom: true,
          // Pipe exports are not quoted (inferred); CSV exports quote fields with commas.
          quote: header.delimiter === '|' ? false : '"',
          relax_quotes: true,
          relax_column_count: true,
          skip_empty_lines: true,
          skip_records_with_error: true,
          info: true,
        }),
      );
      let records: unknown[] = [];
      let rejects: NonNullable<Page<CsvState>['rejects']> = [];
      let lastLine = headerLine;
      const flush = (done: boolean): Page<CsvState> => {
        const page: Page<CsvState> = { records, rejects, state: { v: 1, fileHash: hash, doneThroughLine: lastLine, done } };
        rows += records.length;
        quarantined += rejects.length;
        records = [];
        rejects = [];
        return page;
      };
      parser.on('skip', (err: Error & { lines?: number }) => {
        const line = err.lines ?? lastLine + 1;
        if (line > resumeAfter) rejects.push({ payload: { file: name, line }, error: `unparseable row: ${err.message}`, location: `${name}:line ${line}` });
      });
      for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
        const line = item.info.lines;
        lastLine = line;
        if (line <= resumeAfter) continue;
        const cells = [...item.record];
        while (cells.length > header.header.length && (cells[cells.length - 1] ?? '').trim() === '') cells.pop();
        if (cells.every((c) => c.trim() === '')) continue;
        const loc = `${name}:line ${line}`;
        if (cells.length !== header.header.length) {
          rejects.push({ payload: { file: name, line, cells }, error: `row has ${cells.length} fields, header has ${header.header.length}`, location: loc });
        } else {
          const rec: Record<string, string> = {};
          header.header.forEach((h, k) => {
            rec[h] = (cells[k] ?? '').trim();
          });
          // Validated here (not only by the engine) so a bad row is quarantined with its line number.
          const v = schema.safeParse(rec);
          if (v.success) records.push(rec);
          else rejects.push({ payload: { file: name, line, row: rec }, error: v.error.issues.map((i) => i.message).join('; '), location: loc });
        }
        if (records.length + rejects.length >= batchSize) yield flush(false);
      }
      yield flush(true);
    },
    write: (trx, recs, ctx) => writeSasTransactions(trx, recs, { connection: ctx.connection.name, currency }),
  };

  const run = await runStreams({
    db: o.db,
    config: o.config,
    connection: o.connection,
    streams: [stream],
    log: o.log,
    runKind: 'import',
    ...(o.now ? { now: o.now } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  return { run, headerLine, columns: header.header, rows, quarantined };
}
