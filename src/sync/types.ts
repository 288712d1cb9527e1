// The contract every connector implements. A connection has ordered streams; a stream declares its
// key, validates each record with zod, reads pages with the checkpoint state after each page, and
// writes mapped canonical rows. The engine (engine.ts) owns transactions, raw storage, quarantine,
// checkpoints and look-back deletion, so connectors only describe their API.
import type { Knex } from 'knex';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig, ConnectionType } from '../config/schema.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface SyncContext {
  db: Knex;
  config: Config;
  connection: ConnectionConfig;
  log: Logger;
  /** The instant this run started; look-back windows and deletion checks are relative to it. */
  now: Date;
  runId: number;
  signal?: AbortSignal | undefined;
  env: NodeJS.ProcessEnv;
}

/** A rescan window that has been read completely: keys inside it not seen since `since` vanished. */
export interface CompletedWindow {
  from: Date;
  to: Date;
  /** When the rescan pass started (kept in the checkpoint so a resumed pass uses the original). */
  since: Date;
}

export interface Page<TState> {
  /** Raw records as the API returned them; the engine validates each with the stream's schema. */
  records: unknown[];
  /** Checkpoint state after this page: stored in the same transaction as the page's rows. */
  state: TState;
  /** Present on the page that completes a look-back pass. */
  completedWindow?: CompletedWindow | undefined;
  /**
   * Side data read() fetched for this page's records (e.g. Stripe's invoice → payment links), handed
   * to write() with the page. Never stored. Pages are written in batches while later pages are being
   * read, so this is the only safe way to pass per-page data from read to write.
   */
  context?: unknown;
  /** Extra raw records that failed before validation (e.g. truncated CSV rows), with the reason. */
  rejects?: Array<{ payload: unknown; error: string; location?: string }> | undefined;
  /**
   * Set by a window stream on the pages of a *tail* pass (src/sync/lookback.ts): records of this
   * page whose content is unchanged since stored (same key, same hash, not deleted) are not handed
   * to write(), except those the stream's `stale` names. A sweep leaves it unset, so it re-maps
   * every record as before (the slow path that also picks up links that moved).
   */
  skipUnchanged?: boolean | undefined;
}

export interface WriteStats {
  inserted?: number;
  updated?: number;
  [k: string]: number | undefined;
}

export interface StreamDef<TRecord = unknown, TState extends Json = Json> {
  name: string;
  /** zod schema for one record. Unknown extra fields pass through (kept in the raw store). */
  schema: z.ZodType<TRecord>;
  /** Natural key of a record within the stream. */
  key(record: TRecord): string;
  /** The record's own time (created/occurred), used to place it inside look-back windows. */
  recordTime?(record: TRecord): Date | null;
  /** Checkpoint state for a first run. */
  initialState(ctx: SyncContext): TState;
  /** Reads pages starting from `state`. Throwing aborts the run; the last stored checkpoint stands. */
  read(ctx: SyncContext, state: TState): AsyncIterable<Page<TState>>;
  /**
   * A stream starts reading as soon as the stream before it has read its last page, while that one
   * is still committing (its own commits wait for it). `false` for a stream whose read() looks up
   * stored rows an earlier stream of the connection writes (Stripe refunds resolving their invoice):
   * it starts only once the earlier streams have committed.
   */
  readAhead?: false;
  /**
   * Upserts canonical rows for the validated records of a batch of pages (in page order; a record may
   * repeat — the last one wins), inside the batch transaction. `contexts` are the pages' Page.context
   * values, in page order.
   */
  write(trx: Knex.Transaction, records: TRecord[], ctx: SyncContext, contexts: unknown[]): Promise<WriteStats | void>;
  /**
   * write() gets only records whose raw content changed since it was last stored (same key, same
   * hash = skipped; config sync.skipUnchanged=false turns it off, e.g. to re-map after an upgrade).
   * Only for streams whose canonical rows depend on nothing but the record and what earlier streams
   * wrote before it: a record whose mapping looks up data that may arrive later (a network sale
   * attributing through a billing document) must be re-written on every read, so it does not opt in.
   */
  skipUnchanged?: boolean;
  /**
   * For pages with `skipUnchanged` (tails): of the keys of unchanged records about to be skipped,
   * the ones whose canonical rows would come out differently if re-mapped now, because a link the
   * mapping looks up has arrived since (a customer, a partner account, a billing document). Those
   * are handed to write() like changed records. One query per batch at most.
   */
  stale?(trx: Knex.Transaction, keys: string[], ctx: SyncContext): Promise<Set<string>>;
  /**
   * The stream's read() yields pages with `completedWindow`: keys of a completed window not seen
   * since it began are marked deleted. Only such a stream stamps every key it reads with when it was
   * seen (stream_keys.last_seen_at, what that check reads): one row write per key re-read. Any
   * other stream looks its keys up with a plain read, so a tail's unchanged records cost no write, no
   * WAL and no dead row. A completedWindow on a stream without this fails its run (a connector bug).
   */
  detectsVanished?: true;
  /** Marks canonical rows whose source records vanished from a rescanned window. */
  onDeleted?(trx: Knex.Transaction, keys: string[], ctx: SyncContext): Promise<void>;
}

export interface PushResult {
  status: 'confirmed' | 'sent' | 'failed' | 'skipped';
  /** Summaries (no secrets) stored on the correction row. */
  request?: Json;
  response?: Json;
  error?: string;
  /** External id created by the action, if any (e.g. a PartnerStack reward key). */
  externalId?: string;
  /**
   * For `failed`: false when the network rejected the action itself (validation, not found, wrong
   * state) — sending it again cannot succeed, so it is not retried until it is planned anew.
   * Unset means "maybe transient" (timeouts, 5xx) and the executor may retry.
   */
  retryable?: boolean;
}

/** A typed correction action as planned by reconciliation; `type` is connector-specific. */
export interface PushAction {
  network: ConnectionType;
  type: string;
  idempotencyKey: string;
  payload: Record<string, Json>;
  /** The billing facts and subscription state that justify the action (sent along where possible). */
  justification: Record<string, Json>;
}

export interface Connector {
  type: ConnectionType;
  /** Validates connection options; throws ConfigError naming `connections.<name>.options.<field>`. */
  validateOptions?(connection: ConnectionConfig): void;
  /**
   * Credential fields (`connections.<name>.credentials.<field>`) a sync cannot do without; checked
   * at start-up by `sync` and `run`. Fields needed only elsewhere (e.g. webhooks) are not listed.
   */
  requiredCredentials?: string[];
  /** Ordered streams for this connection. */
  streams(ctx: SyncContext): StreamDef<any, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Executes one correction action. Must be safe to retry with the same idempotency key. */
  push?(ctx: SyncContext, action: PushAction): Promise<PushResult>;
}
