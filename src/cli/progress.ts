// Progress for long syncs: a live bar on a TTY, one line per page batch otherwise (CI, logs).
import cliProgress from 'cli-progress';
import type { ProgressEvent } from '../sync/engine.ts';

export function createProgress(enabled = true): { update(e: ProgressEvent): void; stop(): void } {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    const bars = new cliProgress.MultiBar({ format: ' {connection}/{stream} | pages {pages} | records {value} | quarantined {quarantined}', stream: process.stderr, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    const byKey = new Map<string, cliProgress.SingleBar>();
    return {
      update(e) {
        const key = `${e.connection}/${e.stream}`;
        let bar = byKey.get(key);
        if (!bar) {
          bar = bars.create(0, 0, { connection: e.connection, stream: e.stream, pages: 0, quarantined: 0 });
          byKey.set(key, bar);
        }
        bar.setTotal(e.records);
        bar.update(e.records, { pages: e.pages, quarantined: e.quarantined });
      },
      stop: () => bars.stop(),
    };
  }
  let last = 0;
  return {
    update(e) {
      const t = Date.now();
      if (t - last > 2000) {
        process.stderr.write(`  ${e.connection}/${e.stream}: ${e.pages} pages, ${e.records} records, ${e.quarantined} quarantined\n`);
        last = t;
      }
    },
    stop: () => undefined,
  };
}
