import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows } from '../output.ts';
import { describeDb } from '../../db/connection.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description('connections, last run, checkpoints and quarantine counts')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { format?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const { connectionStatus } = await import('../../status/status.ts');
        const status = await connectionStatus(app.db, app.config);
        if (format === 'json') {
          console.log(JSON.stringify({ database: describeDb({ url: app.config.database.url, dataDir: app.config.database.dataDir }), ...status }, null, 2));
          return;
        }
        console.log(`Database: ${describeDb({ url: app.config.database.url, dataDir: app.config.database.dataDir })}`);
        console.log(renderRows(status.connections.map((c) => ({ connection: c.name, type: c.type, enabled: c.enabled, schedule: c.schedule ?? '', last_run: c.lastRun?.status ?? 'never', last_run_at: c.lastRun?.finishedAt ?? c.lastRun?.startedAt ?? '', last_error: c.lastRun?.error ?? '', quarantined: c.quarantined })), format));
        if (format === 'table' && status.checkpoints.length) {
          console.log('\nCheckpoints');
          console.log(renderRows(status.checkpoints.map((c) => ({ connection: c.connection, stream: c.stream, state: c.state, updated_at: c.updatedAt })), format));
        }
      } finally {
        await app.close();
      }
    });
}
