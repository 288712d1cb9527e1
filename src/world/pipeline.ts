// Runs the real pipeline on a world: fakes (started here unless given) → main job (sync → compute →
// reconcile → alerts) on the given database → the demo report. Used by the tests and the benchmark.
import type { Knex } from 'knex';
import type { MainJobSummary } from '../jobs/main-job.ts';
import { runMainJob } from '../jobs/main-job.ts';
import { createLogger } from '../log/logger.ts';
import { demoConfig, loadWorld, startFakes, type DemoConfigOptions, type DemoSetup, type Fakes } from './fakes.ts';
import { buildReport, type DemoReport } from './report.ts';
import type { World } from './build.ts';

export interface PipelineResult {
  summary: MainJobSummary;
  report: DemoReport;
  setup: DemoSetup;
}

export async function runWorldPipeline(opts: { world: World; db: Knex; fakes?: Fakes; now?: Date; config?: DemoConfigOptions; load?: boolean }): Promise<PipelineResult> {
  const fakes = opts.fakes ?? (await startFakes());
  try {
    if (opts.load !== false) loadWorld(fakes, opts.world);
    const setup = demoConfig(fakes, opts.world, { ...opts.config, base: { log: { level: 'error', format: 'json' }, alerts: { sinks: [] }, ...(opts.config?.base ?? {}) } });
    const log = createLogger({ level: 'error', format: 'json' });
    const now = opts.now ?? new Date();
    const summary = await runMainJob({ db: opts.db, config: setup.config, log, env: setup.env }, { now });
    const report = await buildReport(opts.db, setup.config, opts.world, summary, { database: 'test', timings: {}, now });
    return { summary, report, setup };
  } finally {
    if (!opts.fakes) await fakes.close();
  }
}
