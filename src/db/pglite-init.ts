// Creates a fresh PGlite data directory, then exits. Run in a child process by openDb (with
// --liftoff-only, see there): PGlite's initdb step briefly needs ~1 GB (its own WASM instance beside
// the server's, and V8's optimizing compiles of both), and a process keeps its peak. Initialising in a short-lived child keeps the service's (and the demo's) peak to what
// the database actually uses; the directory is then opened as an existing one.
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: pglite-init <dataDir>\n');
  process.exit(2);
}
const db = new PGlite({ dataDir: dir });
await db.waitReady;
await db.close();
