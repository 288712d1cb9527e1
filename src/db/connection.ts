// Opens the database: PostgreSQL through pg when a URL is given, otherwise embedded PGlite on disk
// (or in memory with `memory://`). Both speak the same SQL, so one set of migrations serves both.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type ClientPgLiteType from 'knex-pglite';
import type { PGlite } from '@electric-sql/pglite';
import { scrubSecrets } from '../util/secrets.ts';

export type Db = Knex;

export interface DbOptions {
  /** postgres://… → PostgreSQL; unset → PGlite in dataDir; `memory://` → in-memory PGlite. */
  url?: string | undefined;
  dataDir?: string | undefined;
  poolMax?: number | undefined;
  /**
   * The caller migrates right after opening: a new PGlite directory is then created already migrated
   * (copied from the cached template, or initialised and migrated in the init child), see initPgliteDir.
   */
  migrated?: boolean | undefined;
  /** `memory://` only: start from this dump (PGlite `dumpDataDir`) instead of an empty initdb. */
  loadDataDir?: Blob | undefined;
}

const INT8 = 20;
const NUMERIC = 1700;
const DATE = 1082;

/** bigint minor units come back as JS numbers; refuse silently losing precision. */
export function parseInt8(value: string | number | bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${String(value)} exceeds the safe integer range`);
  return n;
}

let pgParsersInstalled = false;
function installPgParsers(): void {
  if (pgParsersInstalled) return;
  pg.types.setTypeParser(INT8, parseInt8);
  // Exact decimals stay strings; dates stay 'yyyy-mm-dd' so no time zone shifts them.
  pg.types.setTypeParser(NUMERIC, (v: string) => v);
  pg.types.setTypeParser(DATE, (v: string) => v);
  pgParsersInstalled = true;
}

export function describeDb(opts: DbOptions): string {
  if (opts.url && /^postgres(ql)?:\/\//.test(opts.url)) {
    try {
      const u = new URL(opts.url);
      return `postgresql://${u.hostname}:${u.port || 5432}${u.pathname}`;
    } catch {
      return 'postgresql';
    }
  }
  if (opts.url === 'memory://') return 'pglite (in memory)';
  return `pglite ${opts.dataDir ?? '.data/pglite'}`;
}

/**
 * knex prints its own warnings to stdout with stack traces (e.g. "Acquire connection error: …" for an
 * unreachable server). The error itself reaches the caller, which reports it; other warnings go to
 * stderr, one scrubbed line each, so stdout stays for reports.
 */
const knexLog = {
  warn(message: string) {
    if (/^Acquire connection error/.test(String(message))) return;
    process.stderr.write(`knex: ${scrubSecrets(String(message).split('\n')[0] ?? '')}\n`);
  },
  error(message: string) {
    process.stderr.write(`knex: ${scrubSecrets(String(message).split('\n')[0] ?? '')}\n`);
  },
  deprecate(message: string) {
    process.stderr.write(`knex: ${scrubSecrets(String(message))}\n`);
  },
  debug() {},
};

// PGlite and its knex client load only when an embedded database is opened: a PostgreSQL process
// (a cron `run`, the service) does not pay for them.
let ClientPgLite: typeof ClientPgLiteType | undefined;

/** PGlite's result parsers, as installPgParsers sets pg's. */
export const PGLITE_PARSERS = {
  [INT8]: (v: string) => parseInt8(v),
  [NUMERIC]: (v: string) => v,
  [DATE]: (v: string) => v,
};

export const PGLITE_SHARED_BUFFERS = '32MB';

export function isPglite(db: Db): boolean {
  return ClientPgLite !== undefined && (db.client.config as { client?: unknown }).client === ClientPgLite;
}

/**
 * Keeps this process's WASM (PGlite's, in practice) on V8's baseline compiler, Liftoff. By default
 * V8 also recompiles hot WASM functions with its optimizing compiler, and for PGlite's 9 MB module
 * that compile briefly takes ~500 MB (the first DDL statements compile the catalog and executor code):
 * most of an embedded run's peak (10k migration alone: peak RSS ~870 → ~290 MB). `--liftoff-only`
 * on the command line does the same, but its implications are not applied by setFlagsFromString: the
 * two flags it implies are set here, before PGlite compiles its module (which is when V8 reads them).
 * Liftoff code is slower; COMMISSION_SYNC_PGLITE_OPTIMIZE=1 keeps the optimizing tier (more CPU saved,
 * more memory). Decided once per process; returns the choice.
 */
let wasmTiering: 'baseline' | 'optimizing' | undefined;
export function chooseWasmTiering(env: NodeJS.ProcessEnv = process.env): 'baseline' | 'optimizing' {
  if (wasmTiering) return wasmTiering;
  wasmTiering = env.COMMISSION_SYNC_PGLITE_OPTIMIZE === '1' ? 'optimizing' : 'baseline';
  if (wasmTiering === 'baseline') {
    v8.setFlagsFromString('--no-wasm-dynamic-tiering');
    v8.setFlagsFromString('--no-wasm-tier-up');
  }
  return wasmTiering;
}

