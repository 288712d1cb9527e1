// Executes planned corrections through the connectors. Dry run (default) only plans and writes
// nothing. With apply:
//   1. every action is recorded as `planned` (unique idempotency key) before anything is sent;
//   2. just before sending, the row becomes `sending` (attempts + 1) in its own committed write;
//   3. after the connector answers: `confirmed` / `sent` / `failed` / `skipped` with summaries.
// Crash recovery (a row left in `sending` because the process died between 2 and 3): the row is
// NOT blindly re-sent as a new action. It is re-driven through the connector with the SAME
// idempotency key, and the connector contract (src/sync/types.ts: "must be safe to retry with the
// same idempotency key") makes that a state check, not a second effect: PartnerStack create_reward
// looks for the key's marker among local and vendor rewards first, create_transaction uses the
// billing document id as its key and treats "already exists" as done, delete/void/decline/approve
// set a final state, and edit/amend set absolute amounts. A connector may also expose an optional
// `pushStatus(ctx, action)` that only reads the network state; when present it is asked first and
// the action is sent only if the network does not show it.
// Per-run caps (actions and USD moved) stop the run with a clear message before the next send.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config, ConnectionType } from '../config/schema.ts';
import type { Connector, Json, PushAction, PushResult, SyncContext } from '../sync/types.ts';
import { loadConnector as defaultLoadConnector } from '../../connectors/index.ts';
import { isPglite } from '../db/connection.ts';
import { errorMessage } from '../util/errors.ts';
import { scrubSecrets, scrubValue } from '../util/secrets.ts';
import { planCorrections, type Plan, type PlanOptions } from './planner.ts';
import type { PlannedAction } from './actions.ts';

/** Optional read-only status check a connector may offer for crash recovery. */
export type PushStatusFn = (ctx: SyncContext, action: PushAction) => Promise<PushResult | null>;

export interface PushDeps {
  db: Knex;
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv | undefined;
  loadConnector?: ((type: ConnectionType) => Promise<Connector>) | undefined;
  /** Test hook: runs after the connector answered and before the answer is recorded. */
  afterSend?: ((action: PushAction, result: PushResult) => void | Promise<void>) | undefined;
}

export interface PushOptions extends PlanOptions {
  apply?: boolean | undefined;
  now?: Date | undefined;
  maxActions?: number | undefined;
  maxUsdMinor?: number | undefined;
}

export interface PushOutcome {
  correctionId: number;
  idempotencyKey: string;
  discrepancyId: number | null;
  connection: string;
  network: string;
  type: string;
  usdMinor: number;
  status: 'confirmed' | 'sent' | 'failed' | 'skipped';
  recovered: boolean;
  error?: string | undefined;
}

export interface PushSummary {
  mode: 'dry_run' | 'apply';
  plan: Plan;
  outcomes: PushOutcome[];
  counts: { confirmed: number; sent: number; failed: number; skipped: number; recovered: number; left: number };
  usdMovedMinor: number;
  stoppedBy: 'max_actions' | 'max_usd' | null;
  message: string | null;
}

interface CorrectionRow {
  id: number;
  idempotency_key: string;
  discrepancy_id: number | null;
  connection: string;
  network: string;
  action_type: string;
  payload: Record<string, Json> | string;
  justification: Record<string, Json> | string;
  usd_minor: number;
  status: string;
  attempts: number;
}

const parseJson = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const usdText = (minor: number): string => `$${(minor / 100).toFixed(2)}`;

function toAction(r: CorrectionRow): PushAction {
  return { network: r.network as ConnectionType, type: r.action_type, idempotencyKey: r.idempotency_key, payload: parseJson(r.payload), justification: parseJson(r.justification) };
}

async function record(db: Knex, plan: PlannedAction[], runId: number | null): Promise<void> {
  for (const a of plan) {
    await db('corrections')
      .insert({
        idempotency_key: a.idempotencyKey,
        discrepancy_id: a.discrepancyId,
        connection: a.connection,
        network: a.network,
        action_type: a.type,
        payload: JSON.stringify(a.payload),
        justification: JSON.stringify(a.justification),
        usd_minor: Math.abs(a.usdMinor),
        status: 'planned',
        run_id: runId,
      })
      .onConflict('idempotency_key')
      .ignore();
  }
}

