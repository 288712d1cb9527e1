// A cached, already migrated PGlite data directory ("template") for new embedded databases. Creating
// one from scratch runs initdb and every migration in a child process (~2.5 s of CPU and a ~0.5 GB
// peak in that child); copying the template is a file copy. The template sits in the OS cache
// directory, named by a key over PGlite's version and the migrations (names and source files), so a
// new PGlite release or any change to the migrations uses (and makes) a different one; an absent
// template means the old way, which then leaves one behind. COMMISSION_SYNC_CACHE_DIR chooses the
// directory (`off` disables the cache).
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the way a template is made changes (e.g. other initdb options). */
const TEMPLATE_FORMAT = 1;
const MARKER = 'commission-sync-template.json';

/** The cache directory for this user, or undefined when disabled (COMMISSION_SYNC_CACHE_DIR=off). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env.COMMISSION_SYNC_CACHE_DIR;
  if (chosen) return chosen === 'off' ? undefined : path.resolve(chosen);
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'commission-sync');
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA || path.join(os.homedir(), 'AppData', 'Local'), 'commission-sync', 'Cache');
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'commission-sync');
}

export interface TemplateInputs {
  pgliteVersion: string;
  /** The migration list, in order. */
  migrationNames: string[];
  /** [file name, contents] of the migration sources (helpers they share included). */
  sources: Array<[string, string]>;
}

export function templateKey(inputs: TemplateInputs): string {
  const h = createHash('sha256');
  h.update(`format ${TEMPLATE_FORMAT}\0pglite ${inputs.pgliteVersion}\0`);
  for (const n of inputs.migrationNames) h.update(`migration ${n}\0`);
  for (const [name, text] of [...inputs.sources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`file ${name}\0${text}\0`);
  return h.digest('hex').slice(0, 24);
}

/** PGlite's package version, from its package.json next to the resolved entry point. */
export function pgliteVersion(): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
  }
  throw new Error('cannot find the version of @electric-sql/pglite');
}

/** The key for this build: PGlite's version and the migrations this build runs. */
export async function currentTemplateKey(): Promise<string> {
  const { migrations } = await import('../../migrations/index.ts');
  const dir = fileURLToPath(new URL('../../migrations/', import.meta.url));
  const sources = readdirSync(dir)
    .filter((f) => /\.(ts|js|mjs)$/.test(f))
    .map((f): [string, string] => [f, readFileSync(path.join(dir, f), 'utf8')]);
  // What the migrations run through (execScript, the runner) shapes the result too; initdb's own
  // settings are covered by TEMPLATE_FORMAT (bump it when they change).
  for (const helper of ['sql', 'migrate']) {
    for (const ext of ['.ts', '.js']) {
      const file = fileURLToPath(new URL(`./${helper}${ext}`, import.meta.url)); // beside this module, in sources and dist alike
      if (existsSync(file)) sources.push([`src/db/${helper}${ext}`, readFileSync(file, 'utf8')]);
    }
  }
  return templateKey({ pgliteVersion: pgliteVersion(), migrationNames: migrations.map((m) => m.name), sources });
}

export function templatePath(cache: string, key: string): string {
  return path.join(cache, `pglite-template-${key}`);
}

/** Copies the template into `target` (which must not exist); false when there is no such template. */
export function copyTemplate(cache: string, key: string, target: string): boolean {
  const t = templatePath(cache, key);
  if (!existsSync(path.join(t, MARKER))) return false;
  cpSync(t, target, { recursive: true, filter: (src) => path.basename(src) !== MARKER });
  return true;
}

/**
 * Saves a complete, closed, migrated data directory as the template for `key`. Copied to a temp
 * directory and renamed, so a template is never seen half-written; a concurrent save of the same
 * key loses the rename and is discarded. Best effort: a read-only or full cache only costs the saving.
 */
export function saveTemplate(cache: string, key: string, dataDir: string): boolean {
  const t = templatePath(cache, key);
  if (existsSync(path.join(t, MARKER))) return false;
  const tmp = `${t}.tmp-${process.pid}-${Date.now()}`;
  try {
    cpSync(dataDir, tmp, { recursive: true });
    writeFileSync(path.join(tmp, MARKER), `${JSON.stringify({ key, createdAt: new Date().toISOString() })}\n`);
    // A template appears only by rename of a complete directory (marker inside), so one without a
    // marker is a leftover of an older build or a crash. A complete one, even if it arrived from a
    // concurrent saver after the check above, is never removed: the rename then fails and ours goes.
    if (existsSync(t) && !existsSync(path.join(t, MARKER))) rmSync(t, { recursive: true, force: true });
    renameSync(tmp, t);
    return true;
  } catch {
    rmSync(tmp, { recursive: true, force: true });
    return false;
  }
}
