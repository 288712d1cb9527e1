// The job_fires protocol on both databases: one winner per fire, overlap skipped while the previous
// fire heartbeats, a dead owner's stale fire does not block, outcomes recorded.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { PgJobCoordinator, fireKey, parseFireKey } from '../../src/scheduler/coordinator.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { silentLogger } from '../../src/log/logger.ts';

const t = useTestDb();

const coord = (owner: string, leaseMs = 60_000) => new PgJobCoordinator({ db: t.db, owner, leaseMs, log: silentLogger });

describe('PgJobCoordinator', () => {
  it('parses node-cron keys whose job names contain colons', () => {
    const at = new Date('2025-03-01T10:00:05.000Z');
    expect(parseFireKey(fireKey('sync:stripe-main', at))).toEqual({ job: 'sync:stripe-main', fireAt: at });
  });

  it('lets exactly one replica take a fire', async () => {
    const a = coord('a');
    const b = coord('b');
    const at = new Date('2025-03-01T10:00:00Z');
    const results = await Promise.all([a.shouldRun(fireKey('job', at)), b.shouldRun(fireKey('job', at))]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results[0] ? a : b;
    winner.recordOutcome(fireKey('job', at));
    await winner.onComplete(fireKey('job', at));
    const rows = await t.db('job_fires').select('owner', 'status');
    expect(rows).toEqual([{ owner: results[0] ? 'a' : 'b', status: 'succeeded' }]);
  });

  it('skips a fire while the previous one still heartbeats, then runs the next after it finished', async () => {
    const a = coord('a');
    const b = coord('b');
    const t1 = new Date('2025-03-01T10:00:00Z');
    const t2 = new Date('2025-03-01T10:00:02Z');
    const t3 = new Date('2025-03-01T10:00:04Z');
    expect(await a.claim('job', t1)).toEqual({ status: 'won' });
    const skipped = await b.claim('job', t2);
    expect(skipped.status).toBe('skipped');
    expect(skipped.status === 'skipped' && skipped.reason).toMatch(/still running on a/);
    // a's second claim of the same fire loses (already decided)
    expect(await a.claim('job', t2)).toEqual({ status: 'lost' });
    await a.finish('job', t1, 'boom');
    expect(await b.claim('job', t3)).toEqual({ status: 'won' });
    await b.finish('job', t3);
    const rows = await t.db('job_fires').orderBy('fire_at').select('owner', 'status', 'error');
    expect(rows.map((r) => r.status)).toEqual(['failed', 'skipped', 'succeeded']);
    expect(rows[0].error).toBe('boom');
  });

  it('does not let a dead owner (stale heartbeat) block the next fire', async () => {
    const dead = coord('dead', 1_000);
    const live = coord('live', 1_000);
    const t1 = new Date('2025-03-01T10:00:00Z');
    expect((await dead.claim('job', t1)).status).toBe('won');
    dead.abandonAll(); // the process died: no more heartbeats, never finished
    await t.db('job_fires').update({ heartbeat_at: t.db.raw(`now() - interval '5 seconds'`) });
    expect((await live.claim('job', new Date('2025-03-01T10:00:10Z'))).status).toBe('won');
    await live.finish('job', new Date('2025-03-01T10:00:10Z'));
    const rows = await t.db('job_fires').orderBy('fire_at').select('owner', 'status', 'error');
    expect(rows[0]).toMatchObject({ owner: 'dead', status: 'failed' });
    expect(rows[0].error).toMatch(/lease expired/);
    expect(rows[1]).toMatchObject({ owner: 'live', status: 'succeeded' });
  });

  it('refreshes the heartbeat while running', async () => {
    const a = new PgJobCoordinator({ db: t.db, owner: 'a', leaseMs: 60_000, heartbeatMs: 100, log: silentLogger });
    const t1 = new Date('2025-03-01T10:00:00Z');
    await a.claim('job', t1);
    await t.db('job_fires').update({ heartbeat_at: t.db.raw(`now() - interval '30 seconds'`) });
    await new Promise((r) => setTimeout(r, 400));
    const row = await t.db('job_fires').first(t.db.raw(`extract(epoch from (now() - heartbeat_at))::float8 as age`));
    expect(Number(row.age)).toBeLessThan(5);
    await a.finish('job', t1);
  });
});

describe('Scheduler', () => {
  it('runs a 1-second cron job through the coordinator and records each fire once', async () => {
    const runs: string[] = [];
    const s = new Scheduler({
      db: t.db,
      log: silentLogger,
      jobs: [{ name: 'tick', cron: '* * * * * *', description: 'test', run: async (ctx) => void runs.push(ctx.fireAt.toISOString()) }],
    });
    s.start();
    await new Promise((r) => setTimeout(r, 2_600));
    await s.stop(1_000);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(new Set(runs).size).toBe(runs.length);
    const rows = await t.db('job_fires').where({ job_name: 'tick' }).select('status');
    expect(rows.length).toBe(runs.length);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
  });

  it('triggers a job manually and refuses to overlap it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = new Scheduler({ db: t.db, log: silentLogger, jobs: [{ name: 'slow', description: 'test', run: () => gate }] });
    const first = await s.trigger('slow');
    expect(first.status).toBe('started');
    const second = await s.trigger('slow');
    expect(second.status).toBe('skipped');
    release();
    if (first.status === 'started') await first.done;
    const statuses = (await t.db('job_fires').orderBy('fire_at').select('status')).map((r) => r.status);
    expect(statuses).toEqual(['succeeded', 'skipped']);
    await s.stop(100);
  });

  it('rejects an invalid cron expression naming the config field', () => {
    expect(() => new Scheduler({ db: t.db, log: silentLogger, jobs: [{ name: 'x', cron: '61 * * * *', source: 'schedules.mainJob', description: '', run: async () => undefined }] })).toThrow(/schedules\.mainJob/);
  });
});
