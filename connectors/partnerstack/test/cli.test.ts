// `commission-sync sync --source partnerstack` against a configured connection pointing at the fake
// server (credentials from environment variables), run as a real child process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPartnerStackFake, generateDataset, loadDataset, type PartnerStackFake } from '../fake-server.ts';

let fake: PartnerStackFake;
let dir: string;
beforeAll(async () => {
  fake = await createPartnerStackFake({ publicKey: 'pk_cli_public_1234', secretKey: 'sk_cli_secret_5678' });
  loadDataset(fake.store, generateDataset({ partners: 4, customersPerPartner: 3, transactionsPerCustomer: 2, endMs: Date.now() - 86_400_000 }));
  dir = mkdtempSync(path.join(tmpdir(), 'ps-cli-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', ...args], { cwd: path.resolve(import.meta.dirname, '../../..'), env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('sync --source partnerstack prints per-stream counts; wrong keys fail with a 401 that names the variables', async () => {
  const cfg = path.join(dir, 'cs.yaml');
  writeFileSync(
    cfg,
    [
      'log: { level: warn, format: json }',
      'connections:',
      '  - name: ps-main',
      '    type: partnerstack',
      `    baseUrl: ${fake.url}`,
      '    credentials: { publicKey: PS_PUB, secretKey: PS_SEC }',
      '    options: { lookbackDays: 60, retry: { retries: 1, minBackoffMs: 1, maxBackoffMs: 5 } }',
      '',
    ].join('\n'),
  );
  const db = path.join(dir, 'db');
  const ok = await run(['--config', cfg, '--db', db, 'sync', '--source', 'partnerstack', '--no-progress'], { PS_PUB: fake.publicKey, PS_SEC: fake.secretKey });
  expect(ok.stderr).not.toMatch(/failed/);
  expect(ok.code).toBe(0);
  // One table row per stream with its record count: 2 groups, 4 partnerships, 12 customers, 24 transactions, 24 rewards.
  for (const [stream, n] of [['groups', 2], ['partnerships', 4], ['customers', 12], ['transactions', 24], ['rewards', 24]] as const) {
    expect(ok.stdout).toMatch(new RegExp(`ps-main\\s*│?\\s*${stream}\\s*│?\\s*\\d+\\s*│?\\s*${n}\\b`));
  }

  const bad = await run(['--config', cfg, '--db', db, 'sync', '--source', 'partnerstack', '--no-progress'], { PS_PUB: fake.publicKey, PS_SEC: 'sk_wrong_secret_value' });
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/401/);
  expect(bad.stderr).toMatch(/PS_PUB/);
  expect(bad.stderr).toMatch(/PS_SEC/);
  expect(bad.stderr).not.toContain('sk_wrong_secret_value');
});
