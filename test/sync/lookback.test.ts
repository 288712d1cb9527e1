import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { sweepDue, tailMs, withForcedSweep } from '../../src/sync/lookback.ts';

function config(yaml: string): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cs-lookback-'));
  const f = path.join(dir, 'c.yaml');
  writeFileSync(f, yaml);
  return loadConfig({ file: f, env: {} });
}

const H = 3_600_000;
const now = new Date('2026-03-10T12:00:00Z');

describe('look-back cadence', () => {
  it('defaults: sweep every 24 h, 48 h tail', () => {
    const cfg = config('');
    expect(cfg.sync.lookback).toEqual({ everyHours: 24, tailHours: 48 });
    expect(tailMs({ config: cfg })).toBe(48 * H);
  });

  it('sweeps on the first run, then only once everyHours have passed', () => {
    const cfg = config('sync:\n  lookback:\n    everyHours: 6\n');
    expect(sweepDue({ config: cfg, now }, null)).toBe(true);
    expect(sweepDue({ config: cfg, now }, now.getTime() - 5 * H)).toBe(false);
    expect(sweepDue({ config: cfg, now }, now.getTime() - 6 * H)).toBe(true);
    // A run whose clock is behind the last sweep does not sweep again.
    expect(sweepDue({ config: cfg, now }, now.getTime() + H)).toBe(false);
  });

  it('everyHours 0 and --sweep (withForcedSweep) sweep on every run without touching the rest', () => {
    const cfg = config('sync:\n  batchRecords: 10\n');
    const forced = withForcedSweep(cfg);
    expect(sweepDue({ config: forced, now }, now.getTime())).toBe(true);
    expect(forced.sync.batchRecords).toBe(10);
    expect(cfg.sync.lookback.everyHours).toBe(24); // the loaded configuration is not mutated
    expect(sweepDue({ config: config('sync:\n  lookback: { everyHours: 0 }\n'), now }, now.getTime())).toBe(true);
  });

  it('names the field for an invalid value', () => {
    expect(() => config('sync:\n  lookback:\n    tailHours: -1\n')).toThrow(/sync\.lookback\.tailHours/);
  });
});
