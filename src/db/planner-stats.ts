// Planner statistics for tables the pipeline itself just filled.
//
// A first import or a full compute fills tables faster than autovacuum analyzes them (PGlite has no
// autovacuum at all, and on a busy server its workers can spend many minutes vacuuming raw_records
// first). The planner then plans against a table it never analyzed, as if it held a few pages: at 1M
// payments the full reconcile read `computed_commissions` (1.1M rows, never analyzed) with a
// parallel sequential scan per batch of 5,000 rows instead of one index probe per payment, and its
// clawback look-up bitmap-ANDed a whole partner's rows per commission — ~3 s per batch, a cost that
// grows with the history times the number of batches.
//
// The check is one catalog query (file sizes from pg_relation_size against pg_class.relpages, the
// page count the last ANALYZE saw), so PGlite is covered too; a table is analyzed once it has grown to
// twice its size at its last statistics, which keeps a whole import to a few ANALYZEs per table.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.ts';

/** Smaller tables are left to the planner's defaults (and autovacuum). */
const ANALYZE_MIN_PAGES = 64;
/** Between two checks inside a long stage, at least this long (the check reads every table's size). */
const CHECK_EVERY_MS = 5_000;
/** A check is only worth it once this many rows were written since the last one. */
const CHECK_MIN_ROWS = 1_000;

/** Per database handle (not per process: handles to different databases must not share it). */
const checks = new WeakMap<Knex, { last: number; rows: number }>();
function checkState(db: Knex): { last: number; rows: number } {
  let st = checks.get(db);
  if (!st) checks.set(db, (st = { last: 0, rows: 0 }));
  return st;
}

/** Counts rows a stage wrote, towards the next check. */
export function notePlannerWrites(db: Knex, rows: number): void {
  checkState(db).rows += rows;
}

/** Rows written since the last check (the sync engine checks after a stream once there are enough). */
export function plannerWritesSinceCheck(db: Knex): number {
  return checkState(db).rows;
}

export interface RefreshOptions {
  log?: Logger | undefined;
  /**
   * `periodic` (inside a stage): only if CHECK_EVERY_MS passed since the last check and enough rows
   * were written, and tables another session is analyzing or vacuuming are skipped.
   * `settled` (at a stage boundary): whenever enough rows were written, waiting briefly for a table's
   * lock (autovacuum gives way to it) so the next stage plans with statistics.
   * `always` (at the start of a stage that reads what others wrote): the same without the row count.
   */
  mode: 'periodic' | 'settled' | 'always';
}

/**
 * ANALYZEs the tables of the current schema that have at least doubled since their last statistics.
 * Best effort: a failure (or a lock not granted in time) is logged and costs only the plan. Returns
 * the tables analyzed.
 */
export async function refreshPlannerStats(db: Knex, opts: RefreshOptions): Promise<string[]> {
  const st = checkState(db);
  if (opts.mode === 'periodic' && (Date.now() - st.last < CHECK_EVERY_MS || st.rows < CHECK_MIN_ROWS)) return [];
  if (opts.mode === 'settled' && st.rows < CHECK_MIN_ROWS) return [];
  st.last = Date.now();
  st.rows = 0;
  try {
    const res = await db.raw(
      // raw_records is written, never queried by the pipeline (and is the largest table to sample).
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'raw_records'
          AND pg_relation_size(c.oid) >= greatest(?, 2 * c.relpages::bigint) * current_setting('block_size')::bigint
        ORDER BY c.relname`,
      [ANALYZE_MIN_PAGES],
    );
    const tables = (res.rows as Array<{ relname: string }>).map((r) => r.relname);
    if (tables.length === 0) return [];
    const list = tables.map((t) => `"${t.replace(/"/g, '""')}"`).join(', ');
    if (opts.mode === 'periodic') await db.raw(`ANALYZE (SKIP_LOCKED) ${list}`);
    else {
      // Waits for a table's lock, but not forever: an autovacuum holding it is cancelled by the
      // request after deadlock_timeout; a manual VACUUM is not, and then the plan is simply worse.
      await db.transaction(async (trx) => {
        await trx.raw(`SET LOCAL lock_timeout = '15s'`);
        await trx.raw(`ANALYZE ${list}`);
      });
    }
    opts.log?.debug({ tables }, 'planner statistics refreshed');
    return tables;
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'refreshing planner statistics failed');
    return [];
  }
}
