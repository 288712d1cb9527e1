// Loaded with `node --import bench/cold-probe.js …` by bench/cold-run.ts (plain JS: a .ts preload
// would load Node's type stripper into a compiled dist/ run too): on exit, writes to
// $COLD_PROBE_OUT how long the process lived (from its start), its CPU and peak RSS, when the module
// graph had loaded (the first macrotask after the main module's static imports) and when the command
// first wrote to stdout (a `run --format json` prints its summary once the job is done).
import { writeFileSync } from 'node:fs';

const out = process.env.COLD_PROBE_OUT;
if (out) {
  const marks = { probe_ms: performance.now() };
  // The main module's static imports are evaluated before any macrotask runs.
  setImmediate(() => {
    marks.imports_done_ms = performance.now();
  });
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (...a) => {
    marks.first_stdout_ms ??= performance.now();
    return write(...a);
  };
  process.on('exit', () => {
    const c = process.cpuUsage();
    writeFileSync(out, JSON.stringify({ ...marks, exit_ms: performance.now(), cpu_ms: (c.user + c.system) / 1000, max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));
  });
}
