// A registered secret is scrubbed in the forms it takes on the way out: inside JSON (log lines,
// stored summaries, reports) quotes and backslashes are escaped; in URLs it is percent-encoded; and
// clients that build Basic tokens from it register the encoded token.
import { afterEach, describe, expect, it } from 'vitest';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/log/logger.ts';
import { clearSecretsForTests, registerSecret, scrubSecrets, scrubValue } from '../../src/util/secrets.ts';

function collector(): { dest: DestinationStream; text: () => string } {
  const lines: string[] = [];
  return { dest: { write: (s: string) => void lines.push(s) } as DestinationStream, text: () => lines.join('') };
}

describe('secret forms', () => {
  afterEach(() => clearSecretsForTests());

  it('a secret with a quote and a backslash is scrubbed from JSON log lines and stored summaries', () => {
    const secret = 'pa"ss\\w0rd-XYZ';
    registerSecret(secret);
    const c = collector();
    const log = createLogger({ level: 'info', destination: c.dest });
    log.info({ detail: `smtp said: auth failed for ${secret}` }, 'alert sink failed');
    expect(c.text()).toContain('alert sink failed');
    expect(c.text()).not.toContain('w0rd-XYZ');
    const stored = JSON.stringify(scrubValue({ request: { note: `key=${secret}` } }));
    expect(stored).not.toContain('w0rd-XYZ');
  });

  it('a percent-encoded secret in a URL is scrubbed', () => {
    const secret = 'tok+en/with=chars&more';
    registerSecret(secret);
    expect(scrubSecrets(`GET /w.cfm?token=${encodeURIComponent(secret)}&x=1`)).not.toContain(encodeURIComponent(secret));
  });

  it('the Chargebee client registers the Basic token it sends (base64 of "apiKey:")', async () => {
    const { createChargebeeApi } = await import('../../connectors/chargebee/client.ts');
    const apiKey = 'test_cbKeyABCDEF123456';
    createChargebeeApi({ name: 'cb', type: 'chargebee', enabled: true, baseUrl: 'http://127.0.0.1:9/api/v2', credentials: { apiKey: 'CB_KEY' }, timeoutMs: 1000, options: {} } as never, { CB_KEY: apiKey });
    const basic = Buffer.from(`${apiKey}:`).toString('base64');
    expect(scrubSecrets(`authorization: Basic ${basic}`)).not.toContain(basic);
  });
});
