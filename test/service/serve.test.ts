// `commission-sync serve` as a process: starts HTTP + scheduler from a config file, answers health and
// token-protected API calls, and shuts down gracefully on SIGTERM (exit code 0).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('commission-sync serve', () => {
  it('serves, then stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cs-serve-'));
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(cfg, ['server:', '  host: 127.0.0.1', '  port: 0', '  tokens:', '    - { env: SERVE_VIEWER_TOKEN, role: viewer }', 'log:', '  level: info', '  format: json', ''].join('\n'));
    const token = 'serve-viewer-token-42';
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'src/cli/main.ts', '--config', cfg, '--db', 'memory://', 'serve'], {
      env: { ...process.env, SERVE_VIEWER_TOKEN: token, DATABASE_URL: '', COMMISSION_SYNC_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const until = Date.now() + 30_000;
    while (!/listening on (http:\/\/\S+)/.test(out)) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`serve did not start:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const base = /listening on (http:\/\/\S+)/.exec(out)![1]!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/api/me`)).status).toBe(401);
    const me = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ role: 'viewer' });
    const jobs = (await (await fetch(`${base}/api/jobs`, { headers: { authorization: `Bearer ${token}` } })).json()) as { jobs: Array<{ name: string }> };
    expect(jobs.jobs.map((j) => j.name)).toEqual(expect.arrayContaining(['main-job', 'push']));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(err).toContain('shutting down');
    expect(err).toContain('stopped');
    expect(err + out).not.toContain(token);
  }, 60_000);
});
