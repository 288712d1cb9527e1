// One pipeline stage, timed, on an existing PostgreSQL database (a clone of a kept bench database):
// for A/B pairs of compute or reconcile at sizes where a whole bench run takes half an hour.
//
//   node bench/stage-only.ts <database-url> compute|reconcile [--full] [--now 2025-07-01T00:00:00Z]
//        [--unanalyze table,table]   forget these tables' planner statistics first (as right after a
//                                    bulk fill that autovacuum has not reached yet; writes the catalog,
//                                    so needs a superuser: use it on a throw-away clone only)
//
// The config is the bench's (demoConfigFor with placeholder endpoints: neither stage calls an API).
// Prints wall seconds, this process's CPU seconds and the stage's summary counts as one JSON line.
import { demoConfigFor, type FakeEndpoints } from '../src/world/fakes.ts';
import { openDb } from '../src/db/connection.ts';
import { computeAndStore } from '../src/rules/store.ts';
import { runReconciliation } from '../src/reconcile/run.ts';
import { createLogger } from '../src/log/logger.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const [url, stage] = args;
if (!url || (stage !== 'compute' && stage !== 'reconcile')) {
  console.error('usage: node bench/stage-only.ts <database-url> compute|reconcile [--full] [--now ISO] [--unanalyze t1,t2]');
  process.exit(2);
}
const now = new Date(flag('now') ?? '2025-07-01T00:00:00Z');
const placeholder = { url: 'http://127.0.0.1:9', baseUrl: 'http://127.0.0.1:9', apiKey: 'x', publicKey: 'x', secretKey: 'x', token: 'x', secret: 'x', merchantId: '1', advertiserId: '1' };
const endpoints = { stripe: placeholder, chargebee: placeholder, partnerstack: placeholder, shareasale: placeholder, awin: placeholder } as unknown as FakeEndpoints;
const { config } = demoConfigFor(endpoints, new Date('2023-01-01T00:00:00Z'), { base: { log: { level: 'silent' }, alerts: { sinks: [] } } });
const log = createLogger({ level: 'info' });
const db = await openDb({ url, poolMax: 2 });
try {
  for (const t of (flag('unanalyze') ?? '').split(',').filter(Boolean)) {
    await db.raw(`DELETE FROM pg_statistic WHERE starelid = ?::regclass`, [t]);
    await db.raw(`UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = ?::regclass`, [t]);
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const full = args.includes('--full');
  const summary =
    stage === 'compute'
      ? await computeAndStore(db, config, now, { full, log })
      : await runReconciliation({ db, config, log }, { now, full });
  const cpu = process.cpuUsage(cpu0);
  const s = summary as unknown as Record<string, unknown>;
  console.log(JSON.stringify({
    stage, full, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    mode: s.mode, fullReason: s.fullReason, counts: stage === 'compute' ? { partners: s.partners, computed: s.computed, written: s.written, deleted: s.deleted } : { units: s.units, items: s.items, found: s.found, new: s.new, resolved: s.resolved }, timings: s.timings,
  }));
} finally {
  await db.destroy();
}
