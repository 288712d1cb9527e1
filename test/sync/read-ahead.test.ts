// Read-ahead in the sync engine: a stream reads while the one before it commits, but its own commits
// wait for that stream; a stream marked readAhead: false starts only after the earlier ones
// committed; a failed stream stops every later commit; `commitAfter` holds a connection's commits
// (not its reads) until another connection's sync has settled.
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { useTestDb } from '../helpers/db.ts';
import { runStreams } from '../../src/sync/engine.ts';
import type { StreamDef } from '../../src/sync/types.ts';
import { configSchema, type ConnectionConfig } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';

const config = configSchema.parse({});
const connection: ConnectionConfig = { name: 'toy', type: 'partnerstack', enabled: true, credentials: {}, timeoutMs: 1000, options: {} };

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A stream of `ids` in pages of two, logging its read and write steps; write() waits for `hold`. */
function logged(name: string, ids: string[], log: string[], opts: { hold?: Promise<void>; readAhead?: false } = {}): StreamDef<{ id: string }, { done: boolean }> {
  return {
    name,
    ...(opts.readAhead === false ? { readAhead: false as const } : {}),
    schema: z.looseObject({ id: z.string() }),
    key: (r) => r.id,
    initialState: () => ({ done: false }),
    async *read() {
      log.push(`${name}:read-start`);
      for (let i = 0; i < ids.length; i += 2) yield { records: ids.slice(i, i + 2).map((id) => ({ id })), state: { done: i + 2 >= ids.length } };
      log.push(`${name}:read-end`);
    },
    async write(_trx, records) {
      log.push(`${name}:write-start`);
      if (opts.hold) await opts.hold;
      log.push(`${name}:write ${records.map((r) => r.id).join(',')}`);
    },
  };
}

