// What autovacuum and the checkpointer do on a server, done by hand for the embedded database.
//
// PGlite runs PostgreSQL in single-user mode: no autovacuum worker and no checkpointer ever run.
// - Every run re-stamps the keys it re-reads (src/sync/engine.ts, last_seen_at), and the compute
//   and the reconcile update rows too. Each update leaves a dead row version, and only VACUUM makes
//   its space reusable. Measured: 40 forced sweeps of the 2k demo world took stream_keys from 2 to
//   17 MB (97k dead rows); with this VACUUM it stays at 2.6-2.8 MB (bench/README, eighth round).
// - WAL is only recycled at a checkpoint, and in single-user mode none happens until the database
//   closes (measured: 497 MB of pg_wal after 60 updates of a 20k-row table, with max_wal_size
//   96 MB), so a `serve` process open for months would fill its disk with WAL.
// So after a job on PGlite: VACUUM the tables past autovacuum's own default threshold (dead rows
// > 50 + 20 % of live rows), then CHECKPOINT once 64 MB of WAL were written since the last one.
// PostgreSQL is left to its own autovacuum and checkpointer.
// PGlite keeps no table statistics across a close (measured: n_dead_tup and vacuum_count read 0 after
// a reopen), so the counters are this process's own: a short CLI process vacuums each table it left
// more than 50 dead rows (+ 20 % of the rows it inserted) in, which also clears older dead rows there.
// Hence every command that writes runs this before it closes (src/cli/context.ts, `maintain`).
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { isPglite } from './connection.ts';
import { errorMessage } from '../util/errors.ts';

/** autovacuum_vacuum_threshold and autovacuum_vacuum_scale_factor's defaults. */
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE_FACTOR = 0.2;
/** WAL written since the last checkpoint's redo point that makes a checkpoint due. */
const CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024;

export interface EmbeddedMaintenance {
  vacuumed: string[];
  checkpoint: boolean;
}

/**
 * On PGlite, VACUUMs the current schema's tables whose dead rows passed autovacuum's default
 * threshold and checkpoints once enough WAL was written; elsewhere does nothing. Best effort: a
 * failure is logged and tried again after the next job. Takes a plain handle (VACUUM cannot run in a
 * transaction).
 */
export async function maintainEmbedded(db: Knex, opts: { log?: Logger | undefined } = {}): Promise<EmbeddedMaintenance> {
  const out: EmbeddedMaintenance = { vacuumed: [], checkpoint: false };
  if (!isPglite(db) || (db as unknown as { isTransaction?: boolean }).isTransaction) return out;
  let tables: string[] = [];
  try {
    // Table counters reach pg_stat_user_tables at most once a second: flush this job's last writes.
    await db.raw('SELECT pg_stat_force_next_flush()');
    await db.raw('SELECT 1');
    const res = await db.raw(
      `SELECT relname FROM pg_stat_user_tables
        WHERE schemaname = current_schema() AND n_dead_tup > ?::float8 + ?::float8 * n_live_tup
        ORDER BY relname`,
      [VACUUM_THRESHOLD, VACUUM_SCALE_FACTOR],
    );
    tables = (res.rows as Array<{ relname: string }>).map((r) => r.relname);
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'checking for tables to vacuum failed');
  }
  for (const t of tables) {
    try {
      await db.raw(`VACUUM "${t.replace(/"/g, '""')}"`);
      out.vacuumed.push(t);
    } catch (err) {
      opts.log?.warn({ table: t, err: errorMessage(err) }, 'vacuuming the embedded database failed');
    }
  }
  try {
    const res = await db.raw(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::bigint AS bytes FROM pg_control_checkpoint()`);
    if (Number((res.rows as Array<{ bytes: string | number }>)[0]?.bytes ?? 0) >= CHECKPOINT_WAL_BYTES) {
      await db.raw('CHECKPOINT');
      out.checkpoint = true;
    }
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'checkpointing the embedded database failed');
  }
  if (out.vacuumed.length > 0 || out.checkpoint) opts.log?.debug(out, 'embedded database maintained');
  return out;
}
