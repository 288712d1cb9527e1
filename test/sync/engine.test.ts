import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { runStreams } from '../../src/sync/engine.ts';
import { configSchema, type ConnectionConfig } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { toyStream } from './toy-stream.ts';

const BASE = 'http://toy.test.local';
const config = configSchema.parse({});
/** One page per transaction, to kill the run between any two pages. */
const pageConfig = configSchema.parse({ sync: { batchRecords: 1 } });
const connection: ConnectionConfig = { name: 'toy', type: 'partnerstack', enabled: true, credentials: {}, timeoutMs: 1000, options: {} };
const T0 = Date.UTC(2025, 0, 1);

function items(n: number, offset = 0) {
  return Array.from({ length: n }, (_, i) => ({ id: `it_${String(i + offset).padStart(4, '0')}`, amount: 1000 + i + offset, currency: 'USD', created: T0 + (i + offset) * 60_000, extra: { kept: true } }));
}

/** Serves `all` in pages of `size` with cursor `after`. */
function serve(all: unknown[], size: number, opts: { failOnPage?: number } = {}) {
  let served = 0;
  return nock(BASE)
    .persist()
    .get('/items')
    .query(true)
    .reply(function (uri: unknown) {
      // nock 15 may hand the callback a fetch Request rather than the path string.
      const href = typeof uri === 'string' ? uri : (uri as { url: string }).url;
      const after = new URL(href, BASE).searchParams.get('after');
      const start = after ? all.findIndex((x) => (x as { id: string }).id === after) + 1 : 0;
      const page = Math.floor(start / size) + 1;
      if (opts.failOnPage === page && served++ === 0) return [400, { message: 'injected failure' }];
      return [200, { items: all.slice(start, start + size), has_more: start + size < all.length }];
    });
}

async function snapshot(t: TestDb) {
  const tx = await t.db('network_transactions').orderBy('external_id').select('external_id', 'amount_minor', 'currency', 'occurred_at', 'deleted_at');
  const raw = await t.db('raw_records').orderBy('external_id').select('external_id', 'hash', 'payload');
  const cp = await t.db('checkpoints').select('stream', 'state');
  return { tx, raw, cp };
}

beforeAll(() => nock.disableNetConnect());

