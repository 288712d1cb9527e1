// Creates a fresh PGlite data directory, then exits. Run in a child process by openDb (with
// --liftoff-only, see there): PGlite's initdb step briefly needs ~0.5 GB (its own WASM instance beside
// the server's), and a process keeps its peak. Initialising in a short-lived child keeps the service's
// (and the demo's) peak to what the database actually uses; the directory is then opened as an
// existing one. With --migrate it also runs this build's migrations (the caller migrates anyway), so
// the directory can become the cached template (src/db/pglite-template.ts).
//
//   pglite-init <dataDir> [--shared-buffers 32MB] [--migrate]
import { PGlite } from '@electric-sql/pglite';

const args = process.argv.slice(2);
const dir = args[0];
if (!dir || dir.startsWith('--')) {
  process.stderr.write('usage: pglite-init <dataDir> [--shared-buffers 32MB] [--migrate]\n');
  process.exit(2);
}
const sb = args.includes('--shared-buffers') ? args[args.indexOf('--shared-buffers') + 1] : undefined;
// initdb's --set writes shared_buffers into the new postgresql.conf: the bootstrap and single-user
// steps then run with the small pool too (child peak ~650–700 → ~520–550 MB), and the directory's own
// configuration matches what openDb starts it with.
const migrate = args.includes('--migrate') ? await Promise.all([import('./connection.ts'), import('./migrate.ts')]) : undefined;
const db = new PGlite({
  dataDir: dir,
  ...(migrate ? { parsers: migrate[0].PGLITE_PARSERS } : {}),
  ...(sb ? { initDbStartParams: ['--set', `shared_buffers=${sb}`], startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sb}`] } : {}),
});
await db.waitReady;
if (migrate) {
  const [{ knexOnPglite }, { migrateUp }] = migrate;
  const k = await knexOnPglite(db);
  await migrateUp(k);
  await k.destroy(); // closes the PGlite instance too
} else await db.close();
