// The sync engine. Pages a stream yields are committed in batches (config sync.batchRecords /
// batchMaxMs); each batch is ONE transaction holding the raw records (hashed), the mapped canonical
// rows, quarantine entries for invalid records, the keys seen (for look-back deletion) and the
// checkpoint state after the batch's last page. A run killed at any point therefore resumes from the
// last committed batch and never loses or doubles a row.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig } from '../config/schema.ts';
import type { Json, Page, StreamDef, SyncContext } from './types.ts';
import { hashRecord, sha256 } from '../util/hash.ts';
import { bulkInsertTexts } from '../db/bulk.ts';
import { notePlannerWrites, refreshPlannerStats } from '../db/planner-stats.ts';
import { scrubSecrets } from '../util/secrets.ts';
import { errorMessage } from '../util/errors.ts';
import { formatZodIssues } from '../util/zod-format.ts';

/** Thrown by a stream to end a run cleanly before a budget runs out; the run is resumable. */
export class StopSync extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StopSync';
  }
}

export interface StreamStats {
  pages: number;
  records: number;
  /** Records handed to write(); `unchanged` ones (skipUnchanged streams) were not. */
  written: number;
  unchanged: number;
  quarantined: number;
  deleted: number;
}

export interface ProgressEvent {
  connection: string;
  stream: string;
  pages: number;
  records: number;
  quarantined: number;
}

export interface SyncRunResult {
  runId: number;
  connection: string;
  status: 'succeeded' | 'failed' | 'stopped';
  streams: Record<string, StreamStats>;
  error?: string;
}

export interface RunStreamsOptions {
  db: Knex;
  config: Config;
  connection: ConnectionConfig;
  streams: StreamDef<any, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  log: Logger;
  env?: NodeJS.ProcessEnv;
  only?: string[] | undefined;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Called after a page committed (tests use it to inject failures between pages). */
  afterPage?: (stream: string, pageNo: number) => void | Promise<void>;
  runKind?: string;
  /**
   * The connection's commits wait for this (for a network connection, the billing connections'
   * syncs: its records link to customers billing creates); its reads go ahead meanwhile. Settling
   * either way releases them.
   */
  commitAfter?: Promise<unknown>;
}

/** A stream's commit was not made because a stream before it failed (the run reports that failure). */
class PriorStreamFailed extends Error {
  constructor() {
    super('an earlier stream of this run failed');
    this.name = 'PriorStreamFailed';
  }
}

export async function ensureConnectionRow(db: Knex, connection: ConnectionConfig): Promise<void> {
  await db('connections')
    .insert({ name: connection.name, type: connection.type })
    .onConflict('name')
    .merge({ type: connection.type, updated_at: db.fn.now() });
}

