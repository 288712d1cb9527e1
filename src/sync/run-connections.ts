// Runs the sync of configured connections (all, one type, or one name) through the engine.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionConfig, ConnectionType } from '../config/schema.ts';
import { loadConnector } from '../../connectors/index.ts';
import { runStreams, type ProgressEvent, type SyncRunResult } from './engine.ts';
import type { Connector } from './types.ts';
import { UserError } from '../util/errors.ts';
import { resolveSecret } from '../config/load.ts';

export interface SyncSelection {
  source?: ConnectionType | undefined;
  connection?: string | undefined;
  streams?: string[] | undefined;
}

export function selectConnections(config: Config, sel: SyncSelection): ConnectionConfig[] {
  let list = config.connections.filter((c) => c.enabled);
  if (sel.connection) {
    list = config.connections.filter((c) => c.name === sel.connection);
    if (list.length === 0) throw new UserError(`--connection: no connection named "${sel.connection}" in the configuration (have: ${config.connections.map((c) => c.name).join(', ') || 'none'})`);
  }
  if (sel.source) {
    list = list.filter((c) => c.type === sel.source);
    if (list.length === 0) throw new UserError(`--source: no enabled connection of type "${sel.source}" is configured`);
  }
  return list;
}

/**
 * Start-up checks for the connections about to sync: valid options and every required credential
 * set (a ConfigError naming `connections.<name>.credentials.<field>` and the variable, never a value).
 */
export async function preflightConnections(connections: ConnectionConfig[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  for (const connection of connections) {
    const connector = await loadConnector(connection.type);
    connector.validateOptions?.(connection);
    for (const field of connector.requiredCredentials ?? []) resolveSecret(connection, field, env);
  }
}

/** Billing first, then networks: network records link to customers that billing created. */
const ORDER: Record<ConnectionType, number> = { stripe: 0, chargebee: 0, partnerstack: 1, shareasale: 1, awin: 1 };

export async function syncConnections(
  deps: { db: Knex; config: Config; log: Logger; env?: NodeJS.ProcessEnv; onProgress?: (e: ProgressEvent) => void; signal?: AbortSignal; now?: Date | undefined },
  sel: SyncSelection = {},
): Promise<SyncRunResult[]> {
  const conns = selectConnections(deps.config, sel).sort((a, b) => ORDER[a.type] - ORDER[b.type]);
  const results: SyncRunResult[] = [];
  // Build every selected connection's streams first, so an unknown --stream stops before any sync.
  const planned: Array<{ connection: ConnectionConfig; streams: ReturnType<Connector['streams']> }> = [];
  for (const connection of conns) {
    const connector = await loadConnector(connection.type);
    connector.validateOptions?.(connection);
    const ctxForStreams = { db: deps.db, config: deps.config, connection, log: deps.log, now: deps.now ?? new Date(), runId: 0, env: deps.env ?? process.env, signal: deps.signal };
    planned.push({ connection, streams: connector.streams(ctxForStreams) });
  }
  if (sel.streams?.length) {
    const known = new Set(planned.flatMap((p) => p.streams.map((s) => s.name)));
    const unknown = sel.streams.filter((s) => !known.has(s));
    if (unknown.length) throw new UserError(`--stream: no stream named ${unknown.map((s) => `"${s}"`).join(', ')} in the selected connections (have: ${[...known].join(', ') || 'none'})`);
  }
  // Up to sync.concurrency connections at once (most of a sync is waiting on the API or the
  // database, so connections overlap well), billing first (ORDER). A network connection reads while
  // billing syncs, but commits only once every billing connection has finished: its records link
  // to customers that billing creates.
  const byConnection = new Map<string, SyncRunResult>();
  const finished = new Map<string, { done: Promise<void>; release: () => void }>();
  for (const { connection } of planned) {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    finished.set(connection.name, { done, release });
  }
  const queue = [...planned];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { connection, streams } = next;
      // Every connection of an earlier group was taken from the queue before this one (the queue
      // is in ORDER) by a worker that waits on nothing, so this cannot wait forever.
      const before = planned.filter((p) => ORDER[p.connection.type] < ORDER[connection.type]).map((p) => finished.get(p.connection.name)!.done);
      try {
        const result = await runStreams({ db: deps.db, config: deps.config, connection, streams, log: deps.log, env: deps.env, only: sel.streams, onProgress: deps.onProgress, ...(before.length ? { commitAfter: Promise.all(before) } : {}), ...(deps.signal ? { signal: deps.signal } : {}), ...(deps.now ? { now: deps.now } : {}) });
        byConnection.set(connection.name, result);
      } finally {
        finished.get(connection.name)!.release();
      }
    }
  };
  // All workers end before this returns, even when one throws (a database failure outside a
  // stream): a network connection reading ahead must not go on committing after the sync step.
  const ended = await Promise.allSettled(Array.from({ length: Math.min(deps.config.sync.concurrency, queue.length) }, worker));
  for (const e of ended) if (e.status === 'rejected') throw e.reason;
  for (const { connection } of planned) results.push(byConnection.get(connection.name)!);
  return results;
}
