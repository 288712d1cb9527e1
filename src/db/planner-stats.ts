// Planner statistics for tables the pipeline itself just filled.
//
// A first import or a full compute fills tables faster than autovacuum analyzes them (PGlite has no
// autovacuum at all, and on a busy server its workers can spend many minutes vacuuming raw_records
// first). The planner then plans against a table it never analyzed, as if it held a few pages: at 1M
// payments the full reconcile read `computed_commissions` (1.1M rows, never analyzed) with a
// parallel sequential scan per batch of 5,000 rows instead of one index probe per payment, and its
// clawback look-up bitmap-ANDed a whole partner's rows per commission — ~3 s per batch, a cost that
// grows with the history times the number of batches. The sync (src/sync/engine.ts) checks after
// each stream and every few seconds within one: at 100k payments the Stripe refund look-up once
// scanned every payment per page instead of using its GIN index, and on PGlite the stream_keys
// look-up scanned the whole stream per batch.
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
 * ANALYZEs the tables of the current schema that have at least doubled since their last statistics
 * (or have none yet). Best effort: a failure (or a lock not granted in time) is logged and costs only
 * that table's plan. Takes a plain handle, never a transaction's (ANALYZE's locks would be held to
 * the caller's commit, and a failure would abort the caller's transaction). Returns the tables
 * analyzed.
 */
export async function refreshPlannerStats(db: Knex, opts: RefreshOptions): Promise<string[]> {
  if ((db as unknown as { isTransaction?: boolean }).isTransaction) return [];
  const st = checkState(db);
  if (opts.mode === 'periodic' && (Date.now() - st.last < CHECK_EVERY_MS || st.rows < CHECK_MIN_ROWS)) return [];
  if (opts.mode === 'settled' && st.rows < CHECK_MIN_ROWS) return [];
  st.last = Date.now();
  st.rows = 0;
  let tables: string[];
  try {
    const res = await db.raw(
      // raw_records is written, never queried by the pipeline (and is the largest table to sample).
      // A table autovacuum has vacuumed but not analyzed has a fresh relpages and no statistics
      // (pg_stats, not pg_statistic: only a superuser may read the catalog itself).
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'raw_records'
          AND pg_relation_size(c.oid) >= ? * current_setting('block_size')::bigint
          AND (pg_relation_size(c.oid) >= 2 * c.relpages::bigint * current_setting('block_size')::bigint
               OR NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname))
        ORDER BY c.relname`,
      [ANALYZE_MIN_PAGES],
    );
    tables = (res.rows as Array<{ relname: string }>).map((r) => r.relname);
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'checking planner statistics failed');
    return [];
  }
  const done: string[] = [];
  for (const t of tables) {
    const name = `"${t.replace(/"/g, '""')}"`;
    try {
      if (opts.mode === 'periodic') {
        // SKIP_LOCKED: a table another session is vacuuming or analyzing is left for next time.
        await db.raw(`ANALYZE (SKIP_LOCKED) ${name}`);
      } else {
        // One short transaction per table, waiting for its lock but not forever: an autovacuum
        // holding it is cancelled by the request after deadlock_timeout; a manual VACUUM is not, and
        // then only that table's plan is worse. No lock is held past its own ANALYZE.
        await db.transaction(async (trx) => {
          await trx.raw(`SET LOCAL lock_timeout = '15s'`);
          await trx.raw(`ANALYZE ${name}`);
        });
      }
      done.push(t);
    } catch (err) {
      opts.log?.warn({ table: t, err: errorMessage(err) }, 'refreshing planner statistics failed');
    }
  }
  if (done.length > 0) opts.log?.debug({ tables: done }, 'planner statistics refreshed');
  return done;
}