export async function runStreams(opts: RunStreamsOptions): Promise<SyncRunResult> {
  const { db, connection, log } = opts;
  const now = opts.now ?? new Date();
  await ensureConnectionRow(db, connection);
  const [run] = await db('sync_runs')
    .insert({ connection: connection.name, kind: opts.runKind ?? 'sync', status: 'running', started_at: now })
    .returning<{ id: number }[]>('id');
  const runId = run!.id;
  const ctx: SyncContext = { db, config: opts.config, connection, log: log.child({ connection: connection.name, runId }), now, runId, signal: opts.signal, env: opts.env ?? process.env };
  const result: SyncRunResult = { runId, connection: connection.name, status: 'succeeded', streams: {} };

  try {
    // Streams commit one after another, in order, but each reads while the one before it commits
    // (an incremental run is mostly round trips: idle ~1 s of a 10k run's 2.7 s read and committed
    // stream by stream). `gate` is true once the previous stream has committed everything, false if
    // it failed: then nothing later commits and the run reports the first failure, as before.
    let gate: Promise<boolean> = opts.commitAfter ? opts.commitAfter.then(() => true, () => true) : Promise.resolve(true);
    let failed = false;
    const runs: Array<Promise<void>> = [];
    const selected = opts.streams.filter((s) => !opts.only || opts.only.includes(s.name));
    // Every stream's checkpoint up front, in one round trip: only the stream itself changes it, and
    // a stream reading ahead then needs no database connection before its first commit (PGlite has one).
    const starts = await loadStreamStarts(db, connection.name, selected.map((s) => s.name));
    for (const stream of selected) {
      if (stream.readAhead === false) await gate;
      if (failed) break;
      let readEnd!: () => void;
      const readDone = new Promise<void>((resolve) => {
        readEnd = resolve;
      });
      const run = syncStream(ctx, stream, opts, starts.get(stream.name)!, gate, readEnd).then(async (stats) => {
        result.streams[stream.name] = stats;
        // Only after enough new records for some table to have doubled: an incremental run's streams
        // read a few records each, and the size check is a fixed cost per stream otherwise.
        await refreshPlannerStats(db, { mode: 'settled', log: ctx.log });
      });
      runs.push(run);
      gate = run.then(
        () => true,
        () => {
          failed = true;
          return false;
        },
      );
      // The next stream starts when this one has read everything (or has ended, failed or not).
      await Promise.race([readDone, gate]);
      if (failed) break;
    }
    // In stream order, the first failure is the run's; a later stream's own failure (one that read
    // ahead and failed too, not merely stopped by it) is logged.
    const failures = (await Promise.allSettled(runs)).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    for (const later of failures.slice(1)) if (!(later instanceof PriorStreamFailed)) ctx.log.warn({ err: scrubSecrets(errorMessage(later)) }, 'a stream that read ahead failed too');
    if (failures.length > 0) throw failures[0];
  } catch (err) {
    const stopped = err instanceof StopSync;
    result.status = stopped ? 'stopped' : 'failed';
    result.error = scrubSecrets(errorMessage(err));
    if (stopped) ctx.log.warn({ reason: result.error }, 'sync stopped early; it resumes from its checkpoint next run');
    else ctx.log.error({ err: result.error }, 'sync failed');
  }
  await db('sync_runs')
    .where({ id: runId })
    .update({ status: result.status, finished_at: new Date(), stats: JSON.stringify(result.streams), error: result.error ?? null });
  return result;
}

/**
 * Reads a stream and commits its batches. `gate` holds the commits back until the stream before it
 * has committed (false: it failed, so none are made); `onReadEnd` is called once the last page is read.
 */
async function syncStream(ctx: SyncContext, stream: StreamDef<any, any>, opts: RunStreamsOptions, start: StreamStart, gate: Promise<boolean>, onReadEnd: () => void): Promise<StreamStats> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const stats: StreamStats = { pages: 0, records: 0, written: 0, unchanged: 0, quarantined: 0, deleted: 0 };
  // A stream with no stored key yet (a first import, or its resumption before any batch committed)
  // has no stored hashes to compare: its batches skip that look-up. A key read twice within this
  // run is then simply written twice (idempotent upserts; the raw store keeps one row per content).
  const { state: stored, hasKeys: keysAtStart } = start;
  const state = stored ?? stream.initialState(ctx);
  ctx.log.debug({ stream: stream.name, resumed: stored !== undefined }, 'stream start');
  const { batchRecords, batchMaxMs } = opts.config.sync;

  // Pages are read into a batch and committed together; while one batch commits, the next pages
  // are already being fetched (one commit in flight at a time, in order). A commit failure is
  // kept and raised at the next step instead of as an unhandled rejection mid-fetch.
  let batch: Part[] = [];
  let batchSize = 0;
  let batchStarted = 0;
  let inflight: Promise<void> | undefined;
  let commitError: { err: unknown } | undefined;
  const settle = async (): Promise<void> => {
    if (inflight) await inflight;
    inflight = undefined;
    if (commitError) throw commitError.err;
  };
  const flush = (): void => {
    const pages = batch;
    batch = [];
    batchSize = 0;
    inflight = (async () => {
      if (!(await gate)) throw new PriorStreamFailed();
      await commitBatch(ctx, stream, pages, stats, keysAtStart);
      // Within a stream too (at most every few seconds), not only after it: a long first import
      // (75k Stripe invoices) also queries the tables it is filling (refund links).
      await refreshPlannerStats(ctx.db, { mode: 'periodic', log: ctx.log });
      const first = stats.pages + 1;
      stats.pages += pages.filter((p) => !p.partial).length;
      opts.onProgress?.({ connection: ctx.connection.name, stream: stream.name, pages: stats.pages, records: stats.records, quarantined: stats.quarantined });
      for (let n = first; n <= stats.pages; n++) await opts.afterPage?.(stream.name, n);
    })().catch((err: unknown) => {
      commitError = { err };
    });
  };

  try {
    for await (const page of stream.read(ctx, state) as AsyncIterable<Page<Json>>) {
      if (ctx.signal?.aborted) throw new Error('aborted');
      if (commitError) throw commitError.err;
      // The page goes into the batch in parts that fill it up to batchRecords (a batch never holds
      // more, whatever the page sizes).
      for (let rest: Page<Json> | undefined = page; rest; ) {
        const [part, more] = takePart(rest, batchRecords - batchSize);
        rest = more;
        if (batch.length === 0) batchStarted = Date.now();
        batch.push(part);
        batchSize += part.page.records.length + (part.page.rejects?.length ?? 0);
        if (batchSize >= batchRecords || Date.now() - batchStarted >= batchMaxMs) {
          await settle();
          flush();
          // Reading ahead of a stream (or of billing) that is still committing: hold this one batch
          // and read on once it may commit, instead of filling a second one. Three network
          // connections waiting out a 100k PGlite billing sync held two batches each (+55 MB of heap).
          await gate;
        }
      }
    }
    onReadEnd();
  } catch (err) {
    // The read failed (or stopped): the pages already read are complete and carry their own
    // checkpoint, so commit them before giving up — nothing fetched (or paid for in API credits)
    // is thrown away. A failed commit is not retried here.
    if (inflight) await inflight;
    if (!commitError && batch.length > 0) {
      flush();
      await inflight;
    }
    if (commitError && !(err instanceof StopSync) && !(commitError.err instanceof PriorStreamFailed)) ctx.log.error({ stream: stream.name, err: scrubSecrets(errorMessage(commitError.err)) }, 'committing the pages read before the failure failed too');
    throw err;
  }
  await settle();
  if (batch.length > 0) {
    flush();
    await settle();
  }
  // A stream that committed nothing (read() yielded no page) still ends only after the stream
  // before it: the next stream's commits, and a readAhead: false stream's start, wait for this one.
  if (!(await gate)) throw new PriorStreamFailed();
  return stats;
}

