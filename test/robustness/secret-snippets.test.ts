// HTTP error bodies that echo a secret must not keep any part of it (truncation happens after scrubbing).
import { afterEach, describe, expect, it } from 'vitest';
import { AxiosError, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import { toHttpError } from '../../src/http/client.ts';
import { clearSecretsForTests, registerSecret } from '../../src/util/secrets.ts';
import { ShareASaleError } from '../../connectors/shareasale/client.ts';

const SECRET = 'sk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function axiosErrorWithBody(body: string): AxiosError {
  const config = { method: 'post', url: '/x', baseURL: 'https://api.test', headers: {} } as unknown as InternalAxiosRequestConfig;
  const response = { status: 400, statusText: 'Bad Request', headers: {}, config, data: body } as AxiosResponse;
  return new AxiosError('Request failed with status code 400', 'ERR_BAD_REQUEST', config, {}, response);
}

describe('secrets in HTTP error bodies', () => {
  afterEach(() => clearSecretsForTests());

  it('a secret straddling the snippet limit leaves no fragment in bodySnippet', () => {
    registerSecret(SECRET);
    const body = `${'x'.repeat(280)}${SECRET} trailing`;
    const e = toHttpError(axiosErrorWithBody(body), { connection: 'c' });
    expect(e.bodySnippet).toBeDefined();
    expect(e.bodySnippet).not.toContain(SECRET.slice(0, 12));
  });

  it('ShareASale text errors: same', () => {
    registerSecret(SECRET);
    const text = `Error Code 4002: ${'y'.repeat(270)}${SECRET}`;
    const e = new ShareASaleError({ connection: 'sas', method: 'GET', path: '/w.cfm', status: 200, kind: 'unknown', message: 'ShareASale error', text });
    expect(e.bodySnippet).not.toContain(SECRET.slice(0, 12));
  });
});

describe('secrets in ShareASale error descriptions', () => {
  afterEach(() => clearSecretsForTests());
  it('the quoted server text keeps no fragment of a secret cut at the quote limit', async () => {
    const { describeShareASaleError } = await import('../../connectors/shareasale/client.ts');
    registerSecret(SECRET);
    const msg = describeShareASaleError('sas', { kind: 'unknown', text: `Error ${'z'.repeat(185)}${SECRET}` }, 'transactiondetail');
    expect(msg).not.toContain(SECRET.slice(0, 8));
  });
});