// One applying push at a time per database. Two overlapping runs (the scheduled main job and
// `push --apply`, the push job, another replica) would otherwise both pick the same planned rows and
// send them twice, and a run starting while another is mid-send would take that run's in-flight
// `sending` row for a crashed one and re-drive it. In-process runs queue on a promise chain; on
// PostgreSQL a session advisory lock (released with the session if the process dies), keyed by the
// schema the data lives in, does the same across processes. PGlite is embedded in one process, so
// the in-process queue covers it. (A pool of one connection cannot spare one to hold the lock; the
// conditional claim below still keeps planned rows from being sent twice.)
const PUSH_LOCK_KEY = 740_211_903;
const pushQueues = new WeakMap<Knex, Promise<unknown>>();

/** The network answered and said no (4xx other than timeout/conflict/rate limit, or a per-item rejection). */
export function isDefinitiveRejection(result: PushResult): boolean {
  if (result.retryable !== undefined) return !result.retryable;
  const res = result.response;
  const status = res && typeof res === 'object' && !Array.isArray(res) ? (res as { status?: unknown }).status : undefined;
  return typeof status === 'number' && status >= 400 && status < 500 && ![408, 409, 425, 429].includes(status);
}

async function withPushLock<T>(db: Knex, fn: () => Promise<T>): Promise<T> {
  const prev = pushQueues.get(db) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  pushQueues.set(db, tail);
  await prev.catch(() => undefined);
  try {
    const poolMax = (db.client.config as Knex.Config).pool?.max ?? 10;
    if (isPglite(db) || poolMax < 2) return await fn();
    const conn: unknown = await db.client.acquireConnection();
    try {
      await db.raw('SELECT pg_advisory_lock(?, hashtext(current_schema()))', [PUSH_LOCK_KEY]).connection(conn);
      try {
        return await fn();
      } finally {
        await db.raw('SELECT pg_advisory_unlock(?, hashtext(current_schema()))', [PUSH_LOCK_KEY]).connection(conn).catch(() => undefined);
      }
    } finally {
      await db.client.releaseConnection(conn);
    }
  } finally {
    release();
    if (pushQueues.get(db) === tail) pushQueues.delete(db);
  }
}

export async function executePush(deps: PushDeps, opts: PushOptions = {}): Promise<PushSummary> {
  if (!opts.apply) return executePushUnlocked(deps, opts);
  return withPushLock(deps.db, () => executePushUnlocked(deps, opts));
}