interface StreamStart {
  state: Json | undefined;
  hasKeys: boolean;
}

/**
 * Each stream's checkpoint and whether its batches should look up stored keys, in one round trip (a
 * fixed cost of every run). Looking up is always correct (it only finds nothing on a first import),
 * so a stream with a checkpoint looks up without asking: the EXISTS probe of a large stream's keys
 * took 0.1-0.45 s on a freshly cloned 1M database (incremental-profile).
 */
async function loadStreamStarts(db: Knex, connection: string, streams: string[]): Promise<Map<string, StreamStart>> {
  const res = await db.raw(
    `SELECT s.stream, c.state, c.state IS NOT NULL OR EXISTS (SELECT 1 FROM stream_keys k WHERE k.connection = ? AND k.stream = s.stream) AS has_keys
       FROM unnest(?::text[]) AS s(stream)
       LEFT JOIN checkpoints c ON c.connection = ? AND c.stream = s.stream`,
    [connection, streams, connection],
  );
  const out = new Map<string, StreamStart>();
  for (const row of res.rows as Array<{ stream: string; state: Json | null; has_keys: boolean }>) out.set(row.stream, { state: row.state ?? undefined, hasKeys: row.has_keys });
  return out;
}

/** What commitBatch reads of each stored key: its hash, liveness and record time (epoch ms text). */
const STORED_KEY_COLUMNS = `external_id, hash, deleted_at IS NULL AS live, (extract(epoch FROM record_at) * 1000)::bigint::text AS record_ms`;
const LOOK_UP_KEYS_SQL = `SELECT ${STORED_KEY_COLUMNS} FROM stream_keys WHERE connection = ? AND stream = ? AND external_id = ANY(?::text[])`;
/** The same look-up that also stamps last_seen_at (streams that detect vanished records). */
const STAMP_KEYS_SQL = `UPDATE stream_keys SET last_seen_at = ? WHERE connection = ? AND stream = ? AND external_id = ANY(?::text[]) RETURNING ${STORED_KEY_COLUMNS}`;
const RAW_ROW: Array<[string, string]> = [['external_id', 'text'], ['hash', 'text'], ['payload', 'json']];
const KEY_ROW: Array<[string, string]> = [['external_id', 'text'], ['record_at', 'timestamptz'], ['hash', 'text']];

