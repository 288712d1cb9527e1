// The CLI's V8 heap flags. Measured (--trace-gc, bench/README.md sixth round): the pipeline's live
// heap is 40–75 MB after every full GC of a 10k or 100k sync, compute and reconcile, but with Node's
// defaults on a machine with a few GB V8 lets the young generation grow to 3 × 64 MB and 150–250 MB
// of garbage build up between full GCs: most of the peak RSS. A small young generation takes
// 100–150 MB off the peak. The old generation then still grows to up to 4 × what survived the last
// full GC before the next one (V8's dynamic factor, at most 4 on a machine with a few GB): a fixed
// factor (--heap-growing-percent) takes another 140–180 MB off a 100k PostgreSQL run's peak for a fifth
// more CPU, most of it on the second core (bench/README.md, tenth round). Neither is a cap, so a
// large history never runs out of heap because of them (an old-space cap lowers the peak further
// but is a hard limit, hence opt-in). V8 reads these flags only at start, so the CLI restarts itself
// once with them (process.execve: same pid, same stdio, nothing left running beside it).

import { spawnSync } from 'node:child_process';
import { GLOBAL_VALUE_OPTIONS } from './global-options.ts';

/** Default flags; COMMISSION_SYNC_NODE_FLAGS replaces them (`off`: none). */
export const DEFAULT_NODE_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50'];

/** Commands that keep their own memory profile: `demo` holds the generated world and the fakes in-process. */
const EXEMPT_COMMANDS = new Set(['demo']);
const REEXEC_MARK = 'COMMISSION_SYNC_NODE_FLAGS_APPLIED';

function commandOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

const flagName = (f: string): string => f.replace(/^--?/, '').split('=')[0]!.replace(/_/g, '-');

/**
 * The flags to restart with, or undefined to run as is: not for exempt commands or no command
 * (help), not twice, and never a flag the user already gave Node (command line or NODE_OPTIONS):
 * theirs wins.
 */
export function nodeFlagsToApply(argv: string[], execArgv: string[], env: NodeJS.ProcessEnv): string[] | undefined {
  if (env[REEXEC_MARK]) return undefined;
  const setting = env.COMMISSION_SYNC_NODE_FLAGS?.trim();
  if (setting === 'off' || setting === '0') return undefined;
  const wanted = setting ? setting.split(/\s+/) : DEFAULT_NODE_FLAGS;
  const command = commandOf(argv.slice(2));
  if (!command || EXEMPT_COMMANDS.has(command)) return undefined;
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((f) => f.startsWith('-')).map(flagName));
  const flags = wanted.filter((f) => !given.has(flagName(f)));
  return flags.length ? flags : undefined;
}

/**
 * The flags whose acceptance must be tried before the restart: neither listed by Node nor one of the
 * defaults (V8 flags of ours: the tests check that the Node running them takes them, and a probe
 * would cost every command a throw-away Node start, ~50 ms).
 */
export function flagsToProbe(flags: string[]): string[] {
  return flags.filter((f) => !process.allowedNodeEnvironmentFlags.has(`--${flagName(f)}`) && !DEFAULT_NODE_FLAGS.includes(f));
}

/**
 * Why Node would refuse these flags at start, or undefined if it takes them. The flags Node lists
 * (process.allowedNodeEnvironmentFlags) and the defaults need no check; any other (a V8 flag such
 * as --trace-gc, or a typo) is tried once in a throw-away `node -e ""`, so that a bad value
 * stops here naming the variable instead of the restarted process dying with "bad option".
 */
export function rejectedNodeFlags(flags: string[]): string | undefined {
  const unknown = flagsToProbe(flags);
  if (unknown.length === 0) return undefined;
  const r = spawnSync(process.execPath, [...unknown, '-e', ''], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return undefined;
  return (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]!.replace(/^.*?: /, '');
}

/** Restarts this process with the heap flags when they apply and the platform can (POSIX execve). */
export function applyNodeFlags(): void {
  const flags = nodeFlagsToApply(process.argv, process.execArgv, process.env);
  if (!flags || typeof process.execve !== 'function') return;
  const rejected = rejectedNodeFlags(flags);
  if (rejected) {
    process.stderr.write(`commission-sync: COMMISSION_SYNC_NODE_FLAGS: Node does not accept ${JSON.stringify(flags.join(' '))} (${rejected}); fix it, or set it to "off"\n`);
    process.exit(2);
  }
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...flags, ...process.argv.slice(1)], { ...process.env, [REEXEC_MARK]: flags.join(' ') });
  } catch {
    // Could not restart (e.g. a worker thread, a sandbox): run with Node's defaults.
  }
}