export async function openDb(opts: DbOptions = {}): Promise<Db> {
  const url = opts.url;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    installPgParsers();
    return knexFactory({
      client: 'pg',
      connection: url,
      pool: {
        min: 0,
        max: opts.poolMax ?? 10,
        // JIT compiles the large per-value index-probe statements (10-25 ms each, measured at 100k)
        // and never pays back on index look-ups; off per session rather than as a startup
        // `options` parameter, which poolers such as PgBouncer refuse. A failure (no such setting)
        // leaves the session usable, so it is not fatal.
        afterCreate: (conn: { query(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) => {
          conn.query('SET jit = off', () => done(null, conn));
        },
      },
      log: knexLog,
    });
  }
  let dataDir: string | undefined;
  if (url !== 'memory://') {
    dataDir = path.resolve(opts.dataDir ?? '.data/pglite');
    mkdirSync(dataDir, { recursive: true });
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initPgliteDir(dataDir, { migrated: opts.migrated === true });
  }
  chooseWasmTiering();
  const { PGlite: PGliteClass } = await import('@electric-sql/pglite');
  // PGlite's shared_buffers (128 MB by default) live in its WASM heap and stay resident once touched:
  // 32 MB bounds the embedded database's memory (10k pipeline: peak RSS 906 → 785 MB, incremental
  // run 932 → 820 MB, same CPU); the data files are still cached by the OS.
  // max/min_wal_size: how much WAL a checkpoint keeps for reuse (single-user PGlite never checkpoints
  // on its own: src/db/embedded-maintenance.ts does after each job); 1 GB by default.
  const walParams = ['-c', 'max_wal_size=96MB', '-c', 'min_wal_size=32MB'];
  const pglite = new PGliteClass({ ...(dataDir ? { dataDir } : {}), ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}), parsers: PGLITE_PARSERS, startParams: [...PGliteClass.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`, ...walParams] });
  return knexOnPglite(pglite);
}

/** The PGlite instance under a knex handle from openDb/knexOnPglite (undefined for PostgreSQL). */
export function pgliteOf(db: Db): PGlite | undefined {
  if (!isPglite(db)) return undefined;
  return ((db.client.config as { connection: () => { pglite: PGlite } }).connection()).pglite;
}

/** knex over a PGlite instance made with PGLITE_PARSERS (destroying it closes the instance). */
export async function knexOnPglite(pglite: PGlite): Promise<Db> {
  const client = await import('knex-pglite');
  ClientPgLite ??= client.default;
  return knexFactory({
    client: ClientPgLite as unknown as typeof knexFactory.Client,
    dialect: 'postgres',
    connection: () => ({ pglite }) as object,
  } as Knex.Config);
}

/**
 * initdb for a new on-disk PGlite directory, in a child process (src/db/pglite-init.ts says why).
 * The child builds a sibling temp directory that is renamed into place only when complete, so a
 * killed start leaves nothing half-made. If the child cannot run (e.g. a bundle without the script),
 * PGlite initialises in-process as before — same result, higher peak.
 *
 * With `migrated` (the caller migrates next), the new directory is a copy of the cached template for
 * this PGlite version and migration list when there is one (no child, no initdb, no migrations);
 * otherwise the child also migrates it and the result is saved as the template. Returns how the
 * directory was made.
 */
export async function initPgliteDir(dataDir: string, opts: { migrated?: boolean; cacheDir?: string | undefined; key?: string } = {}): Promise<'template' | 'child' | 'none'> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const script = fileURLToPath(new URL(`./pglite-init${ext}`, import.meta.url));
  if (!existsSync(script) || readdirSync(dataDir).length > 0) return 'none';
  const tmp = `${dataDir}.init-${process.pid}-${Date.now()}`;
  const template = opts.migrated ? await import('./pglite-template.ts') : undefined;
  const cache = template && ('cacheDir' in opts ? opts.cacheDir : template.cacheDir());
  let key: string | undefined;
  try {
    if (template && cache) {
      key = opts.key ?? (await template.currentTemplateKey());
      if (template.copyTemplate(cache, key, tmp)) {
        renameSync(tmp, dataDir); // replaces the empty directory
        return 'template';
      }
    }
  } catch {
    rmSync(tmp, { recursive: true, force: true });
  }
  try {
    // --liftoff-only: V8 keeps PGlite's WASM on its baseline compiler instead of also compiling the
    // hot functions with TurboFan, whose transient memory is most of initdb's peak (1.09 GB → 0.69 GB
    // for this child, and less CPU: initdb runs briefly, mostly code that runs once).
    const argv = ['--liftoff-only', '--disable-warning=ExperimentalWarning', script, tmp, '--shared-buffers', PGLITE_SHARED_BUFFERS, ...(opts.migrated ? ['--migrate'] : [])];
    await promisify(execFile)(process.execPath, argv, { timeout: 120_000 });
    if (template && cache && key) template.saveTemplate(cache, key, tmp);
    renameSync(tmp, dataDir); // replaces the empty directory
    return 'child';
  } catch {
    rmSync(tmp, { recursive: true, force: true });
    return 'none';
  }
}
