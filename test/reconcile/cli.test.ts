import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDb } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import { main } from '../../src/cli/main.ts';
import { standardWorld } from './world.ts';
import { captureCliOutput } from '../helpers/cli-output.ts';

// The commands end to end on a PGlite directory (the CLI opens its own database).
describe('reconcile / discrepancies / push CLI', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cs-cli-'));
    const db = await openDb({ dataDir: dir });
    await migrateUp(db);
    await standardWorld(db);
    await db.destroy();
    ({ out, err } = captureCliOutput());
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => main(['node', 'commission-sync', '--db', dir, '--log-level', 'silent', ...args]);

  it('reconciles with totals and --fail-on, decides, and dry-runs the push plan', async () => {
    expect(await cli('reconcile', '--period', '2025-01', '--format', 'json', '--fail-on', 'high')).toBe(0);
    const j = JSON.parse(out.join('\n'));
    expect(j.run.found).toBe(10);
    expect(j.totals.byNetwork.map((t: { network: string }) => t.network)).toEqual(['awin', 'partnerstack']);
    expect(j.discrepancies).toHaveLength(10);

    out.length = 0;
    expect(await cli('reconcile', '--period', '2025-01', '--fail-on', 'medium')).toBe(1);
    expect(out.join('\n')).toMatch(/Per partner/);
    expect(err.join('\n')).toMatch(/open discrepancies at or above medium/);
    process.exitCode = undefined;

    const missing = j.discrepancies.find((d: { kind: string }) => d.kind === 'missing_in_network');
    expect(await cli('discrepancies', 'ignore', String(missing.id))).toBe(2);
    expect(await cli('discrepancies', 'approve', String(missing.id))).toBe(0);
    out.length = 0;
    expect(await cli('push', '--format', 'json')).toBe(0);
    const plan = JSON.parse(out.join('\n'));
    expect(plan.mode).toBe('dry_run');
    // No PartnerStack customer identity in this world: the action cannot be built and is listed as skipped.
    expect(plan.plan.skipped).toEqual([expect.objectContaining({ discrepancyId: missing.id, reason: expect.stringMatching(/unknown to PartnerStack/) })]);
  });
});
