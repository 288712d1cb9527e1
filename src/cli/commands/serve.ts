// `commission-sync serve`: the production process (the Dockerfile's default command). Starts the HTTP
// service (health, metrics, webhooks, ops API, dashboard) and the scheduler; on SIGTERM/SIGINT stops
// taking new fires, lets running jobs finish (schedules.shutdownGraceSeconds), closes HTTP and the pool.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { describeDb } from '../../db/connection.ts';
import type { Scheduler } from '../../scheduler/scheduler.ts';
import { UserError, errorMessage } from '../../util/errors.ts';
import { scrubSecrets } from '../../util/secrets.ts';

interface ServeOptions {
  host?: string;
  port?: string;
  scheduler?: boolean;
  http?: boolean;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the service: HTTP API, webhooks, metrics, dashboard and the scheduler')
    .option('--host <host>', 'listen address (default server.host)')
    .option('--port <port>', 'listen port (default server.port or $PORT)')
    .option('--no-scheduler', 'HTTP only: do not run scheduled jobs in this process')
    .action(async (opts: ServeOptions, cmd: Command) => {
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UserError(`--port: expected 0-65535, got "${opts.port}"`);
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      // Loaded here, not at the top: every other command (a cron `run` above all) starts without
      // fastify, the scheduler and the metrics registry.
      const [{ Scheduler }, { buildJobs }, { buildServer }, { ServiceMetrics }] = await Promise.all([import('../../scheduler/scheduler.ts'), import('../../scheduler/jobs.ts'), import('../../service/server.ts'), import('../../service/metrics.ts')]);
      const app = await openApp(globals);
      const { config, log, db, env } = app;
      const metrics = new ServiceMetrics(db);
      let scheduler: Scheduler | undefined;
      if (opts.scheduler !== false) {
        const jobs = await buildJobs({ db, config, log, env, onSyncResult: (r) => metrics.observeSync(r) });
        scheduler = new Scheduler({
          db,
          log: log.child({ component: 'scheduler' }),
          jobs,
          timezone: config.timezone,
          leaseMs: config.schedules.leaseSeconds * 1000,
          observer: { onFinished: (job, outcome, ms) => metrics.observeJob(job, outcome, ms) },
        });
      }
      const { app: http } = await buildServer({ db, config, log, env, scheduler, metrics });
      const host = opts.host ?? config.server.host;
      const address = await http.listen({ host, port: port ?? config.server.port });
      scheduler?.start();
      log.info({ address, database: describeDb(globals.db ? (/^(postgres|memory:)/.test(globals.db) ? { url: globals.db } : { dataDir: globals.db }) : { url: config.database.url, dataDir: config.database.dataDir }), scheduler: scheduler ? scheduler.owner : 'off' }, 'commission-sync serving');
      // A line on stdout for humans and process supervisors (tests wait for it).
      process.stdout.write(`listening on ${address}\n`);

      await new Promise<void>((resolve) => {
        let stopping = false;
        const shutdown = (signal: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'shutting down');
          void (async () => {
            try {
              await scheduler?.stop(config.schedules.shutdownGraceSeconds * 1000);
              await http.close();
            } catch (err) {
              log.error({ err: scrubSecrets(errorMessage(err)) }, 'error during shutdown');
            } finally {
              await app.close();
              log.info('stopped');
              resolve();
            }
          })();
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
    });
}
