import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveSecret } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { scrubSecrets } from '../../src/util/secrets.ts';

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cs-config-'));
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('config', () => {
  it('loads defaults with no file', () => {
    const cfg = loadConfig({ file: tmpFile('empty.yaml', ''), env: {} });
    expect(cfg.database.dataDir).toBe('.data/pglite');
    expect(cfg.connections).toEqual([]);
    expect(cfg.push.maxActionsPerRun).toBe(200);
  });

  it('names the field and what was expected for an invalid value', () => {
    const f = tmpFile('bad.yaml', 'connections:\n  - name: ps\n    type: partnerstak\n');
    expect(() => loadConfig({ file: f, env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ file: f, env: {} });
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toContain('connections.0.type');
      expect(msg).toMatch(/partnerstack/);
      expect(msg).not.toMatch(/at .*\.ts:\d+/); // no stack trace in the message
    }
  });

  it('rejects a secret value where an env var name belongs', () => {
    const f = tmpFile('c.yaml', 'connections:\n  - name: ps\n    type: partnerstack\n    credentials: { secretKey: "sk_live_abc123" }\n');
    expect(() => loadConfig({ file: f, env: {} })).toThrow(/connections\.0\.credentials\.secretKey: expected the NAME of an environment variable/);
  });

  it('rejects duplicate connection names', () => {
    const f = tmpFile('d.json', JSON.stringify({ connections: [{ name: 'a', type: 'awin' }, { name: 'a', type: 'stripe' }] }));
    expect(() => loadConfig({ file: f, env: {} })).toThrow(/connections\.1\.name: duplicate connection name "a"/);
  });

  it('overlays environment variables over the file', () => {
    const f = tmpFile('e.yaml', 'log: { level: warn }\npush: { maxActionsPerRun: 10 }\n');
    const cfg = loadConfig({ file: f, env: { LOG_LEVEL: 'debug', COMMISSION_SYNC__PUSH__MAX_ACTIONS_PER_RUN: '7', DATABASE_URL: 'postgres://u@h/db' } });
    expect(cfg.log.level).toBe('debug');
    expect(cfg.push.maxActionsPerRun).toBe(7);
    expect(cfg.database.url).toBe('postgres://u@h/db');
  });

  it('an invalid env value names the field', () => {
    expect(() => loadConfig({ file: tmpFile('f.yaml', ''), env: { PORT: '99999' } })).toThrow(/server\.port/);
  });

  it('resolves secrets from VAR or VAR_FILE and registers them for scrubbing', () => {
    const f = tmpFile('g.yaml', 'connections:\n  - name: ps\n    type: partnerstack\n    credentials: { publicKey: PS_PK, secretKey: PS_SK }\n');
    const cfg = loadConfig({ file: f, env: {} });
    const conn = cfg.connections[0]!;
    const secretFile = tmpFile('sk', 'file-secret-value-42\n');
    expect(resolveSecret(conn, 'publicKey', { PS_PK: 'pk_visible_1' })).toBe('pk_visible_1');
    expect(resolveSecret(conn, 'secretKey', { PS_SK_FILE: secretFile })).toBe('file-secret-value-42');
    expect(scrubSecrets('leak file-secret-value-42 here')).toBe('leak [REDACTED] here');
    expect(() => resolveSecret(conn, 'secretKey', {})).toThrow(/connections\.ps\.credentials\.secretKey: environment variable PS_SK \(or PS_SK_FILE\) is not set/);
  });
});
