// Bad CLI input stops with exit 2 and one message naming the flag: no stack trace, no secret.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { openDb } from '../../src/db/connection.ts';
import { migrateUp } from '../../src/db/migrate.ts';
import { captureCliOutput } from '../helpers/cli-output.ts';

let dir: string;
let out: string[];
let err: string[];
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cs-robust-cli-'));
  const db = await openDb({ dataDir: dir });
  await migrateUp(db);
  await db.destroy();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  ({ out, err } = captureCliOutput());
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

const env = { ...process.env };
delete env.DATABASE_URL;
const cli = (...args: string[]) => main(['node', 'commission-sync', '--log-level', 'silent', ...args]);
const onDir = (...args: string[]) => cli('--db', dir, ...args);
const all = () => [...out, ...err].join('\n');

describe('CLI: bad flags name the flag and exit 2', () => {
  it.each([
    [['discrepancies', 'list', '--limit', 'abc'], /--limit/],
    [['discrepancies', 'list', '--limit', '0'], /--limit/],
    [['discrepancies', 'list', '--period', '2025-13'], /--period/],
    [['discrepancies', 'list', '--status', 'bogus'], /--status/],
    [['discrepancies', 'list', '--kind', 'bogus'], /--kind/],
    [['discrepancies', 'list', '--network', 'bogus'], /--network/],
    [['push', '--network', 'bogus'], /--network/],
    [['sync', '--stream', 'no_such_stream'], /--stream/],
    [['run', '--no-sync', '--period', '2025-13'], /--period/],
    [['run', '--no-sync', '--now', 'yesterday'], /--now/],
    [['run', '--no-sync', '--now', '2999-01-01'], /--now: must not be later/],
  ])('%j', async (args, re) => {
    expect(await onDir(...(args as string[]))).toBe(2);
    expect(all()).toMatch(re as RegExp);
    expect(all()).not.toMatch(/\n\s+at /);
  });
});

describe('CLI: an unreachable database', () => {
  it('is a start-up error naming --db, without a stack trace or the password', async () => {
    const code = await cli('--db', 'postgres://bob:hunter2-s3cret@127.0.0.1:1/nodb', 'status');
    expect(code).toBe(2);
    expect(all()).toMatch(/--db/);
    expect(all()).not.toMatch(/\n\s+at /);
    expect(all()).not.toContain('hunter2-s3cret');
  });

  it('status reports the database the --db flag chose', async () => {
    expect(await onDir('status', '--format', 'json')).toBe(0);
    expect(JSON.parse(out.join('\n')).database).toBe(`pglite ${dir}`);
  });
});

describe('CLI run: invalid connection options stop at start-up', () => {
  it('names the option and exits 2 before any step runs', async () => {
    const file = path.join(dir, 'bad-options.yaml');
    writeFileSync(file, ['connections:', '  - name: ps', '    type: partnerstack', '    credentials: { publicKey: PS_PUB, secretKey: PS_SEC }', '    options: { lookbackDays: 0 }', ''].join('\n'));
    expect(await onDir('--config', file, 'run')).toBe(2);
    expect(all()).toMatch(/connections\.ps\.options\.lookbackDays/);
    expect(all()).not.toMatch(/reconcile:/);
  });
});

describe('CLI sync/run: a missing required credential stops at start-up', () => {
  const SECRET = 'sk-present-but-never-printed-4711';
  const writeConfig = (name: string): string => {
    const file = path.join(dir, name);
    // CS_TEST_MISSING_PS_PUB is never set; CS_TEST_PRESENT_PS_SEC holds a secret that must not leak.
    writeFileSync(file, ['connections:', '  - name: ps', '    type: partnerstack', '    credentials: { publicKey: CS_TEST_MISSING_PS_PUB, secretKey: CS_TEST_PRESENT_PS_SEC }', ''].join('\n'));
    return file;
  };
  beforeEach(() => {
    vi.stubEnv('CS_TEST_PRESENT_PS_SEC', SECRET);
    delete process.env.CS_TEST_MISSING_PS_PUB;
    delete process.env.CS_TEST_MISSING_PS_PUB_FILE;
  });
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    ['sync', []],
    ['run', []],
    ['sync --connection ps', ['--connection', 'ps']],
  ])('%s: exit 2 naming the field and the variable, no stack trace, no secret', async (cmd, extra) => {
    const file = writeConfig(`missing-cred-${cmd.replace(/\W+/g, '-')}.yaml`);
    expect(await onDir('--config', file, cmd.split(' ')[0]!, ...(extra as string[]))).toBe(2);
    expect(all()).toMatch(/connections\.ps\.credentials\.publicKey/);
    expect(all()).toMatch(/CS_TEST_MISSING_PS_PUB/);
    expect(all()).not.toMatch(/\n\s+at /);
    expect(all()).not.toContain(SECRET);
    // Stopped before any work: no sync table, no job summary.
    expect(all()).not.toMatch(/reconcile:|records/);
  });

  it('only the fields the connector requires are checked (Stripe: apiKey, not webhookSecret)', async () => {
    const { preflightConnections } = await import('../../src/sync/run-connections.ts');
    const { configSchema } = await import('../../src/config/schema.ts');
    vi.stubEnv('CS_TEST_STRIPE_KEY', 'sk_test_present');
    const cfg = configSchema.parse({ connections: [{ name: 'st', type: 'stripe', credentials: { apiKey: 'CS_TEST_STRIPE_KEY', webhookSecret: 'CS_TEST_MISSING_WHSEC' } }] });
    await expect(preflightConnections(cfg.connections, process.env)).resolves.toBeUndefined();
    const noKey = configSchema.parse({ connections: [{ name: 'st', type: 'stripe', credentials: { apiKey: 'CS_TEST_MISSING_STRIPE_KEY' } }] });
    await expect(preflightConnections(noKey.connections, process.env)).rejects.toThrow(/connections\.st\.credentials\.apiKey: environment variable CS_TEST_MISSING_STRIPE_KEY/);
  });
});
