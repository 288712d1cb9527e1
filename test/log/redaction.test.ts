import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { registerSecret } from '../../src/util/secrets.ts';
import type { DestinationStream } from 'pino';

function collector(): { dest: DestinationStream; text: () => string } {
  const lines: string[] = [];
  return { dest: { write: (s: string) => void lines.push(s) } as DestinationStream, text: () => lines.join('') };
}

describe('log redaction', () => {
  it('never writes a known secret, wherever it appears', () => {
    const secret = 'sk_test_SuperSecret_9f8e7d';
    registerSecret(secret);
    const c = collector();
    const log = createLogger({ level: 'trace', destination: c.dest });
    log.info({ headers: { authorization: `Basic ${secret}` } }, 'request');
    log.info({ apiKey: secret, nested: { token: secret, password: secret } }, 'config');
    log.warn(`failed calling https://api.example.com/?token=${secret}`);
    log.error({ err: new Error(`boom ${secret}`) }, 'error with secret in message');
    log.debug({ webhookSecret: secret, list: [secret] }, 'misc');
    const out = c.text();
    expect(out.length).toBeGreaterThan(200);
    expect(out).not.toContain(secret);
    expect(out).toContain('[REDACTED]');
  });
});
