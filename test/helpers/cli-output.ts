// Captures what the in-process CLI (`main([...])`) prints: stdout through console.log, stderr through
// console.error/warn and process.stderr. Undo with vi.restoreAllMocks() in afterEach.
import { vi } from 'vitest';

export interface CliOutput {
  out: string[];
  err: string[];
}

export function captureCliOutput(): CliOutput {
  const c: CliOutput = { out: [], err: [] };
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void c.out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void c.err.push(a.join(' ')));
  vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void c.err.push(a.join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (c.err.push(String(s)), true));
  process.exitCode = undefined;
  return c;
}
