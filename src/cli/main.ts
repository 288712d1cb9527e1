#!/usr/bin/env node
// commission-sync command line. User errors (bad config, bad flags) print one clear message and
// exit 2 — never a stack trace; unexpected errors print a scrubbed message and exit 1.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('commission-sync')
    .description('Keeps an affiliate program honest: pulls networks and billing, applies the program rules, reconciles and pushes corrections.')
    .option('-c, --config <file>', 'config file (YAML or JSON); default config/commission-sync.yaml or $COMMISSION_SYNC_CONFIG')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option('--db <url-or-dir>', 'postgres://… URL or a PGlite data directory (overrides config)')
    .showHelpAfterError()
    .exitOverride();
  for (const c of commands) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UserError) {
      process.stderr.write(`${scrubSecrets(err.message)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`commission-sync: ${scrubSecrets(errorMessage(err))}\n`);
    if (process.env.COMMISSION_SYNC_DEBUG) process.stderr.write(`${scrubSecrets(String((err as Error)?.stack ?? ''))}\n`);
    return 1;
  }
}

const invokedDirectly = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/commission-sync') || process.argv[1]?.endsWith('main.js') || process.argv[1]?.endsWith('main.ts');
if (invokedDirectly) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`commission-sync: ${scrubSecrets(errorMessage(err))}\n`);
      process.exitCode = 1;
    },
  );
}
