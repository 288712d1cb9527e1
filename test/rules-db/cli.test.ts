import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDb } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import { main } from '../../src/cli/main.ts';
import { COMMISSION_CSV_COLUMNS } from '../../src/cli/commands/commissions.ts';
import { seedWorld } from './world.ts';
import { captureCliOutput } from '../helpers/cli-output.ts';

// compute / commissions / payouts / explain end to end on a PGlite directory.
describe('rules CLI', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cs-rules-cli-'));
    const db = await openDb({ dataDir: dir });
    await migrateUp(db);
    await seedWorld(db);
    await db.destroy();
    ({ out, err } = captureCliOutput());
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => main(['node', 'commission-sync', '--db', dir, '--log-level', 'silent', ...args]);
  const take = (): string => {
    const s = out.join('\n');
    out.length = 0;
    return s;
  };

  it('computes, lists (json, csv, table), builds payouts and explains', async () => {
    expect(await cli('compute', '--as-of', '2025-03-10T00:00:00Z')).toBe(0);
    const summary = take();
    expect(summary).toMatch(/Computed as of 2025-03-10T00:00:00.000Z/);
    expect(summary).toMatch(/clawback/);
    expect(summary).toMatch(/Total 9 rows, \$492\.50/); // 13250 due + 36000 reserve = 49250 cents

    expect(await cli('commissions', '--format', 'json')).toBe(0);
    const rows = JSON.parse(take()) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(9);
    for (const k of ['partner_id', 'partner_key', 'network', 'partner_external_id', 'billing_system', 'document_id', 'kind', 'tier', 'rate', 'base_minor', 'base_currency', 'amount_minor', 'amount_currency', 'amount_usd_minor', 'status', 'cleared_at', 'payout_date']) {
      expect(rows[0]).toHaveProperty(k);
    }
    expect(new Set(rows.map((r) => r.kind))).toEqual(new Set(['direct', 'second_tier', 'clawback']));

    expect(await cli('commissions', '--partner', 'a', '--format', 'csv')).toBe(0);
    const csv = take().split('\n');
    expect(csv[0]).toBe(COMMISSION_CSV_COLUMNS.join(','));
    expect(csv).toHaveLength(1 + 4);

    expect(await cli('commissions', '--partner', 'ps-b')).toBe(0);
    expect(take()).toMatch(/b \(partnerstack ps-b\)[\s\S]*stripe in_p3[\s\S]*5000 USD/);

    expect(await cli('payouts', '--date', '2025-03-15', '--format', 'json')).toBe(0);
    const p = JSON.parse(take()) as { statements: Array<Record<string, unknown>> };
    expect(p.statements.map((s) => [s.partner_key, s.status, s.payable_usd_minor])).toEqual([
      ['r', 'carried_forward', 0],
      ['a', 'payable', 10_000],
      ['b', 'payable', 5_000],
    ]);
    expect(await cli('payouts', '--date', '2025-03-15', '--format', 'csv')).toBe(0);
    expect(take().split('\n')[0]).toBe('partner_id,partner_key,network,payout_date,carried_in_usd_minor,new_usd_minor,balance_usd_minor,payable_usd_minor,carried_out_usd_minor,minimum_usd_minor,status,reasons,projected,items');

    expect(await cli('explain', '--payment', 'in_p2', '--partner', 'a')).toBe(0);
    const ex = take();
    expect(ex).toMatch(/tier referral at 2025-02-01T12:00:00.000Z: 0 distinct customers/);
    expect(ex).toMatch(/ROUND\(120000 × 0.20\) = 24000 USD/);
    expect(ex).toMatch(/counted sales behind tier referral: none/);
    expect(await cli('explain', '--payment', 're_1')).toBe(0);
    expect(take()).toMatch(/clawback of direct[\s\S]*-2500/);
  });

  it('rejects bad input with a message naming the flag and exit 2, no stack', async () => {
    expect(await cli('compute', '--as-of', 'yesterday')).toBe(2);
    expect(await cli('compute', '--as-of', '2025-02-30')).toBe(2);
    expect(await cli('payouts', '--date', '2025-13-01')).toBe(2);
    expect(await cli('payouts')).toBe(2);
    expect(await cli('commissions', '--partner', 'nobody')).toBe(2);
    expect(await cli('explain', '--payment', 'in_nothing')).toBe(2);
    expect(await cli('commissions', '--format', 'xml')).toBe(2);
    const e = err.join('');
    expect(e).toMatch(/--as-of: expected an ISO instant/);
    expect(e).toMatch(/--as-of: not a real date/);
    expect(e).toMatch(/--date: expected a date yyyy-mm-dd/);
    expect(e).toMatch(/--date: required/);
    expect(e).toMatch(/--partner: no partner/);
    expect(e).toMatch(/--payment: no billing event/);
    expect(e).toMatch(/--format: expected one of/);
    expect(e).not.toMatch(/\n\s+at /);
  });
});
