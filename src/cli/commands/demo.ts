// `commission-sync demo`: the whole job on a realistic world, with nothing to configure. Generates a
// Kartra-like world (or reads --scenario), starts the five fake APIs on free loopback ports, fills
// them, runs the main job (sync → compute → reconcile → alerts) on a fresh embedded PGlite database
// (a temp dir; or --db / DATABASE_URL — a fresh schema there), and prints what it found. Progress
// goes to stderr, the report to stdout (--json: the same as JSON). --serve then serves the
// dashboard on the demo data with a generated operator token.
import type { Command } from 'commander';
import { z } from 'zod';
import type { GlobalOptions } from '../context.ts';
import { UserError } from '../../util/errors.ts';
import { formatZodIssues } from '../../util/zod-format.ts';

export const DEFAULT_DEMO_SIZE = 2000;
export const DEFAULT_DEMO_SEED = 42;

const optsSchema = z.object({
  scenario: z.string().min(1).optional(),
  size: z.coerce.number().int().min(10).max(5_000_000).default(DEFAULT_DEMO_SIZE),
  seed: z.coerce.number().int().min(0).default(DEFAULT_DEMO_SEED),
  json: z.boolean().default(false),
  serve: z.boolean().default(false),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  progress: z.boolean().default(true),
});

export type DemoOptions = z.infer<typeof optsSchema>;

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the whole job on a generated Kartra-like world against local fake APIs and report what it finds (the quick start)')
    .option('--scenario <file>', 'a scenario file (YAML/JSON, docs/scenario.md) instead of a generated world')
    .option('--size <n>', `approximate number of payments of the generated world (default ${DEFAULT_DEMO_SIZE})`)
    .option('--seed <s>', `generator seed (default ${DEFAULT_DEMO_SEED})`)
    .option('--json', 'print the report as JSON (stable keys, money in minor units with currency)')
    .option('--serve', 'then serve the dashboard on the demo data (Ctrl-C to stop)')
    .option('--port <port>', 'port for --serve (default 8080; 0 = any free port)')
    .option('--no-progress', 'no progress output on stderr')
    .addHelpText('after', '\nThe database: --db <postgres-url|pglite-dir>, else DATABASE_URL (a fresh schema), else a fresh embedded PGlite in a temp dir.')
    .action(async (raw: Record<string, unknown>, cmd: Command) => {
      const parsed = optsSchema.safeParse(raw);
      if (!parsed.success) throw new UserError(`Invalid options:\n${formatZodIssues(parsed.error)}`);
      const opts = parsed.data;
      // The world generator, the five fake APIs and the report load only for the demo.
      const { runDemo } = await import('../demo-run.ts');
      await runDemo(opts, cmd.optsWithGlobals<GlobalOptions>());
    });
}
