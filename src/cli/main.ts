#!/usr/bin/env node
// commission-sync command line. User errors (bad config, bad flags) print one clear message and
// exit 2 — never a stack trace; unexpected errors print a scrubbed message and exit 1.
import module from 'node:module';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError, errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';
import { cacheDir } from '../db/pglite-template.ts';
import { applyNodeFlags } from './heap.ts';
import { GLOBAL_OPTIONS } from './global-options.ts';

export async function buildProgram(): Promise<Command> {
  const [{ Command: CommandClass }, { commands }] = await Promise.all([import('commander'), import('./commands/index.ts')]);
  const program = new CommandClass();
  program
    .name('commission-sync')
    .description('Keeps an affiliate program honest: pulls networks and billing, applies the program rules, reconciles and pushes corrections.')
    .showHelpAfterError()
    .exitOverride();
  for (const o of GLOBAL_OPTIONS) program.option(o.flags, o.description);
  for (const c of commands) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const [program, { CommanderError }] = await Promise.all([buildProgram(), import('commander')]);
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

/**
 * Every command is a cold process (cron runs `run`), and compiling the modules it loads (knex, pg,
 * zod, the connectors, the SDKs…) is a fixed cost of each. Node's compile cache keeps V8's compiled
 * code on disk (<cache dir>/node-compile-cache, one subdirectory per Node version; checked against
 * each file's contents), so later starts skip most of it. Enabled before the command modules load
 * (hence their dynamic imports above); off with COMMISSION_SYNC_CACHE_DIR=off or
 * NODE_DISABLE_COMPILE_CACHE=1, elsewhere with NODE_COMPILE_CACHE.
 */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = cacheDir(env);
  if (!dir || typeof module.enableCompileCache !== 'function') return undefined;
  try {
    return module.enableCompileCache(env.NODE_COMPILE_CACHE || path.join(dir, 'node-compile-cache')).directory;
  } catch {
    return undefined; // an unwritable cache only costs the saving
  }
}

const invokedDirectly = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/commission-sync') || process.argv[1]?.endsWith('main.js') || process.argv[1]?.endsWith('main.ts');
if (invokedDirectly) {
  applyNodeFlags(); // restarts this process once with the heap flags (src/cli/heap.ts)
  enableCompileCache();
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
