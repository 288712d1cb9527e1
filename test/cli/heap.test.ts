// The CLI restarts itself once with its V8 heap flags (src/cli/heap.ts): not for `demo` or help, not
// when turned off, never overriding a flag the user gave Node, and the command still runs.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_FLAGS, flagsToProbe, nodeFlagsToApply } from '../../src/cli/heap.ts';

const argv = (...a: string[]): string[] => ['/usr/bin/node', 'main.js', ...a];

describe('nodeFlagsToApply', () => {
  it('applies the default flags to a pipeline command, after global options with values', () => {
    expect(nodeFlagsToApply(argv('run'), [], {})).toEqual(DEFAULT_NODE_FLAGS);
    expect(nodeFlagsToApply(argv('--db', 'demo', '-c', 'x.yaml', 'serve'), [], {})).toEqual(DEFAULT_NODE_FLAGS);
  });
  it('leaves demo, help and an already restarted process alone', () => {
    expect(nodeFlagsToApply(argv('demo', '--size', '100000'), [], {})).toBeUndefined();
    expect(nodeFlagsToApply(argv('--log-level', 'info', 'demo'), [], {})).toBeUndefined();
    expect(nodeFlagsToApply(argv('--help'), [], {})).toBeUndefined();
    expect(nodeFlagsToApply(argv('run'), [], { COMMISSION_SYNC_NODE_FLAGS_APPLIED: DEFAULT_NODE_FLAGS.join(' ') })).toBeUndefined();
  });
  it('is off with COMMISSION_SYNC_NODE_FLAGS=off and replaced by its value otherwise', () => {
    expect(nodeFlagsToApply(argv('run'), [], { COMMISSION_SYNC_NODE_FLAGS: 'off' })).toBeUndefined();
    expect(nodeFlagsToApply(argv('run'), [], { COMMISSION_SYNC_NODE_FLAGS: ' --max-old-space-size=2048 ' })).toEqual(['--max-old-space-size=2048']);
  });
  it('never overrides a flag given to Node on its command line or in NODE_OPTIONS', () => {
    const flags = { COMMISSION_SYNC_NODE_FLAGS: '--max-semi-space-size=8 --max-old-space-size=1024' };
    expect(nodeFlagsToApply(argv('run'), ['--max-semi-space-size=64'], flags)).toEqual(['--max-old-space-size=1024']);
    expect(nodeFlagsToApply(argv('run'), [], { ...flags, NODE_OPTIONS: '--max_semi_space_size=32 --enable-source-maps' })).toEqual(['--max-old-space-size=1024']);
    expect(nodeFlagsToApply(argv('run'), ['--max-semi-space-size=64'], {})).toEqual(DEFAULT_NODE_FLAGS.filter((f) => !f.startsWith('--max-semi-space-size')));
    expect(nodeFlagsToApply(argv('run'), ['--max-semi-space-size=64', '--heap_growing_percent=100'], {})).toBeUndefined();
  });
});

describe('the default flags', () => {
  // They are not probed before the restart (flagsToProbe), so a Node that refused one would fail
  // every command: this Node must take them all (checked by hand on Node 22 too).
  it('are taken by this Node', () => {
    const r = spawnSync(process.execPath, [...DEFAULT_NODE_FLAGS, '-e', ''], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it('are not probed; a V8 flag the user adds, or a default flag with another value, is', () => {
    expect(flagsToProbe(DEFAULT_NODE_FLAGS)).toEqual([]);
    expect(flagsToProbe(['--max-semi-space-size=8', '--trace-gc', '--heap-growing-percent=30', '--max-old-space-size=1024'])).toEqual(['--trace-gc', '--heap-growing-percent=30']);
  });
});

describe('the CLI process', () => {
  // A flag that prints the process's Node flags shows whether the command ran after a restart with them.
  const probe = '--import=data:text/javascript,console.error("execArgv:"+process.execArgv.join())';
  /** `flags` undefined: COMMISSION_SYNC_NODE_FLAGS unset (the defaults apply). */
  const cli = (args: string[], flags: string | undefined, extraEnv: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, COMMISSION_SYNC_NODE_FLAGS: flags, COMMISSION_SYNC_NODE_FLAGS_APPLIED: '' };
    if (flags === undefined) delete env.COMMISSION_SYNC_NODE_FLAGS;
    return spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 60_000, env });
  };

  it.skipIf(typeof process.execve !== 'function')('restarts a command once with the flags, and runs it', () => {
    const r = cli(['migrate', '--help'], `--max-semi-space-size=8 ${probe}`);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('migrate');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('execArgv:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('--max-semi-space-size=8');
  });
  it.skipIf(typeof process.execve !== 'function')('stops at start naming the variable when Node would refuse a flag in it', () => {
    const r = cli(['migrate', '--help'], '--max-semi-space-size=8 --no-such-heap-flag');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('COMMISSION_SYNC_NODE_FLAGS');
    expect(r.stderr).toContain('--no-such-heap-flag');
    expect(r.stdout).not.toContain('migrate');
    // A V8 flag Node does not list for NODE_OPTIONS is still accepted once Node takes it.
    expect(cli(['migrate', '--help'], '--max-semi-space-size=8 --trace-gc-verbose').status).toBe(0);
  });
  it.skipIf(typeof process.execve !== 'function')('restarts with the default flags when the variable is unset', () => {
    // The probe goes in NODE_OPTIONS (kept across the restart), so both processes print their flags.
    const r = cli(['migrate', '--help'], undefined, { NODE_OPTIONS: "--import=data:text/javascript,console.error('execArgv:'+process.execArgv.join())" });
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('execArgv:'));
    expect(lines).toHaveLength(2);
    for (const f of DEFAULT_NODE_FLAGS) expect(lines[1]).toContain(f);
  });
  it('does not restart demo', () => {
    const r = cli(['demo', '--help'], `--max-semi-space-size=8 ${probe}`);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('execArgv:');
  });
});
