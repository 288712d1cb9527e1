import type { Command } from 'commander';
import { z } from 'zod';
import { openApp, type GlobalOptions } from '../context.ts';
import { CONNECTION_TYPES } from '../../config/schema.ts';
import { preflightConnections, selectConnections, syncConnections } from '../../sync/run-connections.ts';
import { withForcedSweep } from '../../sync/lookback.ts';
import { renderRows } from '../output.ts';
import { UserError } from '../../util/errors.ts';
import { formatZodIssues } from '../../util/zod-format.ts';

const optsSchema = z.object({
  source: z.enum(CONNECTION_TYPES).optional(),
  connection: z.string().optional(),
  stream: z.array(z.string()).optional(),
  progress: z.boolean().default(true),
  sweep: z.boolean().default(false),
});

export function register(program: Command): void {
  program
    .command('sync')
    .description('pull configured connections (incremental, checkpointed, resumable)')
    .option('--source <type>', `only connections of this type (${CONNECTION_TYPES.join('|')})`)
    .option('--connection <name>', 'only this connection')
    .option('--stream <name...>', 'only these streams')
    .option('--sweep', 're-read every window stream\'s whole look-back window now (default: every sync.lookback.everyHours)')
    .option('--no-progress', 'no progress output')
    .action(async (raw: unknown, cmd: Command) => {
      const parsed = optsSchema.safeParse(raw);
      if (!parsed.success) throw new UserError(`Invalid options:\n${formatZodIssues(parsed.error)}`);
      const opts = parsed.data;
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
      const { createProgress } = await import('../progress.ts');
      const progress = createProgress(opts.progress);
      try {
        // Invalid options or a missing credential stop before any work (exit 2 naming the field).
        const sel = { source: opts.source, connection: opts.connection, streams: opts.stream };
        await preflightConnections(selectConnections(app.config, sel), app.env);
        const config = opts.sweep ? withForcedSweep(app.config) : app.config;
        const results = await syncConnections({ db: app.db, config, log: app.log, env: app.env, onProgress: (e) => progress.update(e) }, sel);
        progress.stop();
        const rows = results.flatMap((r) =>
          Object.entries(r.streams).map(([stream, s]) => ({ connection: r.connection, stream, pages: s.pages, records: s.records, quarantined: s.quarantined, deleted: s.deleted, run: r.status })),
        );
        console.log(renderRows(rows, 'table'));
        const failed = results.filter((r) => r.status === 'failed');
        for (const f of results.filter((r) => r.error)) console.error(`${f.connection}: ${f.status}: ${f.error}`);
        if (failed.length) process.exitCode = 1;
      } finally {
        progress.stop();
        await app.close();
      }
    });
}
