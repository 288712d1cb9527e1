// Several replicas against one PostgreSQL (skipped without TEST_DATABASE_URL: PGlite is one process).
//  1. Two scheduler instances with separate pools, a job firing every 2 s: each fire runs exactly once.
//  2. Two replica processes; the one running a fire is killed (SIGKILL) mid-job: its fire is closed as
//     failed once the lease expires and the other replica takes the next fire.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDb, usingPostgres } from '../helpers/db.ts';
import { openDb } from '../../src/db/connection.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { silentLogger } from '../../src/log/logger.ts';

if (!usingPostgres()) console.warn('[replicas] SKIPPED: set TEST_DATABASE_URL=postgres://… to run the multi-replica scheduler tests');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!usingPostgres())('multi-replica scheduling on PostgreSQL', () => {
  const t = useTestDb();
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
  });

  it('runs each fire once across two in-process schedulers with separate pools', async () => {
    const executions: Array<{ fire: string; owner: string }> = [];
    const pools = [await openDb({ url: t.url, poolMax: 3 }), await openDb({ url: t.url, poolMax: 3 })];
    const schedulers = pools.map(
      (db, i) =>
        new Scheduler({
          db,
          log: silentLogger,
          owner: `replica-${i}`,
          leaseMs: 5_000,
          jobs: [{ name: 'tick', cron: '*/2 * * * * *', description: 'test', run: async (ctx) => { executions.push({ fire: ctx.fireAt.toISOString(), owner: `replica-${i}` }); await sleep(300); } }],
        }),
    );
    for (const s of schedulers) s.start();
    await sleep(9_000);
    for (const s of schedulers) await s.stop(2_000);
    for (const p of pools) await p.destroy();

    const fires = executions.map((e) => e.fire);
    expect(executions.length).toBeGreaterThanOrEqual(3);
    expect(new Set(fires).size).toBe(fires.length); // no fire ran twice
    const rows = await t.db('job_fires').where({ job_name: 'tick' }).orderBy('fire_at').select('fire_at', 'owner', 'status');
    expect(rows.length).toBe(executions.length);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
    // fires are the cron's 2-second slots (the same key on both replicas)
    const times = rows.map((r) => new Date(r.fire_at).getTime());
    for (const ms of times) expect(ms % 2_000).toBe(0);
  }, 30_000);

  it('lets the surviving replica take the next fire after the running one is killed', async () => {
    const fixture = path.resolve('test/service/fixtures/replica.ts');
    const lines: string[] = [];
    const start = (owner: string) => {
      // every 3 s, a job of 2 s, lease 1.5 s (heartbeat every ~375 ms)
      const c = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', fixture, t.url!, owner, '*/3 * * * * *', '2000', '1500'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      c.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      children.push(c);
      return c;
    };
    const a = start('A');
    const b = start('B');
    const waitFor = async (pred: () => boolean, ms: number, what: string) => {
      const until = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; saw:\n${lines.join('\n')}`);
        await sleep(50);
      }
    };
    await waitFor(() => lines.includes('READY A') && lines.includes('READY B'), 20_000, 'both replicas');
    await waitFor(() => lines.some((l) => l.startsWith('START ')), 10_000, 'a first fire');
    const first = lines.find((l) => l.startsWith('START '))!;
    const [, killedFire, victim] = first.split(' ');
    const survivor = victim === 'A' ? 'B' : 'A';
    (victim === 'A' ? a : b).kill('SIGKILL'); // mid-job: START printed, END never
    await waitFor(() => lines.some((l) => l.startsWith('START ') && l.endsWith(` ${survivor}`) && l.split(' ')[1]! > killedFire!), 12_000, 'the survivor to take a fire');
    const taken = lines.find((l) => l.startsWith('START ') && l.endsWith(` ${survivor}`) && l.split(' ')[1]! > killedFire!)!.split(' ')[1]!;
    // the very next fire (3 s later): the dead replica's lease (1.5 s) had expired by then
    expect(new Date(taken).getTime() - new Date(killedFire!).getTime()).toBe(3_000);
    await waitFor(() => lines.includes(`END ${taken} ${survivor}`), 10_000, 'the survivor to finish');

    // END is printed by the job body, before the scheduler commits the fire's status, and the dead
    // replica's fire is marked failed by whoever next finds its lease expired: wait for both rows to
    // settle instead of reading them the moment END appears.
    const readFires = () => t.db('job_fires').where({ job_name: 'work' }).orderBy('fire_at').select('fire_at', 'owner', 'status', 'error');
    let rows = await readFires();
    const settled = () => ['failed', 'succeeded'].includes(rows.find((r) => new Date(r.fire_at).toISOString() === killedFire)?.status)
      && rows.find((r) => new Date(r.fire_at).toISOString() === taken)?.status === 'succeeded';
    for (const until = Date.now() + 10_000; !settled() && Date.now() < until; rows = await readFires()) await sleep(100);
    const killedRow = rows.find((r) => new Date(r.fire_at).toISOString() === killedFire)!;
    expect(killedRow).toMatchObject({ owner: victim, status: 'failed' });
    expect(killedRow.error).toMatch(/lease expired/);
    expect(rows.find((r) => new Date(r.fire_at).toISOString() === taken)).toMatchObject({ owner: survivor, status: 'succeeded' });
    // every START is for a distinct fire: nothing ran twice
    const starts = lines.filter((l) => l.startsWith('START ')).map((l) => l.split(' ')[1]);
    expect(new Set(starts).size).toBe(starts.length);

    const other = victim === 'A' ? b : a;
    const exited = new Promise((r) => other.once('exit', r));
    other.kill('SIGTERM');
    await exited;
  }, 60_000);
});