describe('sync engine', () => {
  const dbs: TestDb[] = [];
  afterEach(async () => {
    nock.cleanAll();
    await Promise.all(dbs.splice(0).map((d) => d.destroy()));
  });
  const newDb = async () => {
    const t = await createTestDb();
    dbs.push(t);
    return t;
  };

  it('a failure injected mid-run, then a re-run, gives exactly the rows of an uninterrupted run', async () => {
    const data = items(95);
    const clean = await newDb();
    serve(data, 10);
    const r1 = await runStreams({ db: clean.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    expect(r1.status).toBe('succeeded');
    expect(r1.streams.items!.records).toBe(95);
    nock.cleanAll();

    // Failure 1: the API fails on page 4 (nothing of page 4 is written; pages 1-3, read into a
    // batch that was not full yet, are committed before the run gives up).
    const broken = await newDb();
    serve(data, 10, { failOnPage: 4 });
    const r2 = await runStreams({ db: broken.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    expect(r2.status).toBe('failed');
    expect(r2.error).toContain('HTTP 400');
    expect(await broken.db('network_transactions').count<{ n: number }[]>('* as n')).toEqual([{ n: 30 }]);
    // Failure 2: the process dies right after page 7 committed (simulated by throwing from afterPage).
    const r3 = await runStreams({
      db: broken.db, config: pageConfig, connection, streams: [toyStream(BASE)], log: silentLogger,
      afterPage: (_s, n) => {
        if (n === 4) throw new Error('killed');
      },
    });
    expect(r3.status).toBe('failed');
    const r4 = await runStreams({ db: broken.db, config: pageConfig, connection, streams: [toyStream(BASE)], log: silentLogger });
    expect(r4.status).toBe('succeeded');
    // The resumed run started from the checkpoint: it read only the remaining pages.
    expect(r4.streams.items!.records).toBe(25);
    const a = await snapshot(clean);
    const b = await snapshot(broken);
    expect(b.tx).toEqual(a.tx);
    expect(b.raw).toEqual(a.raw);
    expect(b.cp).toEqual(a.cp);
    expect(a.tx).toHaveLength(95);
    // Unknown fields survive into the raw store.
    expect((a.raw[0]!.payload as { extra: unknown }).extra).toEqual({ kept: true });
  });

  it('commits pages in batches: a kill between batches resumes after the last committed batch', async () => {
    const data = items(95);
    // Pages of 10 into batches of 25: page 3 goes half into the first batch, half into the second.
    const batched = configSchema.parse({ sync: { batchRecords: 25 } });
    const clean = await newDb();
    serve(data, 10);
    const commits: number[] = [];
    const r1 = await runStreams({ db: clean.db, config: batched, connection, streams: [toyStream(BASE)], log: silentLogger, onProgress: (e) => commits.push(e.pages) });
    expect(r1.status).toBe('succeeded');
    expect(commits).toEqual([2, 5, 7, 10]); // whole pages committed after each batch
    nock.cleanAll();

    const broken = await newDb();
    serve(data, 10);
    let rowsWhenKilled = -1;
    const r2 = await runStreams({
      db: broken.db, config: batched, connection, streams: [toyStream(BASE)], log: silentLogger,
      afterPage: async (_s, n) => {
        if (n !== 5) return;
        // Page 5 ends the second batch (page 3's second half, pages 4-5): that whole batch is committed, nothing after it.
        rowsWhenKilled = Number((await broken.db('network_transactions').count<{ n: number }[]>('* as n'))[0]!.n);
        throw new Error('killed');
      },
    });
    expect(r2.status).toBe('failed');
    expect(rowsWhenKilled).toBe(50);
    const r3 = await runStreams({ db: broken.db, config: batched, connection, streams: [toyStream(BASE)], log: silentLogger });
    expect(r3.status).toBe('succeeded');
    expect(r3.streams.items!.records).toBe(45);
    const a = await snapshot(clean);
    const b = await snapshot(broken);
    expect(b.tx).toEqual(a.tx);
    expect(b.raw.map((r) => [r.external_id, r.hash])).toEqual(a.raw.map((r) => [r.external_id, r.hash]));
  });

  it('a skipUnchanged stream re-writes only records whose content changed (unless sync.skipUnchanged is off)', async () => {
    const t = await newDb();
    const data = items(30);
    serve(data, 10);
    const written: string[] = [];
    const run = (cfg = config) => runStreams({ db: t.db, config: cfg, connection, streams: [toyStream(BASE, { skipUnchanged: true, written })], log: silentLogger });
    expect((await run()).streams.items).toMatchObject({ records: 30, written: 30, unchanged: 0 });
    nock.cleanAll();
    // The same 30 again, one of them changed: only that one reaches write().
    const changed = data.map((d) => (d.id === 'it_0007' ? { ...d, amount: 99_999 } : d));
    serve(changed, 10);
    written.length = 0;
    expect((await run()).streams.items).toMatchObject({ records: 30, written: 1, unchanged: 29 });
    expect(written).toEqual(['it_0007']);
    const row = await t.db('network_transactions').where({ external_id: 'it_0007' }).first('amount_minor');
    expect(Number(row.amount_minor)).toBe(99_999);
    // Switched off: everything read is re-mapped.
    written.length = 0;
    expect((await run(configSchema.parse({ sync: { skipUnchanged: false } }))).streams.items).toMatchObject({ records: 30, written: 30 });
    expect(written).toHaveLength(30);
  });


  it('tail pages skip unchanged records but write changed and stale ones; deletions inside the tail are still found; a sweep re-maps all', async () => {
    const t = await newDb();
    const data = items(30);
    const window = { lookbackFrom: new Date(T0), lookbackTo: new Date(T0 + 29 * 60_000) };
    const written: string[] = [];
    const asked: string[][] = [];
    const stale = async (_trx: unknown, keys: string[]) => {
      asked.push([...keys].sort());
      return new Set(keys.filter((k) => k === 'it_0004'));
    };
    const run = (tail: boolean, cfg = pageConfig) => {
      written.length = 0;
      return runStreams({ db: t.db, config: cfg, connection, streams: [toyStream(BASE, { ...window, tail, stale, written })], log: silentLogger });
    };
    serve(data, 10);
    // A first import has no stored hashes: everything is written, stale() is not asked.
    expect((await run(true)).streams.items).toMatchObject({ records: 30, written: 30, unchanged: 0 });
    expect(asked).toEqual([]);
    nock.cleanAll();
    // Tail: it_0007 changed, it_0010 vanished, it_0004 unchanged but stale; the other 27 are skipped.
    const next = data.filter((d) => d.id !== 'it_0010').map((d) => (d.id === 'it_0007' ? { ...d, amount: 99_999 } : d));
    serve(next, 10);
    await t.db('network_transactions').where({ external_id: 'it_0004' }).update({ amount_minor: 1 }); // what a re-map repairs
    expect((await run(true)).streams.items).toMatchObject({ records: 29, written: 2, unchanged: 27, deleted: 1 });
    expect(written.sort()).toEqual(['it_0004', 'it_0007']);
    expect(asked.flat()).toHaveLength(28);
    const tx = async (id: string) => t.db('network_transactions').where({ external_id: id }).first('amount_minor', 'deleted_at');
    expect(Number((await tx('it_0007')).amount_minor)).toBe(99_999);
    expect(Number((await tx('it_0004')).amount_minor)).toBe(1004);
    expect((await tx('it_0010')).deleted_at).not.toBeNull();
    // A vanished record that comes back is written (its key was deleted), even on a tail.
    nock.cleanAll();
    serve(data.map((d) => (d.id === 'it_0007' ? { ...d, amount: 99_999 } : d)), 10);
    expect((await run(true)).streams.items).toMatchObject({ records: 30, written: 2, unchanged: 28 });
    expect(written.sort()).toEqual(['it_0004', 'it_0010']);
    expect((await tx('it_0010')).deleted_at).toBeNull();
    // Not a tail (a sweep), or sync.skipUnchanged off: every record is re-mapped.
    expect((await run(false)).streams.items).toMatchObject({ records: 30, written: 30, unchanged: 0 });
    expect((await run(true, configSchema.parse({ sync: { skipUnchanged: false, batchRecords: 1 } }))).streams.items).toMatchObject({ records: 30, written: 30, unchanged: 0 });
  });

  it('keeps one raw version per distinct content: re-reads add none, a change adds one, a change back adds none', async () => {
    const t = await newDb();
    const data = items(12);
    const run = async (rows: unknown[]) => {
      nock.cleanAll();
      serve(rows, 5);
      expect((await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger })).status).toBe('succeeded');
    };
    const raw = async (id: string) => (await t.db('raw_records').where({ external_id: id }).orderBy('fetched_at').select('payload')).map((r) => (r.payload as { amount: number }).amount);
    await run(data);
    await run(data);
    expect(await t.db('raw_records').count<{ n: number }[]>('* as n')).toEqual([{ n: 12 }]);
    const changed = data.map((d) => (d.id === 'it_0003' ? { ...d, amount: 5 } : d));
    await run(changed);
    await run(data); // back to the first content: already kept
    expect(await raw('it_0003')).toEqual([1003, 5]);
    expect(await t.db('raw_records').count<{ n: number }[]>('* as n')).toEqual([{ n: 13 }]);
    // The stored hash follows the last content read.
    const key = await t.db('stream_keys').where({ external_id: 'it_0003' }).first('hash');
    const first = await t.db('raw_records').where({ external_id: 'it_0003' }).orderBy('fetched_at').first('hash');
    expect(key.hash).toBe(first.hash);
  });
  it('a first import (no stored keys: no hash look-up) that reads a key twice stores what a run over stored keys stores', async () => {
    const base = items(13);
    // it_0001 again unchanged and it_0002 again with a new amount, on the last page (page ends stay unique for the cursor).
    const list = [...base.slice(0, 11), base[1]!, { ...base[2]!, amount: 7 }, base[11]!, base[12]!];
    const tables = async (t: TestDb) => ({
      raw: await t.db('raw_records').orderBy(['external_id', 'hash']).select('external_id', 'hash', 'payload'),
      keys: await t.db('stream_keys').orderBy('external_id').select('external_id', 'hash', 'deleted_at'),
      tx: await t.db('network_transactions').orderBy('external_id').select('external_id', 'amount_minor'),
    });
    for (const cfg of [config, pageConfig]) {
      const fresh = await newDb();
      serve(list, 5);
      const r = await runStreams({ db: fresh.db, config: cfg, connection, streams: [toyStream(BASE, { skipUnchanged: true })], log: silentLogger });
      expect(r.status).toBe('succeeded');
      nock.cleanAll();
      const known = await newDb();
      serve(base, 5);
      await runStreams({ db: known.db, config: cfg, connection, streams: [toyStream(BASE, { skipUnchanged: true })], log: silentLogger });
      nock.cleanAll();
      serve(list, 5);
      await runStreams({ db: known.db, config: cfg, connection, streams: [toyStream(BASE, { skipUnchanged: true })], log: silentLogger });
      nock.cleanAll();
      const got = await tables(fresh);
      expect(got).toEqual(await tables(known));
      expect(got.raw).toHaveLength(14);
      expect(got.tx.find((x) => x.external_id === 'it_0002')).toMatchObject({ amount_minor: 7 });
    }
  }, 120_000); // four databases (PGlite under load took over 60 s)

  it('a key read twice in one batch, changed then back to its stored content, ends at the content read last', async () => {
    const base = items(13);
    // it_0002 as B (amount 7), then again as A (what is stored), in the same batch.
    const list = [...base.slice(0, 11), { ...base[2]!, amount: 7 }, base[2]!, base[11]!, base[12]!];
    const t = await newDb();
    serve(base, 5);
    await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE, { skipUnchanged: true })], log: silentLogger });
    nock.cleanAll();
    serve(list, 5);
    expect((await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE, { skipUnchanged: true })], log: silentLogger })).status).toBe('succeeded');
    nock.cleanAll();
    const tx = await t.db('network_transactions').where({ external_id: 'it_0002' }).first('amount_minor');
    expect(tx.amount_minor).toBe(base[2]!.amount);
    const key = await t.db('stream_keys').where({ external_id: 'it_0002' }).first('hash');
    const firstHash = await t.db('raw_records').where({ external_id: 'it_0002' }).orderBy('fetched_at').first('hash');
    expect(key.hash).toBe(firstHash.hash);
  });

  it('analyzes tables a large import filled, and spends no size check on a run that reads a handful of records', async () => {
    const t = await newDb();
    const sizeChecks: string[] = [];
    t.db.on('query', (q: { sql: string }) => {
      if (/pg_relation_size/.test(q.sql)) sizeChecks.push(q.sql);
    });
    const reltuples = async () => Number((await t.db.raw("SELECT reltuples FROM pg_class WHERE relname = 'network_transactions' AND relnamespace = to_regnamespace(current_schema())")).rows[0].reltuples);
    expect(await reltuples()).toBeLessThan(0); // never analyzed
    serve(items(6000), 500);
    expect((await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger })).status).toBe('succeeded');
    expect(sizeChecks.length).toBeGreaterThan(0);
    expect(await reltuples()).toBeGreaterThan(1000);
    nock.cleanAll();
    sizeChecks.length = 0;
    serve(items(12, 6000), 500);
    expect((await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger })).status).toBe('succeeded');
    expect(sizeChecks).toEqual([]);
  });

  it('commits a page larger than the batch in parts, and a run killed between parts re-runs to the same rows', async () => {
    const small = configSchema.parse({ sync: { batchRecords: 10 } });
    const data = items(60);
    const sizes: number[] = [];
    const stream = (failAt?: number) => {
      const s = toyStream(BASE);
      const write = s.write.bind(s);
      let calls = 0;
      s.write = async (trx, recs, ctx, contexts) => {
        if (++calls === failAt) throw Object.assign(new Error('disk full'), { code: '53100' });
        sizes.push(recs.length);
        return write(trx, recs, ctx, contexts);
      };
      return s;
    };
    const clean = await newDb();
    serve(data, 25);
    const r = await runStreams({ db: clean.db, config: small, connection, streams: [stream()], log: silentLogger });
    expect(r.status).toBe('succeeded');
    expect(r.streams.items).toMatchObject({ pages: 3, records: 60 });
    // Parts fill what is left of the batch, so no write gets more than batchRecords: pages of 25,
    // 25 and 10 go [10] [10] [5 + 5] [10] [10] [10].
    expect(sizes).toEqual([10, 10, 10, 10, 10, 10]);
    const want = await snapshot(clean);
    // Killed at page 1's second part (no checkpoint yet, 10 rows), then at page 2's last part
    // (checkpoint at page 1, 40 rows written).
    for (const failAt of [2, 5]) {
      const t = await newDb();
      expect((await runStreams({ db: t.db, config: small, connection, streams: [stream(failAt)], log: silentLogger })).status).toBe('failed');
      const cp = await t.db('checkpoints').select('state');
      expect(cp).toHaveLength(failAt === 2 ? 0 : 1);
      expect(await t.db('network_transactions').count<{ n: number }[]>('* as n')).toEqual([{ n: failAt === 2 ? 10 : 40 }]);
      expect((await runStreams({ db: t.db, config: small, connection, streams: [stream()], log: silentLogger })).status).toBe('succeeded');
      expect(await snapshot(t)).toEqual(want);
    }
  }, 120_000); // three databases

  it('retries a batch that met a concurrent writer (deadlock / unique race) and counts it once', async () => {
    const t = await newDb();
    serve(items(12), 5);
    const stream = toyStream(BASE);
    const write = stream.write.bind(stream);
    let failures = 0;
    stream.write = async (trx, recs, ctx, contexts) => {
      if (failures++ === 0) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      return write(trx, recs, ctx, contexts);
    };
    const r = await runStreams({ db: t.db, config, connection, streams: [stream], log: silentLogger });
    expect(r.status).toBe('succeeded');
    expect(failures).toBe(2);
    expect(r.streams.items).toMatchObject({ records: 12, written: 12 });
    expect(await t.db('network_transactions').count<{ n: number }[]>('* as n')).toEqual([{ n: 12 }]);
    // Anything else is not retried.
    nock.cleanAll();
    serve(items(3, 100), 5);
    const bad = toyStream(BASE);
    let calls = 0;
    bad.write = async () => {
      calls++;
      throw Object.assign(new Error('value too long'), { code: '22001' });
    };
    expect((await runStreams({ db: t.db, config, connection, streams: [bad], log: silentLogger })).status).toBe('failed');
    expect(calls).toBe(1);
  });

  it('quarantines a malformed record with the reason and carries on', async () => {
    const t = await newDb();
    const data: unknown[] = items(12);
    data[5] = { id: 'it_bad', amount: '12.50', currency: 'USD', created: T0 };
    serve(data, 5);
    const r = await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    expect(r.status).toBe('succeeded');
    expect(r.streams.items).toMatchObject({ records: 11, quarantined: 1 });
    const q = await t.db('quarantine').select('external_id', 'error', 'occurrences');
    expect(q).toHaveLength(1);
    expect(q[0]!.external_id).toBe('it_bad');
    expect(q[0]!.error).toMatch(/amount: .*expected number/i);
    expect(await t.db('network_transactions').count<{ n: number }[]>('* as n')).toEqual([{ n: 11 }]);
    // Seeing the same bad record again counts it, without a second row.
    nock.cleanAll();
    serve(data, 5);
    await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    const q2 = await t.db('quarantine').select('occurrences');
    expect(q2).toEqual([{ occurrences: 2 }]);
  });

  it('a re-read of unchanged records moves only last_seen_at; the same payload with a new record time gets it', async () => {
    const t = await newDb();
    const data = items(12);
    const keyRows = () => t.db('stream_keys').orderBy('external_id').select('external_id', 'hash', 'record_at', 'deleted_at', 'last_seen_at');
    serve(data, 5);
    await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    const before = await keyRows();
    nock.cleanAll();
    serve(data, 5);
    await new Promise((r) => setTimeout(r, 5));
    await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE)], log: silentLogger });
    const after = await keyRows();
    expect(after.map(({ last_seen_at: _, ...r }) => r)).toEqual(before.map(({ last_seen_at: _, ...r }) => r));
    for (let i = 0; i < after.length; i++) expect(new Date(after[i]!.last_seen_at).getTime()).toBeGreaterThan(new Date(before[i]!.last_seen_at).getTime());
    // Same payloads, but the stream now places them an hour later (e.g. a changed time zone option):
    // the key rows must take the new record time, which deletion windows select by.
    nock.cleanAll();
    serve(data, 5);
    const shifted = { ...toyStream(BASE), recordTime: (r: { created: number }) => new Date(r.created + 3_600_000) };
    await runStreams({ db: t.db, config, connection, streams: [shifted], log: silentLogger });
    const moved = await keyRows();
    expect(moved.map((r) => new Date(r.record_at).getTime())).toEqual(data.map((d) => d.created + 3_600_000));
    expect(moved.map((r) => r.hash)).toEqual(before.map((r) => r.hash));
  });

  it('a stream that never detects vanished records re-reads unchanged keys without writing them', async () => {
    const t = await newDb();
    const data = items(12);
    // xmin: the transaction that wrote each row version; an UPDATE (even of last_seen_at alone) makes a new one.
    const versions = () => t.db('stream_keys').orderBy('external_id').select('external_id', 'hash', 'last_seen_at', t.db.raw('xmin::text AS xmin'));
    const stream = toyStream(BASE, { detectsVanished: false });
    serve(data, 5);
    await runStreams({ db: t.db, config, connection, streams: [stream], log: silentLogger });
    const before = await versions();
    expect(before).toHaveLength(12);
    nock.cleanAll();
    // The same records again, and one changed: only the changed key gets a new row version.
    serve(data.map((d) => (d.id === 'it_0004' ? { ...d, amount: d.amount + 1 } : d)), 5);
    const r = await runStreams({ db: t.db, config, connection, streams: [stream], log: silentLogger });
    expect(r.status).toBe('succeeded');
    const after = await versions();
    expect(after.filter((a, i) => a.xmin !== before[i]!.xmin).map((a) => a.external_id)).toEqual(['it_0004']);
    expect(after.filter((a, i) => a.hash !== before[i]!.hash).map((a) => a.external_id)).toEqual(['it_0004']);
    expect(await t.db('network_transactions').where({ external_id: 'it_0004' }).first('amount_minor')).toEqual({ amount_minor: 1005 });
  });

  it('a completed window on a stream that does not declare detectsVanished fails its run', async () => {
    const t = await newDb();
    serve(items(3), 5);
    const stream = toyStream(BASE, { detectsVanished: false, lookbackFrom: new Date(T0), lookbackTo: new Date(T0 + 600_000) });
    const r = await runStreams({ db: t.db, config, connection, streams: [stream], log: silentLogger });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/items completed a look-back window but does not declare detectsVanished/);
    // The batch holding that page was rolled back with it: no checkpoint claims the window was checked.
    expect(await t.db('checkpoints').where({ stream: 'items' }).first()).toBeUndefined();
  });

  it('marks records that vanished from a rescanned window as deleted', async () => {
    const t = await newDb();
    const data = items(20);
    const window = { lookbackFrom: new Date(T0), lookbackTo: new Date(T0 + 10 * 60_000) };
    serve(data, 7);
    await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE, window)], log: silentLogger, now: new Date(Date.now() - 1000) });
    nock.cleanAll();
    // it_0003 (inside the window) and it_0015 (outside it) disappear from the API.
    serve(data.filter((d) => d.id !== 'it_0003' && d.id !== 'it_0015'), 7);
    const r = await runStreams({ db: t.db, config, connection, streams: [toyStream(BASE, window)], log: silentLogger });
    expect(r.streams.items!.deleted).toBe(1);
    const deleted = await t.db('network_transactions').whereNotNull('deleted_at').pluck('external_id');
    expect(deleted).toEqual(['it_0003']);
  });
});
