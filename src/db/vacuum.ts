// VACUUM for tables the pipeline itself filled in bulk.
//
// A first import or a full compute writes millions of rows in minutes. Autovacuum gets to them later,
// or never: PGlite has no autovacuum worker, and a server may run with it off (the benchmark
// machine's does, so no table of a 1M import had ever been vacuumed when its next run started).
// Until a table is vacuumed its visibility map is empty and its rows carry no commit hint bits:
// every index probe visits the heap (an index-only scan cannot skip it), and the first reader of
// each row looks its transaction up and dirties the page to record the answer. The next
// incremental run pays for that on every page it touches (bench/README.md, seventh round).
//
// So the main job ends by vacuuming the tables of its schema of which less than half the pages are
// marked all-visible (pg_class.relallvisible, kept by VACUUM and ANALYZE, against the file's current
// size). That picks the tables a bulk write just filled, once: a vacuumed table is chosen again only
// once it has about doubled (relallvisible is a count taken by the last VACUUM or ANALYZE, so pages
// that updates dirty since do not count against it until then). VACUUM visits only the pages not
// yet all-visible, and
// SKIP_LOCKED leaves a table that autovacuum (or another run) is already vacuuming. Best effort: a
// failure is logged, never fails the job.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.ts';

/** Smaller tables are cheap to read however they are stored (8 MB at 8 KB pages). */
export const VACUUM_MIN_PAGES = 1_024;

export interface VacuumResult {
  /** Tables vacuumed (or attempted, for the ones that failed). */
  tables: string[];
  failed: string[];
}

/**
 * Tables of the current schema worth a VACUUM now: at least VACUUM_MIN_PAGES pages, of which fewer
 * than half are known all-visible. raw_records is written and never read by the pipeline (and is the
 * largest table): autovacuum's to keep.
 */
export async function tablesToVacuum(db: Knex, minPages = VACUUM_MIN_PAGES): Promise<string[]> {
  const res = await db.raw(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'raw_records'
        AND pg_relation_size(c.oid) >= ? * current_setting('block_size')::bigint
        AND 2 * c.relallvisible::bigint * current_setting('block_size')::bigint < pg_relation_size(c.oid)
      ORDER BY c.relname`,
    [minPages],
  );
  return (res.rows as Array<{ relname: string }>).map((r) => r.relname);
}

/** VACUUMs the tables tablesToVacuum names, one statement each (never inside a transaction). */
export async function vacuumFreshTables(db: Knex, opts: { log?: Logger | undefined; minPages?: number } = {}): Promise<VacuumResult> {
  if ((db as unknown as { isTransaction?: boolean }).isTransaction) throw new Error('vacuumFreshTables needs a plain handle: VACUUM cannot run inside a transaction');
  let tables: string[];
  try {
    tables = await tablesToVacuum(db, opts.minPages);
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'choosing tables to vacuum failed');
    return { tables: [], failed: [] };
  }
  const failed: string[] = [];
  for (const t of tables) {
    const started = Date.now();
    try {
      await db.raw(`VACUUM (SKIP_LOCKED) "${t.replace(/"/g, '""')}"`);
      opts.log?.debug({ table: t, ms: Date.now() - started }, 'vacuumed');
    } catch (err) {
      failed.push(t);
      opts.log?.warn({ table: t, err: errorMessage(err) }, 'vacuum failed');
    }
  }
  if (tables.length > 0) opts.log?.info({ tables, failed }, 'vacuumed tables the run filled');
  return { tables, failed };
}
