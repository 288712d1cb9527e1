// Jobs built from configuration, run through the scheduler: names, schedules and where they came from;
// a failing sync is recorded as a failed fire with a clear (secret-free) error and counted in metrics.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { buildJobs } from '../../src/scheduler/jobs.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { ServiceMetrics } from '../../src/service/metrics.ts';
import { silentLogger } from '../../src/log/logger.ts';

const t = useTestDb();

const config = configSchema.parse({
  timezone: 'Europe/Berlin',
  schedules: { mainJob: '15 2 * * *' },
  connections: [
    { name: 'ps', type: 'partnerstack', schedule: '*/30 * * * *', baseUrl: 'http://127.0.0.1:9', credentials: { publicKey: 'PS_PUBLIC_KEY_UNSET', secretKey: 'PS_SECRET_KEY_UNSET' } },
    { name: 'off', type: 'awin', enabled: false, schedule: '0 * * * *' },
  ],
});

describe('jobs from configuration', () => {
  it('schedules one sync per enabled connection, the main job and a manual push', async () => {
    const jobs = await buildJobs({ db: t.db, config, log: silentLogger, env: {} });
    const byName = Object.fromEntries(jobs.map((j) => [j.name, j]));
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(['sync:ps', 'main-job', 'push']));
    expect(byName['sync:off']).toBeUndefined();
    expect(byName['sync:ps']).toMatchObject({ cron: '*/30 * * * *', source: 'connections.0.schedule' });
    expect(byName['main-job']).toMatchObject({ cron: '15 2 * * *', source: 'schedules.mainJob' });
    expect(byName['push']!.cron).toBeUndefined();
    const s = new Scheduler({ db: t.db, log: silentLogger, jobs, timezone: config.timezone });
    s.start();
    const next = s.listJobs().find((j) => j.name === 'main-job')!.nextRun!;
    // 02:15 in Berlin is 00:15 or 01:15 UTC depending on daylight saving time
    expect(next.getUTCMinutes()).toBe(15);
    expect([0, 1]).toContain(next.getUTCHours());
    await s.stop(100);
  });

  it('records a failing sync as a failed fire with a clear error, and counts it', async () => {
    const metrics = new ServiceMetrics(t.db, { defaultMetrics: false });
    const jobs = await buildJobs({ db: t.db, config, log: silentLogger, env: {}, onSyncResult: (r) => metrics.observeSync(r) });
    const s = new Scheduler({ db: t.db, log: silentLogger, jobs, observer: { onFinished: (job, outcome, ms) => metrics.observeJob(job, outcome, ms) } });
    const r = await s.trigger('sync:ps');
    expect(r.status).toBe('started');
    if (r.status === 'started') await r.done;
    const fire = await t.db('job_fires').where({ job_name: 'sync:ps' }).first();
    expect(fire.status).toBe('failed');
    expect(fire.error).toMatch(/ps/);
    const text = await metrics.registry.metrics();
    expect(text).toContain('commission_sync_job_runs_total{job="sync:ps",status="failed"} 1');
    await s.stop(100);
  });
});
