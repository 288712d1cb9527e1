// An embedded database keeps its WASM on V8's baseline compiler (src/db/connection.ts,
// chooseWasmTiering): set at runtime, the flags must actually stop V8 from optimizing a hot function;
// COMMISSION_SYNC_PGLITE_OPTIMIZE=1 leaves V8's default tiering.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/wasm-tier-child.ts', import.meta.url));

async function run(env: NodeJS.ProcessEnv): Promise<{ choice: string; optimized: boolean; sum: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--disable-warning=ExperimentalWarning', child], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { choice: string; optimized: boolean; sum: number };
}

describe('WASM tiering for PGlite', () => {
  it('by default a hot WASM function stays on the baseline compiler', async () => {
    expect(await run({ COMMISSION_SYNC_PGLITE_OPTIMIZE: '' })).toEqual({ choice: 'baseline', optimized: false, sum: 6 });
  }, 60_000);

  it('COMMISSION_SYNC_PGLITE_OPTIMIZE=1 keeps V8 tiering it up (the control: the probe does see optimization)', async () => {
    expect(await run({ COMMISSION_SYNC_PGLITE_OPTIMIZE: '1' })).toEqual({ choice: 'optimizing', optimized: true, sum: 6 });
  }, 60_000);
});
