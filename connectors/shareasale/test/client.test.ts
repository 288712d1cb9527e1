import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import nock from 'nock';
import { createHash } from 'node:crypto';
import { createShareASaleClient, parseShareASaleTextError, rfc1123, shareasaleSignature, ShareASaleError } from '../client.ts';
import { parseTokenCount } from '../budget.ts';
import { parseSasMoney, parseSasTime, toSasDate } from '../mapping.ts';
import { parseDelimited } from '../delimited.ts';

const BASE = 'https://api.shareasale.test';

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
});

function client(extra: Partial<Parameters<typeof createShareASaleClient>[0]> = {}) {
  return createShareASaleClient({ connection: 'sas', baseURL: BASE, merchantId: '999', token: 'tok-abc', secret: 'sec-xyz', retries: 2, minBackoffMs: 1, ...extra });
}

describe('ShareASale signing', () => {
  it('matches ShareASale\'s published example vector', () => {
    // Eric Nagel's "Best Ways to Use the ShareASale API" example (reference §1).
    const sig = shareasaleSignature('NGc6dg5e9URups5o', 'Thu, 14 Apr 2011 22:44:22 GMT', 'bannerList', 'ATj7vd8b7CCjeq9yQUo8cc2w3OThqe2e');
    expect(sig.toUpperCase()).toBe('78D54A3051AE0AAAF022AA2DA230B97D5219D82183FEFF71E2D53DEC6057D9F1');
  });

  it('prints the date as RFC 1123 GMT', () => {
    expect(rfc1123(new Date(Date.UTC(2011, 3, 14, 22, 44, 22)))).toBe('Thu, 14 Apr 2011 22:44:22 GMT');
  });

  it('signs each request with the action of its query and a fresh date', async () => {
    const seen: Array<{ date: string; sig: string; action: string }> = [];
    nock(BASE)
      .get('/w.cfm')
      .query(true)
      .times(2)
      // nock 15 hands reply functions a Fetch Request.
      .reply((req: Request) => {
        const q = new URL(req.url).searchParams;
        const date = String(req.headers.get('x-shareasale-date'));
        const sig = String(req.headers.get('x-shareasale-authentication'));
        seen.push({ date, sig, action: q.get('action')! });
        return [200, 'Trans ID|Trans Date\n'];
      });
    let t = Date.UTC(2025, 0, 2, 3, 4, 5);
    const c = client({ now: () => new Date((t += 1000)) });
    await c.call('transactiondetail', { datestart: '01/01/2025' });
    await c.call('apitokencount');
    expect(seen.map((s) => s.action)).toEqual(['transactiondetail', 'apitokencount']);
    for (const s of seen) {
      expect(s.sig).toBe(createHash('sha256').update(`tok-abc:${s.date}:${s.action}:sec-xyz`).digest('hex'));
      expect(s.date).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    }
    expect(seen[0]!.date).not.toBe(seen[1]!.date);
  });

  it('sends merchantId, token, version and action in the query', async () => {
    let query: URLSearchParams | undefined;
    nock(BASE)
      .get('/w.cfm')
      .query((q) => {
        query = new URLSearchParams(q as Record<string, string>);
        return true;
      })
      .reply(200, '12|200');
    await client({ apiVersion: '3.0' }).call('apitokencount');
    expect(query?.get('merchantId')).toBe('999');
    expect(query?.get('token')).toBe('tok-abc');
    expect(query?.get('version')).toBe('3.0');
    expect(query?.get('action')).toBe('apitokencount');
  });
});