/** A page or part of one; a `partial` part (all but the last of a split page) is committed without a checkpoint. */
export interface Part {
  page: Page<Json>;
  partial: boolean;
}

/**
 * The first `room` records of a page as a part, and the rest of the page (undefined when it all
 * fits). A page larger than what is left of the batch (a whole month of a network's report, one
 * window of a large account, or any page arriving when the batch is nearly full) goes to commits in
 * parts, so a batch never holds more than sync.batchRecords: the memory a commit takes (parsed
 * records, payload texts, statement JSON) is bounded by the batch size, not by how much the API
 * returns at once (batch size drove the pipeline's peak RSS: 2,000 → 10,000 records per batch took a
 * 100k sync from ~600 to 900 MB). Only the last part carries the page's state, completed window and
 * rejects; a run killed between parts re-reads the page from the previous checkpoint, and writing its
 * first parts again is an idempotent upsert.
 */
export function takePart(page: Page<Json>, room: number): [Part, Page<Json> | undefined] {
  const n = Math.max(1, room);
  if (page.records.length <= n) return [{ page, partial: false }, undefined];
  return [
    { page: { records: page.records.slice(0, n), state: page.state, context: page.context, skipUnchanged: page.skipUnchanged }, partial: true },
    { ...page, records: page.records.slice(n) },
  ];
}