async function executePushUnlocked(deps: PushDeps, opts: PushOptions): Promise<PushSummary> {
  const { db, config, log } = deps;
  const now = opts.now ?? new Date();
  const plan = await planCorrections(db, config, opts);
  const summary: PushSummary = { mode: opts.apply ? 'apply' : 'dry_run', plan, outcomes: [], counts: { confirmed: 0, sent: 0, failed: 0, skipped: 0, recovered: 0, left: 0 }, usdMovedMinor: 0, stoppedBy: null, message: null };
  if (!opts.apply) return summary;

  const load = deps.loadConnector ?? defaultLoadConnector;
  const connectors = new Map<string, Connector>();
  const contextFor = async (connectionName: string): Promise<{ connector: Connector; ctx: SyncContext } | string> => {
    const connection = config.connections.find((c) => c.name === connectionName);
    if (!connection) return `connection "${connectionName}" is not in the configuration`;
    let connector = connectors.get(connection.type);
    if (!connector) {
      try {
        connector = await load(connection.type);
      } catch (err) {
        return errorMessage(err);
      }
      connectors.set(connection.type, connector);
    }
    return { connector, ctx: { db, config, connection, log, now, runId: 0, env: deps.env ?? process.env } };
  };

  const finish = async (row: CorrectionRow, result: PushResult, recovered: boolean): Promise<void> => {
    const status = result.status;
    // A definitive rejection is final: resending the same request cannot succeed and would only
    // repeat it (the retry budget is spent so later runs leave the row for ops to look at).
    const final = status === 'failed' && isDefinitiveRejection(result);
    await db('corrections')
      .where({ id: row.id })
      .update({
        status,
        ...(final ? { attempts: db.raw('greatest(attempts, ?)', [config.push.maxAttempts]) } : {}),
        request_summary: result.request === undefined ? null : JSON.stringify(scrubValue(result.request)),
        response_summary: JSON.stringify(scrubValue({ ...(typeof result.response === 'object' && result.response !== null && !Array.isArray(result.response) ? result.response : { value: result.response ?? null }), ...(result.externalId ? { externalId: result.externalId } : {}) })),
        error: result.error ? scrubSecrets(result.error) : null,
        sent_at: status === 'sent' || status === 'confirmed' ? new Date() : null,
        confirmed_at: status === 'confirmed' ? new Date() : null,
        updated_at: new Date(),
      });
    summary.counts[status]++;
    if (status === 'sent' || status === 'confirmed') summary.usdMovedMinor += recovered ? 0 : Number(row.usd_minor);
    summary.outcomes.push({ correctionId: row.id, idempotencyKey: row.idempotency_key, discrepancyId: row.discrepancy_id, connection: row.connection, network: row.network, type: row.action_type, usdMinor: Number(row.usd_minor), status, recovered, error: result.error });
    if (status === 'failed') log.warn({ correction: row.id, type: row.action_type, connection: row.connection, error: result.error }, 'correction failed');
  };

  const send = async (row: CorrectionRow, recovered: boolean): Promise<void> => {
    const c = await contextFor(row.connection);
    if (typeof c === 'string') return finish(row, { status: 'skipped', error: c }, recovered);
    if (!c.connector.push) return finish(row, { status: 'skipped', error: `the ${c.ctx.connection.type} connector cannot push corrections` }, recovered);
    const action = toAction(row);
    if (recovered) {
      const statusFn = (c.connector as Connector & { pushStatus?: PushStatusFn }).pushStatus;
      if (statusFn) {
        const seen = await statusFn(c.ctx, action).catch(() => null);
        if (seen && (seen.status === 'confirmed' || seen.status === 'sent')) return finish(row, seen, true);
      }
    } else {
      // Recorded as sending BEFORE the request leaves, in its own committed write. The update only
      // claims the row in the state it was read in: a row someone else moved on is not sent again.
      const claimed = await db('corrections')
        .where({ id: row.id, status: row.status, attempts: row.attempts })
        .update({ status: 'sending', attempts: db.raw('attempts + 1'), updated_at: new Date() })
        .returning<{ id: number }[]>('id');
      if (claimed.length === 0) return;
    }
    let result: PushResult;
    try {
      result = await c.connector.push(c.ctx, action);
    } catch (err) {
      result = { status: 'failed', error: errorMessage(err) };
    }
    await deps.afterSend?.(action, result);
    return finish(row, result, recovered);
  };

  // 1. Rows a crashed run left in `sending`: resolve them first, same key, before anything new.
  const stuck = (await db('corrections').where({ status: 'sending' }).orderBy('id')) as CorrectionRow[];
  for (const row of stuck) {
    log.info({ correction: row.id, key: row.idempotency_key }, 'resolving a correction left in sending by an interrupted run');
    summary.counts.recovered++;
    await send(row, true);
  }

  // 2. Record the plan, then work through planned rows (and failed ones with attempts left).
  await record(db, plan.actions, null);
  const keys = new Set(plan.actions.map((a) => a.idempotencyKey));
  const rows = ((await db('corrections').whereIn('status', ['planned', 'failed']).where('attempts', '<', config.push.maxAttempts).orderBy('id')) as CorrectionRow[]).filter(
    // Rows from earlier runs are still worth sending only while their discrepancy is pushable.
    (r) => keys.has(r.idempotency_key),
  );
  const maxActions = opts.maxActions ?? config.push.maxActionsPerRun;
  const maxUsd = opts.maxUsdMinor ?? config.push.maxUsdMinorPerRun;
  let used = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (used + 1 > maxActions) {
      summary.stoppedBy = 'max_actions';
      summary.message = `Stopped: the per-run cap of ${maxActions} actions (push.maxActionsPerRun) is reached; ${rows.length - i} action(s) left planned for the next run.`;
      break;
    }
    if (summary.usdMovedMinor + Number(row.usd_minor) > maxUsd) {
      summary.stoppedBy = 'max_usd';
      summary.message = `Stopped: the next action (${row.action_type} on ${row.connection}, ${usdText(Number(row.usd_minor))}) would bring the USD moved this run to ${usdText(summary.usdMovedMinor + Number(row.usd_minor))}, over the cap of ${usdText(maxUsd)} (push.maxUsdMinorPerRun); ${rows.length - i} action(s) left planned.`;
      break;
    }
    used++;
    await send(row, false);
  }
  summary.counts.left = (await db('corrections').where({ status: 'planned' }).count<{ n: string | number }>('* as n').first())?.n as number;
  summary.counts.left = Number(summary.counts.left ?? 0);
  if (summary.message) log.warn({ stoppedBy: summary.stoppedBy }, summary.message);
  return summary;
}
