import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHttpClient } from '../../src/http/client.ts';
import { HttpError, parseRetryAfter } from '../../src/http/errors.ts';

const BASE = 'http://api.test.local';

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
  vi.useRealTimers();
});

describe('http client', () => {
  it('honours Retry-After on 429 (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = createHttpClient({ connection: 't', baseURL: BASE, minBackoffMs: 10, maxBackoffMs: 20 });
    const scope = nock(BASE).get('/items').reply(429, { message: 'slow down' }, { 'Retry-After': '30' }).get('/items').reply(200, { ok: true });
    let settled = false;
    const p = client.get<{ ok: boolean }>('/items').then((r) => {
      settled = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(25_000);
    expect(settled).toBe(false); // still waiting: Retry-After asked for 30 s
    await vi.advanceTimersByTimeAsync(6_000);
    const res = await p;
    expect(res.data.ok).toBe(true);
    expect(scope.isDone()).toBe(true);
  });

  it('caps a very long Retry-After', () => {
    expect(parseRetryAfter('3600', 60_000)).toBe(60_000);
    expect(parseRetryAfter('2', 60_000)).toBe(2_000);
    expect(parseRetryAfter(new Date(Date.now() + 5_000).toUTCString(), 60_000)).toBeGreaterThan(3_000);
  });

  it('retries 5xx and network errors, then succeeds', async () => {
    const client = createHttpClient({ connection: 't', baseURL: BASE, minBackoffMs: 1, maxBackoffMs: 2 });
    nock(BASE).get('/x').reply(503).get('/x').replyWithError('socket hang up').get('/x').reply(200, [1]);
    const res = await client.get('/x');
    expect(res.data).toEqual([1]);
    expect(client.attempts()).toBe(3);
  });

  it('never retries other 4xx and reports method, path and status without the query or credentials', async () => {
    const client = createHttpClient({ connection: 'ps', baseURL: BASE, minBackoffMs: 1, headers: { authorization: 'Basic c2VjcmV0' } });
    nock(BASE).get('/v2/rewards').query(true).reply(400, { message: 'bad filter' });
    const err = (await client.get('/v2/rewards', { params: { token: 'tok_secret_123' } }).catch((e: unknown) => e)) as HttpError;
    expect(err).toBeInstanceOf(HttpError);
    expect(err.status).toBe(400);
    expect(err.method).toBe('GET');
    expect(err.path).toBe('/v2/rewards');
    expect(err.message).toBe('ps: GET /v2/rewards failed with HTTP 400');
    expect(JSON.stringify(err)).not.toContain('tok_secret_123');
    expect(JSON.stringify(err)).not.toContain('c2VjcmV0');
    expect(client.attempts()).toBe(1);
  });

  it('limits the request rate per connection', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = createHttpClient({ connection: 't', baseURL: BASE, rateLimit: { requests: 2, intervalMs: 1000 } });
    nock(BASE).get('/r').times(3).reply(200, {});
    let done = 0;
    const all = [client.get('/r'), client.get('/r'), client.get('/r')].map((p) => p.then(() => done++));
    await vi.advanceTimersByTimeAsync(10);
    expect(done).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(all);
    expect(done).toBe(3);
  });
});