const ticks = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('sync engine read-ahead', () => {
  const t = useTestDb();
  const checkpoints = async (): Promise<string[]> => (await t.db('checkpoints').where({ connection: 'toy' }).orderBy('stream').select<{ stream: string }[]>('stream')).map((r) => r.stream);

  it('reads the next stream while the previous one commits, and commits in stream order', async () => {
    const log: string[] = [];
    const holdA = deferred();
    const run = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('a', ['a1', 'a2', 'a3'], log, { hold: holdA.promise }), logged('b', ['b1'], log), logged('c', ['c1', 'c2'], log)] });
    // a's commit is held; b and c read everything meanwhile, and neither commits before a.
    await vi.waitFor(() => expect(log).toContain('c:read-end'), { timeout: 5000 });
    // (No database read here: a's open transaction holds PGlite's only connection.)
    expect(log.filter((e) => e.startsWith('b:write') || e.startsWith('c:write'))).toEqual([]);
    holdA.resolve();
    const result = await run;
    expect(result.status).toBe('succeeded');
    expect(log.filter((e) => e.includes(':write '))).toEqual(['a:write a1,a2,a3', 'b:write b1', 'c:write c1,c2']);
    expect(Object.keys(result.streams)).toEqual(['a', 'b', 'c']);
    expect(result.streams.b!.records).toBe(1);
    expect(await checkpoints()).toEqual(['a', 'b', 'c']);
  });

  it('starts a readAhead: false stream only after the streams before it have committed', async () => {
    const log: string[] = [];
    const holdA = deferred();
    const run = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('a', ['a1'], log, { hold: holdA.promise }), logged('b', ['b1'], log, { readAhead: false })] });
    await vi.waitFor(() => expect(log).toContain('a:write-start'), { timeout: 5000 });
    await ticks(50); // what the previous test's b needed to read everything, and more
    expect(log).not.toContain('b:read-start');
    holdA.resolve();
    expect((await run).status).toBe('succeeded');
    expect(log.indexOf('b:read-start')).toBeGreaterThan(log.indexOf('a:write a1'));
  });

  it('a stream that fails to commit stops the commits of the streams that read ahead, and the run reports its error', async () => {
    const log: string[] = [];
    const holdA = deferred();
    const run = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('a', ['a1'], log, { hold: holdA.promise }), logged('b', ['b1'], log), logged('c', ['c1'], log)] });
    await vi.waitFor(() => expect(log).toContain('b:read-end'), { timeout: 5000 });
    holdA.reject(new Error('disk full'));
    const result = await run;
    expect(result.status).toBe('failed');
    expect(result.error).toContain('disk full');
    expect(log.filter((e) => e.startsWith('b:write') || e.startsWith('c:write'))).toEqual([]);
    expect(result.streams).toEqual({});
    // Nothing of a, b or c was committed: the next run starts them from scratch.
    expect(await checkpoints()).toEqual([]);
    expect(Number((await t.db('stream_keys').where({ connection: 'toy' }).count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(0);
  });

  it('commitAfter holds every commit (not the reads) until it settles, even if it fails', async () => {
    const log: string[] = [];
    const billing = deferred();
    const run = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('a', ['a1', 'a2'], log), logged('b', ['b1'], log)], commitAfter: billing.promise });
    await vi.waitFor(() => expect(log).toContain('b:read-end'), { timeout: 5000 });
    expect(log.filter((e) => e.includes(':write'))).toEqual([]);
    billing.reject(new Error('stripe sync failed'));
    const result = await run;
    expect(result.status).toBe('succeeded');
    expect(log.filter((e) => e.includes(':write '))).toEqual(['a:write a1,a2', 'b:write b1']);
    expect(await checkpoints()).toEqual(['a', 'b']);
  });
  it('a stream that reads nothing still ends after the one before it: no later commit jumps ahead', async () => {
    const log: string[] = [];
    const holdA = deferred();
    const run = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('a', ['a1'], log, { hold: holdA.promise }), logged('empty', [], log), logged('c', ['c1'], log)] });
    await vi.waitFor(() => expect(log).toContain('c:read-end'), { timeout: 5000 });
    await ticks(50);
    expect(log.filter((e) => e.startsWith('c:write'))).toEqual([]);
    holdA.reject(new Error('disk full'));
    const result = await run;
    expect(result.error).toContain('disk full');
    expect(log.filter((e) => e.startsWith('c:write'))).toEqual([]);
    expect(await checkpoints()).toEqual([]);

    // The same with commitAfter held: nothing commits before it settles, whatever stream comes first.
    const log2: string[] = [];
    const billing = deferred();
    const run2 = runStreams({ db: t.db, config, connection, log: silentLogger, streams: [logged('empty', [], log2), logged('b', ['b1'], log2)], commitAfter: billing.promise });
    await vi.waitFor(() => expect(log2).toContain('b:read-end'), { timeout: 5000 });
    await ticks(50);
    expect(log2.filter((e) => e.includes(':write'))).toEqual([]);
    billing.resolve();
    expect((await run2).status).toBe('succeeded');
    expect(log2.filter((e) => e.includes(':write '))).toEqual(['b:write b1']);
  });
  it('a stream reading ahead holds one batch until it may commit, then reads on', async () => {
    const log: string[] = [];
    const holdA = deferred();
    const twoPerBatch = configSchema.parse({ sync: { batchRecords: 2 } });
    const b = logged('b', ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'], log);
    const read = b.read.bind(b);
    b.read = async function* (ctx, state) {
      for await (const page of read(ctx, state)) {
        log.push(`b:page ${page.records.length}`);
        yield page;
      }
    };
    const run = runStreams({ db: t.db, config: twoPerBatch, connection, log: silentLogger, streams: [logged('a', ['a1'], log, { hold: holdA.promise }), b] });
    await vi.waitFor(() => expect(log).toContain('b:page 2'), { timeout: 5000 });
    await ticks(50);
    // One page fills b's first batch; b reads no further while a is committing.
    expect(log.filter((e) => e.startsWith('b:page'))).toEqual(['b:page 2']);
    holdA.resolve();
    expect((await run).status).toBe('succeeded');
    expect(log.filter((e) => e.startsWith('b:page'))).toHaveLength(3);
    expect(log.filter((e) => e.startsWith('b:write '))).toEqual(['b:write b1,b2', 'b:write b3,b4', 'b:write b5,b6']);
  });
});
