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
/**
 * A table a VACUUM could not make mostly all-visible (a transaction older than its rows was still
 * open, or another session held its lock) is retried after this long, or sooner once it has grown
 * by half: without it a long-lived service would re-read such a table on every run.
 */
const RETRY_INCOMPLETE_MS = 3_600_000;

export interface VacuumResult {
  /** Tables vacuumed that are now at least half all-visible. */
  vacuumed: string[];
  /** Vacuumed, but still under half all-visible (an older open transaction, or a lock: SKIP_LOCKED). */
  incomplete: string[];
  failed: string[];
}

interface Candidate {
  name: string;
  /** Schema-qualified and quoted by the server (quote_ident). */
  qname: string;
  pages: number;
}

/** Per database handle: tables left incomplete, with their size and when. */
const incompleteOf = new WeakMap<Knex, Map<string, { pages: number; at: number }>>();

/**
 * Tables of the current schema worth a VACUUM now: at least VACUUM_MIN_PAGES pages, of which fewer
 * than half are known all-visible, owned by (a role of) the current user — VACUUM only warns and
 * skips a table it may not vacuum. raw_records is written and never read by the pipeline (and is the
 * largest table): autovacuum's to keep.
 */
export async function tablesToVacuum(db: Knex, minPages = VACUUM_MIN_PAGES): Promise<Candidate[]> {
  const res = await db.raw(
    `SELECT c.relname AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qname,
            (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::float8 AS pages
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'raw_records'
        AND pg_has_role(c.relowner, 'USAGE')
        AND pg_relation_size(c.oid) >= ? * current_setting('block_size')::bigint
        AND 2 * c.relallvisible::bigint * current_setting('block_size')::bigint < pg_relation_size(c.oid)
      ORDER BY c.relname`,
    [minPages],
  );
  return (res.rows as Array<{ name: string; qname: string; pages: number }>).map((r) => ({ name: r.name, qname: r.qname, pages: Number(r.pages) }));
}

/**
 * VACUUMs the tables tablesToVacuum names, one statement each, stopping between tables once
 * `signal` is aborted. Best effort: never throws; a failure is logged and reported.
 */
export async function vacuumFreshTables(db: Knex, opts: { log?: Logger | undefined; minPages?: number; signal?: AbortSignal | undefined } = {}): Promise<VacuumResult> {
  const out: VacuumResult = { vacuumed: [], incomplete: [], failed: [] };
  if ((db as unknown as { isTransaction?: boolean }).isTransaction) {
    // VACUUM cannot run inside a transaction block.
    opts.log?.warn('vacuum skipped: called with a transaction handle');
    return out;
  }
  let candidates: Candidate[];
  try {
    candidates = await tablesToVacuum(db, opts.minPages);
  } catch (err) {
    opts.log?.warn({ err: errorMessage(err) }, 'choosing tables to vacuum failed');
    return out;
  }
  let incomplete = incompleteOf.get(db);
  if (!incomplete) incompleteOf.set(db, (incomplete = new Map()));
  for (const c of candidates) {
    if (opts.signal?.aborted) break;
    const before = incomplete.get(c.name);
    if (before && Date.now() - before.at < RETRY_INCOMPLETE_MS && c.pages < 1.5 * before.pages) continue;
    const started = Date.now();
    try {
      await db.raw(`VACUUM (SKIP_LOCKED) ${c.qname}`);
      const still = (await tablesToVacuum(db, opts.minPages)).some((x) => x.name === c.name);
      if (still) {
        out.incomplete.push(c.name);
        incomplete.set(c.name, { pages: c.pages, at: Date.now() });
      } else {
        out.vacuumed.push(c.name);
        incomplete.delete(c.name);
      }
      opts.log?.debug({ table: c.name, ms: Date.now() - started, complete: !still }, 'vacuumed');
    } catch (err) {
      out.failed.push(c.name);
      opts.log?.warn({ table: c.name, err: errorMessage(err) }, 'vacuum failed');
    }
  }
  if (candidates.length > 0) opts.log?.info(out, 'vacuumed tables the run filled');
  return out;
}
