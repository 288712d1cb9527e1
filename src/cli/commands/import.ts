// `commission-sync import shareasale <file> [--connection name]`: loads ShareASale transaction report
// exports (CSV or pipe) into the network commissions of a ShareASale connection. Idempotent on the
// transaction id; bad rows are quarantined with their line numbers.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { connectionSchema, type Config, type ConnectionConfig } from '../../config/schema.ts';
import { UserError } from '../../util/errors.ts';
import { renderRows } from '../output.ts';

const SOURCES = ['shareasale'] as const;

/** The named connection, the only ShareASale connection, or an ad-hoc `shareasale-csv` one. */
export function importConnection(config: Config, name: string | undefined): ConnectionConfig {
  const sas = config.connections.filter((c) => c.type === 'shareasale');
  if (name) {
    const c = config.connections.find((x) => x.name === name);
    if (!c) throw new UserError(`--connection: no connection named "${name}" in the configuration (ShareASale connections: ${sas.map((x) => x.name).join(', ') || 'none'})`);
    if (c.type !== 'shareasale') throw new UserError(`--connection: "${name}" is a ${c.type} connection, not shareasale`);
    return c;
  }
  if (sas.length === 1) return sas[0]!;
  if (sas.length > 1) throw new UserError(`Several ShareASale connections are configured (${sas.map((x) => x.name).join(', ')}); choose one with --connection`);
  // No API connection: history still imports, under its own connection name.
  return connectionSchema.parse({ name: 'shareasale-csv', type: 'shareasale' });
}

export function register(program: Command): void {
  program
    .command('import')
    .description('import exported network reports: import shareasale <file> (CSV/pipe transaction report)')
    .argument('<source>', `report source (${SOURCES.join('|')})`)
    .argument('<file>', 'the exported report file')
    .option('--connection <name>', 'ShareASale connection to import into (default: the only one configured, else "shareasale-csv")')
    .option('--batch-size <n>', 'rows per committed batch', '1000')
    .option('--no-progress', 'no progress output')
    .action(async (source: string, file: string, opts: { connection?: string; batchSize?: string; progress?: boolean }, cmd: Command) => {
      if (!(SOURCES as readonly string[]).includes(source)) throw new UserError(`import: unknown source "${source}" (expected ${SOURCES.join('|')})`);
      const batchSize = Number(opts.batchSize ?? '1000');
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError('--batch-size: expected a positive integer');
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
      const { createProgress } = await import('../progress.ts');
      const progress = createProgress(opts.progress !== false);
      try {
        const connection = importConnection(app.config, opts.connection);
        const { importShareASaleCsv } = await import('../../../connectors/shareasale/csv-import.ts');
        const res = await importShareASaleCsv({
          db: app.db,
          config: app.config,
          connection,
          log: app.log,
          file,
          batchSize,
          onHeader: (h) => {
            if (opts.progress !== false) process.stderr.write(`  ${file}: header on line ${h.line} (${h.columns.length} columns, delimiter "${h.delimiter === '\t' ? '\\t' : h.delimiter}")\n`);
          },
          onProgress: (e) => progress.update(e),
        });
        progress.stop();
        console.log(
          renderRows(
            [{ connection: connection.name, file, header_line: res.headerLine, rows_imported: res.rows, quarantined: res.quarantined, run: res.run.status }],
            'table',
          ),
        );
        if (res.quarantined > 0) console.log(`${res.quarantined} row(s) quarantined with their line numbers: see the quarantine table (stream csv_history).`);
        if (res.run.status !== 'succeeded') {
          console.error(`${connection.name}: ${res.run.status}: ${res.run.error ?? ''}`);
          process.exitCode = 1;
        }
      } finally {
        progress.stop();
        await app.close();
      }
    });
}
