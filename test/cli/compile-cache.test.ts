// A CLI process keeps V8's compiled code for its modules in <cache dir>/node-compile-cache (Node's
// compile cache, src/cli/main.ts): the second start reads what the first wrote; `off` writes nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { enableCompileCache } from '../../src/cli/main.ts';

const root = mkdtempSync(path.join(tmpdir(), 'cs-compile-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function help(env: NodeJS.ProcessEnv): { status: number | null; stdout: string } {
  const base = { ...process.env };
  delete base.NODE_COMPILE_CACHE;
  delete base.NODE_DISABLE_COMPILE_CACHE;
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', '--help'], { encoding: 'utf8', timeout: 60_000, env: { ...base, ...env } });
  return { status: r.status, stdout: r.stdout };
}

/** Files under dir, recursively. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe('the CLI compile cache', () => {
  it('is written under COMMISSION_SYNC_CACHE_DIR on the first start and reused by the next (same output)', () => {
    const cache = path.join(root, 'on');
    const first = help({ COMMISSION_SYNC_CACHE_DIR: cache });
    expect(first.status).toBe(0);
    const written = files(path.join(cache, 'node-compile-cache'));
    expect(written.length).toBeGreaterThan(50); // the command modules and their dependencies
    const second = help({ COMMISSION_SYNC_CACHE_DIR: cache });
    expect(second).toEqual(first);
    expect(files(path.join(cache, 'node-compile-cache')).sort()).toEqual(written.sort()); // read, nothing new to write
  }, 60_000);

  it('COMMISSION_SYNC_CACHE_DIR=off: no cache', () => {
    expect(enableCompileCache({ COMMISSION_SYNC_CACHE_DIR: 'off' })).toBeUndefined();
    const r = help({ COMMISSION_SYNC_CACHE_DIR: 'off', HOME: path.join(root, 'home'), XDG_CACHE_HOME: path.join(root, 'xdg') });
    expect(r.status).toBe(0);
    expect(existsSync(path.join(root, 'home'))).toBe(false);
    expect(existsSync(path.join(root, 'xdg'))).toBe(false);
  }, 60_000);
});