describe('ShareASale text errors', () => {
  it('turns 4002 in a 200 body into an IP error that explains the fix, and never retries it', async () => {
    const scope = nock(BASE).get('/w.cfm').query(true).times(1).reply(200, 'Error: Invalid Account - Error Code 4002 - 203.0.113.9');
    const extra = nock(BASE).get('/w.cfm').query(true).reply(200, 'should not be called');
    const err = await client().call('transactiondetail').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShareASaleError);
    const e = err as ShareASaleError;
    expect(e.kind).toBe('ip_not_registered');
    expect(e.errorCode).toBe(4002);
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('203.0.113.9');
    expect(e.message).toMatch(/not registered/);
    expect(e.message).toMatch(/m-apiips\.cfm/);
    expect(scope.isDone()).toBe(true);
    expect(extra.isDone()).toBe(false);
  });

  it('does not retry an auth error', async () => {
    const scope = nock(BASE).get('/w.cfm').query(true).times(1).reply(200, 'Error: Invalid Authentication - Error Code 4001 - 1.2.3.4');
    const extra = nock(BASE).get('/w.cfm').query(true).reply(200, 'x');
    const e = (await client().call('transactiondetail').catch((x: unknown) => x)) as ShareASaleError;
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/credentials\.token/);
    expect(scope.isDone()).toBe(true);
    expect(extra.isDone()).toBe(false);
  });

  it('retries 5xx with backoff and counts every attempt for the credit budget', async () => {
    nock(BASE).get('/w.cfm').query(true).reply(500, 'boom').get('/w.cfm').query(true).reply(200, 'Trans ID|Trans Date\n');
    const spent: number[] = [];
    const body = await client({ onAttempts: (n) => void spent.push(n) }).call('transactiondetail');
    expect(body).toContain('Trans ID');
    expect(spent).toEqual([2]);
  });

  it('classifies the known text replies', () => {
    expect(parseShareASaleTextError('Transaction Not Found')?.kind).toBe('not_found');
    expect(parseShareASaleTextError('Multiple Transactions Found (ambiguous order number)')?.kind).toBe('ambiguous');
    expect(parseShareASaleTextError('Error: Invalid Request - Error Code 4000')?.kind).toBe('invalid_request');
    expect(parseShareASaleTextError('Error: Monthly API request limit exceeded - Error Code 4031 - 1.1.1.1')?.kind).toBe('quota');
    expect(parseShareASaleTextError('Error Code 9999 something')).toMatchObject({ kind: 'unknown', errorCode: 9999 });
    expect(parseShareASaleTextError('Trans ID|Trans Date|Comment\n1|01/01/2025|fine')).toBeUndefined();
    expect(parseShareASaleTextError('plain text', { expectXml: true })?.kind).toBe('unknown');
    expect(parseShareASaleTextError('<xml/>', { expectXml: true })).toBeUndefined();
  });
});

describe('ShareASale parsing helpers', () => {
  it('parses money into minor units', () => {
    expect(parseSasMoney('$1,234.56')).toBe(123456);
    expect(parseSasMoney('-12.5')).toBe(-1250);
    expect(parseSasMoney('(3.00)')).toBe(-300);
    expect(parseSasMoney('39.985')).toBe(3999); // 3998.5 cents rounds half away from zero
    expect(parseSasMoney('abc')).toBeNull();
    expect(parseSasMoney('1200', 'JPY')).toBe(1200);
  });

  it('reads zone-less timestamps in the configured zone (default America/Chicago)', () => {
    // 01/15/2025 3:04:05 PM in Chicago (CST, UTC-6) = 21:04:05Z.
    expect(parseSasTime('01/15/2025 03:04:05 PM', 'America/Chicago')?.instant.toISOString()).toBe('2025-01-15T21:04:05.000Z');
    // 07/01/2025 in Chicago is CDT (UTC-5).
    expect(parseSasTime('07/01/2025 00:30:00', 'America/Chicago')?.instant.toISOString()).toBe('2025-07-01T05:30:00.000Z');
    expect(parseSasTime('2025-01-15 10:00:00.000', 'America/New_York')?.instant.toISOString()).toBe('2025-01-15T15:00:00.000Z');
    expect(parseSasTime('01/15/2025 11:30:00 PM', 'America/Chicago')?.localDate).toBe('01/15/2025');
    expect(parseSasTime('13/45/2025', 'America/Chicago')).toBeNull();
    expect(toSasDate('2025-03-09')).toBe('03/09/2025');
    expect(toSasDate('3/9/2025')).toBe('03/09/2025');
  });

  it('parses pipe and CSV bodies by header, rejecting rows with the wrong field count', () => {
    const pipe = parseDelimited('Trans ID|Trans Date|Commission|\n1|01/01/2025|1.00|\n2|01/02/2025\n3|01/03/2025|"q|\n');
    expect(pipe.header).toEqual(['Trans ID', 'Trans Date', 'Commission']);
    expect(pipe.rows.map((r) => r.record['Trans ID'])).toEqual(['1', '3']);
    expect(pipe.rows[1]!.record.Commission).toBe('"q');
    expect(pipe.rejects).toEqual([expect.objectContaining({ line: 3 })]);
    const csv = parseDelimited('Report,,\nTRANSID,DATEOFTRANS,COMMISSION\n7,01/01/2025,"1,000.00"\n');
    expect(csv.headerLine).toBe(2);
    expect(csv.rows[0]!.record).toEqual({ TRANSID: '7', DATEOFTRANS: '01/01/2025', COMMISSION: '1,000.00' });
    expect(parseDelimited('').rows).toEqual([]);
  });

  it('reads apitokencount replies of several shapes', () => {
    expect(parseTokenCount('Credits Used|Monthly Limit\n12|200')).toEqual({ used: 12, quota: 200 });
    expect(parseTokenCount('Remaining,Limit\n150,200')).toEqual({ used: 50, quota: 200 });
    expect(parseTokenCount('37')).toEqual({ used: 37 });
    expect(parseTokenCount('hello')).toBeUndefined();
  });
});
