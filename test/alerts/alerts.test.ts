import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation } from '../../src/reconcile/run.ts';
import { runAlerts, type AlertDeps } from '../../src/alerts/alerts.ts';
import { signBody, SIGNATURE_HEADER, TIMESTAMP_HEADER, type AlertMessage, type Sink } from '../../src/alerts/sinks.ts';
import { clearSecretsForTests } from '../../src/util/secrets.ts';
import { standardWorld } from '../reconcile/world.ts';

const log = pino({ level: 'silent' });

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('alerts', () => {
  let t: TestDb;
  let http: Server;
  let smtp: SMTPServer;
  let received: Received[];
  let mails: string[];
  let failSlack: boolean;
  beforeEach(async () => {
    clearSecretsForTests();
    t = await createTestDb();
    received = [];
    mails = [];
    failSlack = false;
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url?.startsWith('/services/') && failSlack) return void res.writeHead(500).end('boom');
        received.push({ path: req.url ?? '', headers: req.headers, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, cb) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          mails.push(data);
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  });
  afterEach(async () => {
    await new Promise((r) => http.close(r));
    await new Promise((r) => smtp.close(() => r(undefined)));
    await t.destroy();
  });

  const httpBase = () => `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const smtpPort = () => (smtp.server.address() as AddressInfo).port;
  const env = () => ({ SLACK_URL: `${httpBase()}/services/T000/B000/sekret123`, HOOK_SECRET: 'hook-secret-xyz' });
  const configWith = (extra: Record<string, unknown> = {}) =>
    configSchema.parse({
      alerts: {
        minSeverity: 'high',
        minUsdMinor: 3000,
        retryDelayMs: 1,
        sinks: [
          { name: 'slack', type: 'slack', webhookUrlEnv: 'SLACK_URL' },
          { name: 'hook', type: 'webhook', url: `${httpBase()}/hook`, secretEnv: 'HOOK_SECRET' },
          { name: 'mail', type: 'email', host: '127.0.0.1', port: smtpPort(), from: 'cs@example.com', to: ['ops@example.com'] },
        ],
        ...extra,
      },
    });

  it('sends new discrepancies above the threshold to Slack, a signed webhook and email, once', async () => {
    await standardWorld(t.db);
    const config = configWith();
    await runReconciliation({ db: t.db, config }, { now: new Date('2025-03-01T00:00:00Z') });
    const deps: AlertDeps = { db: t.db, config, log, env: env() };
    const s = await runAlerts(deps, { now: new Date('2025-03-01T01:00:00Z') });
    // minUsdMinor 3000: the 4000 missing and the 3000 amount mismatch (every other one is < $30 and < high)
    expect(s).toMatchObject({ candidates: 2, sent: 6, failed: 0 });
    const slack = received.filter((r) => r.path.startsWith('/services/'));
    expect(slack).toHaveLength(2);
    expect(JSON.parse(slack[0]!.body).text).toMatch(/missing_in_network \$40\.00|amount_mismatch \$30\.00/);
    const hooks = received.filter((r) => r.path === '/hook');
    expect(hooks).toHaveLength(2);
    for (const h of hooks) {
      expect(h.headers[SIGNATURE_HEADER]).toBe(signBody('hook-secret-xyz', String(h.headers[TIMESTAMP_HEADER]), h.body));
      expect(JSON.parse(h.body).trigger).toBe('discrepancy');
    }
    expect(mails).toHaveLength(2);
    expect(mails.join('\n')).toMatch(/Subject: \[commission-sync\] (missing_in_network|amount_mismatch)/);

    const again = await runAlerts(deps, { now: new Date('2025-03-01T02:00:00Z') });
    // Delivered everywhere: no longer a candidate (the run does not even read them again).
    expect(again).toMatchObject({ candidates: 0, sent: 0, failed: 0 });
    expect(received).toHaveLength(4);
    expect(mails).toHaveLength(2);
  });

  it('more new discrepancies than alerts.maxPerRun become one summary; they are not alerted one by one later', async () => {
    await standardWorld(t.db);
    // Threshold low enough that every open discrepancy qualifies; at most 1 individual alert per run.
    const config = configWith({ minSeverity: 'info', minUsdMinor: 0, maxPerRun: 1, sinks: [{ name: 'slack', type: 'slack', webhookUrlEnv: 'SLACK_URL' }] });
    await runReconciliation({ db: t.db, config }, { now: new Date('2025-03-01T00:00:00Z') });
    const open = (await t.db('discrepancies').where({ status: 'open' }).count<{ n: string | number }[]>('* as n'))[0]!.n;
    expect(Number(open)).toBeGreaterThan(1);
    const deps: AlertDeps = { db: t.db, config, log, env: env() };
    const s = await runAlerts(deps, { now: new Date('2025-03-01T01:00:00Z') });
    expect(s).toMatchObject({ candidates: 1, sent: 1, failed: 0 });
    const slack = received.filter((r) => r.path.startsWith('/services/'));
    expect(slack).toHaveLength(1);
    expect(JSON.parse(slack[0]!.body).text).toContain(`${Number(open)} new discrepancies`);
    const again = await runAlerts(deps, { now: new Date('2025-03-01T02:00:00Z') });
    expect(again).toMatchObject({ sent: 0, failed: 0 }); // each one is recognised as covered (deduped)
    expect(received.filter((r) => r.path.startsWith('/services/'))).toHaveLength(1);
  });

  it('a failing sink is retried a bounded number of times, reported, and does not stop the others', async () => {
    await standardWorld(t.db);
    const config = configWith({ maxAttempts: 3, sinks: [{ name: 'slack', type: 'slack', webhookUrlEnv: 'SLACK_URL' }, { name: 'hook', type: 'webhook', url: `${httpBase()}/hook`, secretEnv: 'HOOK_SECRET' }] });
    await runReconciliation({ db: t.db, config }, { now: new Date('2025-03-01T00:00:00Z') });
    failSlack = true;
    const deps: AlertDeps = { db: t.db, config, log, env: env() };
    const s = await runAlerts(deps);
    expect(s.sent).toBe(2); // the webhook
    expect(s.failed).toBe(2); // slack, both alerts
    expect(s.sinkErrors.every((e) => e.sink === 'slack' && /HTTP 500/.test(e.error))).toBe(true);
    // the webhook URL path is the Slack credential: never in errors
    expect(JSON.stringify(s.sinkErrors)).not.toContain('sekret123');
    const rows = await t.db('alerts').where({ sink: 'slack' });
    expect(rows.map((r) => [r.status, Number(r.attempts)])).toEqual([['failed', 3], ['failed', 3]]);
    expect(rows.map((r) => String(r.error)).join(' ')).not.toContain('sekret123');

    failSlack = false;
    const later = await runAlerts(deps);
    expect(later).toMatchObject({ sent: 2, failed: 0, deduped: 2 });

    // A missing secret fails that sink only.
    const noSecret = await runAlerts({ ...deps, env: { HOOK_SECRET: 'hook-secret-xyz' }, config: configWith({ sinks: [{ name: 'slack2', type: 'slack', webhookUrlEnv: 'SLACK_URL' }] }) });
    expect(noSecret.sinkErrors[0]!.error).toMatch(/SLACK_URL/);
  });

  it('with a daily digest, discrepancies go out once a day as one message', async () => {
    await standardWorld(t.db);
    const config = configWith({ digest: true, sinks: [{ name: 'hook', type: 'webhook', url: `${httpBase()}/hook`, secretEnv: 'HOOK_SECRET' }] });
    await runReconciliation({ db: t.db, config }, { now: new Date('2025-03-01T10:00:00Z') });
    const deps: AlertDeps = { db: t.db, config, log, env: env() };
    const sameDay = await runAlerts(deps, { now: new Date('2025-03-01T12:00:00Z') });
    expect(sameDay.sent).toBe(0);
    const next = await runAlerts(deps, { now: new Date('2025-03-02T06:00:00Z') });
    expect(next.sent).toBe(1);
    const body = JSON.parse(received[0]!.body);
    expect(body.trigger).toBe('digest');
    // 4000 + 3000 = 7000 at stake
    expect(body.payload).toMatchObject({ date: '2025-03-01', count: 2, usdAtStakeMinor: 7000 });
    const later = await runAlerts(deps, { now: new Date('2025-03-02T18:00:00Z') });
    expect(later.sent).toBe(0);
  });

  it('alerts on failed and stale syncs, push failures and quarantine growth, each once', async () => {
    const got: AlertMessage[] = [];
    const sink: Sink = { name: 'mem', type: 'log', send: async (m) => void got.push(m) };
    const config = configSchema.parse({ connections: [{ name: 'ps', type: 'partnerstack' }, { name: 'stripe', type: 'stripe' }], alerts: { staleSyncHours: 24, quarantineGrowth: 2 } });
    const deps: AlertDeps = { db: t.db, config, log, sinks: [sink] };
    const now = new Date('2025-03-01T12:00:00Z');
    await t.db('sync_runs').insert([
      { connection: 'stripe', status: 'succeeded', started_at: '2025-03-01T10:00:00Z', finished_at: '2025-03-01T10:05:00Z' },
      { connection: 'ps', status: 'succeeded', started_at: '2025-02-27T10:00:00Z', finished_at: '2025-02-27T10:05:00Z' },
      { connection: 'ps', status: 'failed', started_at: '2025-03-01T11:00:00Z', finished_at: '2025-03-01T11:01:00Z', error: 'HTTP 401' },
    ]);
    for (const h of ['a', 'b']) await t.db('quarantine').insert({ connection: 'ps', stream: 'rewards', payload_hash: h, error: 'bad' });
    await t.db('corrections').insert({ idempotency_key: 'k1', connection: 'ps', network: 'partnerstack', action_type: 'create_reward', payload: '{}', status: 'failed', attempts: 1, error: 'HTTP 422' });

    const s = await runAlerts(deps, { now });
    expect(got.map((m) => m.trigger).sort()).toEqual(['push_failed', 'quarantine_growth', 'sync_failed', 'sync_stale']);
    expect(got.find((m) => m.trigger === 'sync_stale')!.subject).toMatch(/ps for 49 h/); // 2025-02-27 10:05 → 03-01 12:00 = 48 h + 1 h 55 min
    expect(s.sent).toBe(4);
    expect((await runAlerts(deps, { now })).sent).toBe(0);

    // One more quarantined record is below the growth threshold of 2; two more alert again.
    await t.db('quarantine').insert({ connection: 'ps', stream: 'rewards', payload_hash: 'c', error: 'bad' });
    expect((await runAlerts(deps, { now })).sent).toBe(0);
    await t.db('quarantine').insert({ connection: 'ps', stream: 'rewards', payload_hash: 'd', error: 'bad' });
    const grown = await runAlerts(deps, { now });
    expect(grown.sent).toBe(1);
    expect(got.at(-1)!.subject).toMatch(/grew to 4/);
  });
});
