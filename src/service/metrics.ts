// Prometheus metrics. Two kinds:
//  - process counters/histograms for work this replica did (records synced, sync errors, job runs and
//    durations, webhooks received);
//  - gauges read from the database on each scrape, so every replica reports the same cluster-wide truth
//    (discrepancies by kind and status, USD at stake, push outcomes, last successful sync per connection).
// Money is exported in integer US cents (`_usd_cents`), never floats of dollars.
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SyncRunResult } from '../sync/engine.ts';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly recordsSynced: Counter<'connection' | 'stream'>;
  readonly syncErrors: Counter<'connection'>;
  readonly syncRuns: Counter<'connection' | 'status'>;
  readonly jobRuns: Counter<'job' | 'status'>;
  readonly jobDuration: Histogram<'job'>;
  readonly webhooks: Counter<'source' | 'outcome'>;
  private readonly db: Knex;

  constructor(db: Knex, opts: { defaultMetrics?: boolean } = {}) {
    this.db = db;
    const r = this.registry;
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r, prefix: 'commission_sync_' });
    this.recordsSynced = new Counter({ name: 'commission_sync_records_synced_total', help: 'Records synced by this replica', labelNames: ['connection', 'stream'], registers: [r] });
    this.syncErrors = new Counter({ name: 'commission_sync_sync_errors_total', help: 'Failed sync runs and quarantined records seen by this replica', labelNames: ['connection'], registers: [r] });
    this.syncRuns = new Counter({ name: 'commission_sync_sync_runs_total', help: 'Sync runs finished by this replica', labelNames: ['connection', 'status'], registers: [r] });
    this.jobRuns = new Counter({ name: 'commission_sync_job_runs_total', help: 'Scheduled or triggered job runs executed by this replica', labelNames: ['job', 'status'], registers: [r] });
    this.jobDuration = new Histogram({ name: 'commission_sync_job_duration_seconds', help: 'Job run durations', labelNames: ['job'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers: [r] });
    this.webhooks = new Counter({ name: 'commission_sync_webhooks_total', help: 'Webhook deliveries by outcome', labelNames: ['source', 'outcome'], registers: [r] });

    const q = db;
    new Gauge({
      name: 'commission_sync_discrepancies',
      help: 'Discrepancies by kind and status (from the database)',
      labelNames: ['kind', 'status'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q('discrepancies').select('kind', 'status').count<Array<{ kind: string; status: string; n: string | number }>>('* as n').groupBy('kind', 'status');
        for (const row of rows) this.set({ kind: row.kind, status: row.status }, Number(row.n));
      },
    });
    new Gauge({
      name: 'commission_sync_usd_at_stake_cents',
      help: 'USD (cents) at stake in open and approved discrepancies, by kind (from the database)',
      labelNames: ['kind'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q('discrepancies').whereIn('status', ['open', 'approved']).select('kind').sum<Array<{ kind: string; usd: string | number | null }>>('usd_at_stake_minor as usd').groupBy('kind');
        for (const row of rows) this.set({ kind: row.kind }, Number(row.usd ?? 0));
      },
    });
    new Gauge({
      name: 'commission_sync_push_outcomes',
      help: 'Corrections (push-back actions) by network and status (from the database)',
      labelNames: ['network', 'status'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q('corrections').select('network', 'status').count<Array<{ network: string; status: string; n: string | number }>>('* as n').groupBy('network', 'status');
        for (const row of rows) this.set({ network: row.network, status: row.status }, Number(row.n));
      },
    });
    new Gauge({
      name: 'commission_sync_last_sync_success_timestamp_seconds',
      help: 'Unix time of the last successful sync per connection (from the database)',
      labelNames: ['connection'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q('sync_runs').where({ status: 'succeeded' }).select('connection').max<Array<{ connection: string; at: Date | string | null }>>('finished_at as at').groupBy('connection');
        for (const row of rows) if (row.at) this.set({ connection: row.connection }, Math.floor(new Date(row.at).getTime() / 1000));
      },
    });
    new Gauge({
      name: 'commission_sync_last_sync_records',
      help: 'Records read by the last finished sync run per connection (from the database)',
      labelNames: ['connection', 'status'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q.raw(`SELECT DISTINCT ON (connection) connection, status, stats FROM sync_runs WHERE finished_at IS NOT NULL ORDER BY connection, id DESC`);
        for (const row of rows.rows as Array<{ connection: string; status: string; stats: unknown }>) {
          this.set({ connection: row.connection, status: row.status }, recordsIn(row.stats));
        }
      },
    });
    new Gauge({
      name: 'commission_sync_last_sync_duration_seconds',
      help: 'Duration of the last finished sync run per connection, any replica (from the database)',
      labelNames: ['connection', 'status'],
      registers: [r],
      async collect() {
        this.reset();
        const rows = await q.raw(`SELECT DISTINCT ON (connection) connection, status, extract(epoch from (finished_at - started_at))::float8 AS secs FROM sync_runs WHERE finished_at IS NOT NULL ORDER BY connection, id DESC`);
        for (const row of rows.rows as Array<{ connection: string; status: string; secs: number | string }>) this.set({ connection: row.connection, status: row.status }, Number(row.secs));
      },
    });
  }

  observeSync(r: SyncRunResult): void {
    this.syncRuns.inc({ connection: r.connection, status: r.status });
    if (r.status === 'failed') this.syncErrors.inc({ connection: r.connection });
    for (const [stream, s] of Object.entries(r.streams)) {
      if (s.records) this.recordsSynced.inc({ connection: r.connection, stream }, s.records);
      if (s.quarantined) this.syncErrors.inc({ connection: r.connection }, s.quarantined);
    }
  }

  observeJob(job: string, outcome: 'succeeded' | 'failed', durationMs: number): void {
    this.jobRuns.inc({ job, status: outcome });
    this.jobDuration.observe({ job }, durationMs / 1000);
  }
}

function recordsIn(stats: unknown): number {
  const obj = typeof stats === 'string' ? (JSON.parse(stats) as unknown) : stats;
  if (!obj || typeof obj !== 'object') return 0;
  let n = 0;
  for (const s of Object.values(obj as Record<string, unknown>)) {
    const rec = (s as { records?: unknown } | null)?.records;
    if (typeof rec === 'number') n += rec;
  }
  return n;
}
