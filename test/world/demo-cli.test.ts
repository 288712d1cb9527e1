// `commission-sync demo --json` as a user runs it: a child process, JSON on stdout, exit 0.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const run = (args: string[]) =>
  spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', 'demo', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DATABASE_URL: '' } });

describe('demo CLI', () => {
  it('--json parses and has the required keys', () => {
    const p = run(['--scenario', 'config/scenarios/small.yaml', '--json', '--db', 'memory://']);
    expect(p.status, p.stderr).toBe(0);
    const r = JSON.parse(p.stdout) as Record<string, unknown>;
    for (const k of ['totals', 'discrepancies', 'commissions', 'discrepancies_by_kind', 'top_partners', 'payouts_due', 'world']) expect(r).toHaveProperty(k);
    const totals = r.totals as Record<string, Record<string, unknown>>;
    expect(Object.keys(totals).sort()).toEqual(['awin', 'partnerstack', 'shareasale']);
    for (const t of Object.values(totals)) {
      for (const k of ['reported_usd_minor', 'owed_usd_minor', 'collected_usd_minor']) expect(Number.isInteger(t[k])).toBe(true);
      expect(t.currency).toBe('USD');
    }
    const ds = r.discrepancies as Array<Record<string, unknown>>;
    expect(ds.length).toBeGreaterThan(0);
    for (const d of ds) {
      for (const k of ['kind', 'network', 'partner', 'payment', 'usd_minor']) expect(d).toHaveProperty(k);
      expect(Number.isInteger(d.usd_minor)).toBe(true);
    }
    const cs = r.commissions as Array<Record<string, unknown>>;
    expect(cs.length).toBeGreaterThan(0);
    for (const k of ['commission_key', 'kind', 'partner_key', 'amount_minor', 'amount_currency', 'amount_usd_minor', 'status']) expect(cs[0]).toHaveProperty(k);
    // No credential of the fakes leaks into the output.
    expect(p.stdout + p.stderr).not.toMatch(/sk_test_[a-z0-9]{6,}|DEMO_.*=/);
  }, 120_000);

  it('a bad scenario is a clear error (exit 2)', () => {
    const p = run(['--scenario', 'package.json', '--db', 'memory://', '--no-progress']);
    expect(p.status).toBe(2);
    expect(p.stderr).toMatch(/Invalid scenario/);
  }, 60_000);
});