async function commitBatch(ctx: SyncContext, stream: StreamDef<any, any>, parts: Part[], stats: StreamStats, lookUpStored: boolean): Promise<void> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const conn = ctx.connection.name;
  const valid: unknown[] = [];
  const hashes: string[] = [];
  /** Per valid record: its page is a tail's (unchanged content need not be re-mapped). */
  const tail: boolean[] = [];
  // Raw and key rows as JSON texts built here (the payload text is embedded as is; the columns
  // every row shares go as parameters): see bulkInsertTexts.
  const rawTexts: string[] = [];
  const keys: string[] = [];
  const keyTexts: string[] = [];
  /** Per valid record: its record time as epoch ms text (null when it has none). */
  const recordMs: Array<string | null> = [];
  const bad: Array<{ payload: unknown; error: string; location?: string; key?: string }> = [];
  const fetchedAt = new Date();

  for (const { page } of parts) {
    if (page.rejects) bad.push(...page.rejects);
    for (const raw of page.records) {
      const parsed = stream.schema.safeParse(raw);
      if (!parsed.success) {
        bad.push({ payload: raw, error: formatZodIssues(parsed.error).trim(), key: guessKey(raw) });
        continue;
      }
      const rec = parsed.data;
      const key = stream.key(rec);
      valid.push(rec);
      tail.push(page.skipUnchanged === true);
      // The hash is of the payload as received (not key-sorted): a record the API re-sends with its
      // keys in another order is stored as one more raw version, which is harmless, and hashing the
      // text already built for storage saves a second serialization of every record.
      const payload = JSON.stringify(raw);
      const hash = sha256(payload);
      hashes.push(hash);
      const jsonKey = JSON.stringify(String(key));
      keys.push(String(key));
      rawTexts.push(`{"external_id":${jsonKey},"hash":"${hash}","payload":${payload}}`);
      const recordAt = stream.recordTime?.(rec) ?? null;
      const ms = recordAt === null ? NaN : recordAt.getTime();
      recordMs.push(Number.isNaN(ms) ? null : String(ms));
      keyTexts.push(`{"external_id":${jsonKey},"record_at":${JSON.stringify(recordAt)},"hash":"${hash}"}`);
    }
  }
  // The records as received are not needed any more (their payload texts and parsed forms are):
  // let them go before the batch's statements build their texts.
  for (const p of parts) p.page = { ...p.page, records: [] };
  const pages = parts.map((p) => p.page);
  // The checkpoint is the state after the batch's last whole page (a batch may end inside a page).
  const last = parts.findLast((p) => !p.partial)?.page;

  let unchanged = 0;
  let written = valid.length;
  let deleted = 0;
  // Connections sync side by side (sync.concurrency), so a batch can meet another connection's
  // batch on a shared row (a customer, a partner): a deadlock or a unique-key race is retried with
  // the whole batch — every write in it is an idempotent upsert.
  await withConflictRetry(ctx, stream.name, () => ctx.db.transaction(async (trx) => {
    unchanged = 0;
    deleted = 0;
    // The hash stored per key says which records changed since last read. Only those get a raw
    // version (a re-read look-back window no longer sends its payloads again), and on
    // skipUnchanged streams only those are re-mapped. The raw store's unique key still catches a
    // content seen before under an older hash (A → B → A).
    const at = fetchedAt.toISOString();
    const stored = new Map<string, { hash: string | null; live: boolean; recordAt: string | null }>();
    if (keys.length > 0 && lookUpStored) {
      // Each stored key's hash, liveness and record time (as epoch ms text, compared below). On a
      // stream that detects vanished records the look-up is also the stamp: every stored key read in
      // this batch gets last_seen_at = at (what deletion detection reads) in the same index probe —
      // only last_seen_at changes, so the returned columns are the stored ones. Other streams never
      // read last_seen_at, so they only read (measured at 1M: the stamp was the incremental run's
      // largest statement, 22k updates of cold pages). Keys that changed, are new or were deleted
      // are upserted below either way.
      const res = stream.detectsVanished
        ? await trx.raw(STAMP_KEYS_SQL, [at, conn, stream.name, keys])
        : await trx.raw(LOOK_UP_KEYS_SQL, [conn, stream.name, keys]);
      for (const r of res.rows as Array<{ external_id: string; hash: string | null; live: boolean; record_ms: string | null }>) stored.set(r.external_id, { hash: r.hash, live: r.live, recordAt: r.record_ms });
    }
    const skipAll = stream.skipUnchanged === true && ctx.config.sync.skipUnchanged;
    const skipTail = ctx.config.sync.skipUnchanged;
    const toWrite: unknown[] = [];
    const newRaw: string[] = [];
    const rawSeen = new Set<string>();
    // 0 = write, 1 = skip, 2 = skip unless the stream's stale() names it.
    const skip = new Uint8Array(valid.length);
    const candidates: string[] = [];
    for (let i = 0; i < valid.length; i++) {
      const s = stored.get(keys[i]!);
      const same = s !== undefined && s.hash === hashes[i];
      if (!same) {
        const version = `${keys[i]!}|${hashes[i]!}`;
        if (!rawSeen.has(version)) {
          rawSeen.add(version);
          newRaw.push(rawTexts[i]!);
        }
        continue;
      }
      // Same key, same content as last stored (and not deleted since): nothing to re-map — on a
      // skipUnchanged stream always, on a tail page unless a link it looks up arrived since.
      if (!s.live) continue;
      if (skipAll) skip[i] = 1;
      else if (skipTail && tail[i]) {
        skip[i] = stream.stale ? 2 : 1;
        if (stream.stale) candidates.push(keys[i]!);
      }
    }
    const stale = candidates.length > 0 ? await stream.stale!(trx, [...new Set(candidates)], ctx) : undefined;
    const writtenKeys = new Set<string>();
    const lastOf = new Map<string, number>();
    for (let i = 0; i < valid.length; i++) {
      if (skip[i] === 2) skip[i] = stale!.has(keys[i]!) ? 0 : 1;
      if (!skip[i]) writtenKeys.add(keys[i]!);
      lastOf.set(keys[i]!, i);
    }
    // A key read twice in one batch (B, then A again = the stored content): B is written, so its
    // last reading must be written too, or the canonical row would stay at B while stream_keys says A.
    for (const [k, i] of lastOf) if (skip[i] && writtenKeys.has(k)) skip[i] = 0;
    for (let i = 0; i < valid.length; i++) {
      if (skip[i]) unchanged++;
      else toWrite.push(valid[i]);
    }
    written = toWrite.length;
    await bulkInsertTexts(trx, 'raw_records', newRaw, {
      columns: RAW_ROW,
      constants: [['connection', 'text', conn], ['stream', 'text', stream.name], ['run_id', 'bigint', ctx.runId], ['fetched_at', 'timestamptz', at]],
      onConflict: '(connection, stream, external_id, hash) DO NOTHING',
    });
    // One row per key (the last read wins), as one upsert statement cannot touch a row twice. A key
    // whose last reading equals its live stored row (same hash and record time) was fully stamped
    // by the look-up above; only the others (new, changed or deleted: a tail's minority) are upserted.
    const keyRows: string[] = [];
    for (const [k, i] of lastOf) {
      const s = stored.get(k);
      if (!(s !== undefined && s.live && s.hash === hashes[i] && s.recordAt === recordMs[i])) keyRows.push(keyTexts[i]!);
    }
    await bulkInsertTexts(trx, 'stream_keys', keyRows, {
      columns: KEY_ROW,
      constants: [['connection', 'text', conn], ['stream', 'text', stream.name], ['last_seen_at', 'timestamptz', at], ['deleted_at', 'timestamptz', null]],
      onConflict: '(connection, stream, external_id) DO UPDATE SET record_at = excluded.record_at, last_seen_at = excluded.last_seen_at, deleted_at = excluded.deleted_at, hash = excluded.hash',
    });
    if (toWrite.length > 0) {
      await stream.write(trx, toWrite, ctx, pages.map((p) => p.context));
    }
    for (const b of bad) {
      const payloadHash = hashRecord({ p: b.payload ?? null, l: b.location ?? null });
      await trx('quarantine')
        .insert({ connection: conn, stream: stream.name, external_id: b.key ?? null, payload_hash: payloadHash, payload: JSON.stringify(b.payload ?? null), error: scrubSecrets(b.error), location: b.location ?? null, run_id: ctx.runId })
        .onConflict(['connection', 'stream', 'payload_hash'])
        .merge({ occurrences: trx.raw('quarantine.occurrences + 1'), last_seen_at: fetchedAt, error: scrubSecrets(b.error), run_id: ctx.runId });
    }
    // Look-back windows completed by pages of this batch: every key read in the batch was stamped
    // last_seen_at = fetchedAt above, which is after any window's `since`, so checking the windows
    // after the whole batch's keys is the same as checking each after its own page.
    for (const page of pages) {
      if (!page.completedWindow) continue;
      // Its keys were looked up without the stamp: "not seen since" cannot be told (see StreamDef).
      if (!stream.detectsVanished) throw new Error(`stream ${stream.name} completed a look-back window but does not declare detectsVanished`);
      const w = page.completedWindow;
      const gone = await trx('stream_keys')
        .where({ connection: conn, stream: stream.name })
        .whereNull('deleted_at')
        .where('record_at', '>=', w.from)
        .where('record_at', '<=', w.to)
        .where('last_seen_at', '<', w.since)
        .update({ deleted_at: fetchedAt })
        .returning<{ external_id: string }[]>('external_id');
      const keys = gone.map((g) => g.external_id);
      if (keys.length > 0 && stream.onDeleted) await stream.onDeleted(trx, keys, ctx);
      deleted += keys.length;
    }
    if (last) {
      await trx('checkpoints')
        .insert({ connection: conn, stream: stream.name, state: JSON.stringify(last.state), run_id: ctx.runId, updated_at: fetchedAt })
        .onConflict(['connection', 'stream'])
        .merge(['state', 'run_id', 'updated_at']);
    }
  }));
  notePlannerWrites(ctx.db, valid.length + bad.length);
  if (bad.length > 0) ctx.log.warn({ stream: stream.name, quarantined: bad.length, first: scrubSecrets(bad[0]!.error).slice(0, 300) }, 'records quarantined');
  stats.records += valid.length;
  stats.written += written;
  stats.unchanged += unchanged;
  stats.deleted += deleted;
  stats.quarantined += bad.length;
}

/** PostgreSQL errors that mean "another transaction got in the way; the same work may succeed now". */
const RETRYABLE_CODES = new Set(['40P01', '40001', '23505']);

async function withConflictRetry<T>(ctx: SyncContext, stream: string, fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (i >= attempts || typeof code !== 'string' || !RETRYABLE_CODES.has(code)) throw err;
      ctx.log.info({ stream, code, attempt: i }, 'batch met a concurrent writer; retrying it');
      await new Promise((r) => setTimeout(r, 20 * i + Math.floor(Math.random() * 30)));
    }
  }
}

function guessKey(raw: unknown): string | undefined {
  if (raw && typeof raw === 'object') {
    const o = raw as Record<string, unknown>;
    for (const k of ['key', 'id', 'transactionId', 'TRANSID', 'transid']) {
      const v = o[k];
      if (typeof v === 'string' || typeof v === 'number') return String(v);
    }
  }
  return undefined;
}
