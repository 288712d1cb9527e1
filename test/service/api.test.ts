// The HTTP service over a seeded world: open vs protected endpoints, roles, validation errors and the
// error body, webhook verification (the connectors' real Stripe/Chargebee handlers, PartnerStack path
// token), metrics, OpenAPI, security headers and the auth-failure rate limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { buildServer, redactUrl } from '../../src/service/server.ts';
import { stripeSignatureHeader } from '../../src/service/webhooks.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { silentLogger, createLogger } from '../../src/log/logger.ts';
import { seedWorld, testConfig, type Seeded } from './seed.ts';

const VIEWER = 'viewer-token-0123456789';
const OPERATOR = 'operator-token-0123456789';
const env: NodeJS.ProcessEnv = {
  VIEWER_TOKEN: VIEWER,
  OPERATOR_TOKEN: OPERATOR,
  STRIPE_API_KEY: 'sk_test_dummy_key_123',
  STRIPE_WEBHOOK_SECRET: 'whsec_new_secret_abc,whsec_old_secret_xyz',
  CB_API_KEY: 'cb_test_dummy_key',
  CB_WH_USER: 'cbuser',
  CB_WH_PASS: 'cb-password-123',
  PS_WEBHOOK_TOKEN: 'ps-path-token-abcdef',
};

let t: TestDb;
let app: FastifyInstance;
let seeded: Seeded;
let scheduler: Scheduler;
const jobRuns: string[] = [];
const logLines: string[] = [];

const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

beforeAll(async () => {
  t = await createTestDb();
  seeded = await seedWorld(t.db);
  const config = testConfig();
  scheduler = new Scheduler({
    db: t.db,
    log: silentLogger,
    jobs: [
      { name: 'main-job', description: 'test', run: async () => void jobRuns.push('main') },
      { name: 'sync:ps', description: 'test', run: async () => void jobRuns.push('sync:ps') },
    ],
  });
  const log = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } as never });
  ({ app } = await buildServer({ db: t.db, config, log, env, scheduler, authFailures: { max: 5, windowMs: 60_000 } }));
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await scheduler?.stop(100);
  await t?.destroy();
});

describe('open endpoints', () => {
  it('/healthz and /readyz answer without a token', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const r = await app.inject('/readyz');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'ready', pendingMigrations: [] });
  });

  it('sets security headers (helmet, CSP without inline scripts)', async () => {
    const r = await app.inject('/healthz');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBeDefined();
    expect(String(r.headers['content-security-policy'])).toContain("script-src 'self'");
  });

  it('serves the dashboard shell (no data in it)', async () => {
    const r = await app.inject('/dashboard/');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.body).toContain('/dashboard/app.js');
    expect((await app.inject('/dashboard/app.js')).headers['content-type']).toMatch(/javascript/);
    expect((await app.inject('/dashboard/../package.json')).statusCode).toBe(404);
  });
});

describe('auth and roles', () => {
  it('refuses the API without a token, with the error body', async () => {
    const r = await app.inject('/api/discrepancies');
    expect(r.statusCode).toBe(401);
    expect(r.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/bearer token/) } });
  });

  it('refuses a wrong token and never echoes it', async () => {
    const r = await app.inject({ url: '/api/me', headers: bearer('not-the-token') });
    expect(r.statusCode).toBe(401);
    expect(r.body).not.toContain('not-the-token');
  });

  it('lets a viewer read but not approve, ignore or trigger', async () => {
    const me = await app.inject({ url: '/api/me', headers: bearer(VIEWER) });
    expect(me.json()).toMatchObject({ role: 'viewer', name: 'VIEWER_TOKEN' });
    expect((await app.inject({ url: '/api/discrepancies', headers: bearer(VIEWER) })).statusCode).toBe(200);
    const approve = await app.inject({ method: 'POST', url: `/api/discrepancies/${seeded.discrepancies.janMismatch}/approve`, headers: bearer(VIEWER), payload: {} });
    expect(approve.statusCode).toBe(403);
    expect(approve.json().error.code).toBe('forbidden');
    expect((await app.inject({ method: 'POST', url: '/api/trigger/main-job', headers: bearer(VIEWER), payload: {} })).statusCode).toBe(403);
  });

  it('lets an operator approve and ignore (ignore needs a reason); decisions are recorded', async () => {
    const id = seeded.discrepancies.febMissing;
    const noReason = await app.inject({ method: 'POST', url: `/api/discrepancies/${id}/ignore`, headers: bearer(OPERATOR), payload: {} });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().error).toMatchObject({ code: 'validation_error', details: [expect.objectContaining({ in: 'body', path: 'reason' })] });
    const ok = await app.inject({ method: 'POST', url: `/api/discrepancies/${id}/approve`, headers: bearer(OPERATOR), payload: { reason: 'checked invoice' } });
    expect(ok.statusCode).toBe(200);
    const row = await t.db('discrepancies').where({ id }).first();
    expect(row).toMatchObject({ status: 'approved', reason: 'checked invoice', decided_by: 'token:OPERATOR_TOKEN' });
    // an ignored one cannot be approved back
    const conflict = await app.inject({ method: 'POST', url: `/api/discrepancies/${seeded.discrepancies.awinIgnored}/approve`, headers: bearer(OPERATOR), payload: {} });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error.code).toBe('conflict');
    await t.db('discrepancies').where({ id }).update({ status: 'open', reason: null, decided_by: null, decided_at: null });
  });

  it('never logs a token', async () => {
    await app.inject({ url: '/api/me', headers: bearer(OPERATOR) });
    await app.inject({ method: 'POST', url: `/webhooks/partnerstack/ps/${env.PS_WEBHOOK_TOKEN}`, payload: { event: 'x', data: { key: 'k1' } } });
    const all = logLines.join('\n');
    expect(all).not.toContain(OPERATOR);
    expect(all).not.toContain(env.PS_WEBHOOK_TOKEN);
    expect(redactUrl('/webhooks/partnerstack/ps/secret?x=1')).toBe('/webhooks/partnerstack/ps/[REDACTED]?x=1');
  });
});

describe('validation errors', () => {
  it('rejects bad query values with details', async () => {
    const r = await app.inject({ url: '/api/discrepancies?status=bogus&period=2025-13', headers: bearer(VIEWER) });
    expect(r.statusCode).toBe(400);
    const e = r.json().error;
    expect(e.code).toBe('validation_error');
    expect(e.details.map((d: { path: string }) => d.path).sort()).toEqual(['period', 'status.0']);
  });

  it('rejects bad path params and unknown body fields', async () => {
    expect((await app.inject({ url: '/api/partners/abc', headers: bearer(VIEWER) })).json().error.code).toBe('validation_error');
    const r = await app.inject({ method: 'POST', url: '/api/trigger/sync', headers: bearer(OPERATOR), payload: { connection: 'ps', extra: 1 } });
    expect(r.statusCode).toBe(400);
  });

  it('answers malformed JSON and unknown routes with the same error body', async () => {
    const bad = await app.inject({ method: 'POST', url: `/api/discrepancies/${seeded.discrepancies.janMismatch}/approve`, headers: { ...bearer(OPERATOR), 'content-type': 'application/json' }, payload: '{nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBeDefined();
    const nf = await app.inject({ url: '/api/nope', headers: bearer(VIEWER) });
    expect(nf.statusCode).toBe(404);
    expect(nf.json()).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  });
});

describe('read API over the seeded world', () => {
  it('overview: reported vs owed vs collected per month and network', async () => {
    const r = await app.inject({ url: '/api/overview', headers: bearer(VIEWER) });
    expect(r.json().items).toEqual([
      // Jan: reported 2500; owed 2000; collected 10000
      { period: '2025-01', network: 'partnerstack', reportedUsdMinor: 2500, owedUsdMinor: 2000, collectedUsdMinor: 10000, deltaUsdMinor: 500 },
      // Feb awin: reported 800; owed 500; collected 5000
      { period: '2025-02', network: 'awin', reportedUsdMinor: 800, owedUsdMinor: 500, collectedUsdMinor: 5000, deltaUsdMinor: 300 },
      // Feb partnerstack: reported 0; owed 4000 − 1000 = 3000; collected 20000 − 5000 = 15000
      { period: '2025-02', network: 'partnerstack', reportedUsdMinor: 0, owedUsdMinor: 3000, collectedUsdMinor: 15000, deltaUsdMinor: -3000 },
    ]);
    const csv = await app.inject({ url: '/api/overview?format=csv&network=awin', headers: bearer(VIEWER) });
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.body.split('\n')[0]).toBe('period,network,reportedUsdMinor,owedUsdMinor,collectedUsdMinor,deltaUsdMinor');
    expect(csv.body).toContain('2025-02,awin,800,500,5000,300');
  });

  it('filters discrepancies and drills down to billing, network record and explanation', async () => {
    const list = await app.inject({ url: '/api/discrepancies?status=open,ignored&kind=amount_mismatch', headers: bearer(VIEWER) });
    expect(list.json().items.map((d: { id: number }) => d.id).sort()).toEqual([seeded.discrepancies.janMismatch, seeded.discrepancies.awinIgnored].sort());
    const d = (await app.inject({ url: `/api/discrepancies/${seeded.discrepancies.febMissing}`, headers: bearer(VIEWER) })).json();
    expect(d.billing.map((b: { kind: string }) => b.kind)).toEqual(['payment', 'refund']);
    expect(d.network).toBeNull();
    expect(d.computed).toMatchObject({ commissionKey: 'direct:in_feb:alice', amountMinor: 4000 });
    expect(d.explanationLines.join('\n')).toContain('20000 × 0.20000000 = 4000 USD');
    expect((await app.inject({ url: '/api/discrepancies/99999', headers: bearer(VIEWER) })).statusCode).toBe(404);
  });

  it('partner page data: tier history, commissions, payouts', async () => {
    const p = (await app.inject({ url: `/api/partners/${seeded.alice}`, headers: bearer(VIEWER) })).json();
    expect(p.tierHistory).toEqual([{ month: '2025-01', tier: 'tier1' }, { month: '2025-02', tier: 'tier2' }]);
    expect(p.commissions).toHaveLength(3);
    expect(p.payouts[0]).toMatchObject({ payoutDate: '2025-04-15', payableUsdMinor: 5000, status: 'payable' });
    const list = (await app.inject({ url: '/api/partners?q=bob', headers: bearer(VIEWER) })).json();
    expect(list.items).toEqual([expect.objectContaining({ name: 'Bob Baker', owedUsdMinor: 500, reportedUsdMinor: 800, networks: ['awin'] })]);
  });

  it('connections, runs, checkpoints and corrections contain no credentials', async () => {
    const c = await app.inject({ url: '/api/connections', headers: bearer(VIEWER) });
    const body = c.body;
    expect(c.json().connections.find((x: { name: string }) => x.name === 'awin').lastRun.error).toMatch(/HTTP 401/);
    for (const secret of Object.values(env)) expect(body).not.toContain(secret!);
    expect(body).not.toContain('credentials');
    expect((await app.inject({ url: '/api/runs', headers: bearer(VIEWER) })).json().items).toHaveLength(2);
    expect((await app.inject({ url: '/api/checkpoints', headers: bearer(VIEWER) })).json().items).toEqual([expect.objectContaining({ connection: 'ps', stream: 'rewards' })]);
    const failed = (await app.inject({ url: '/api/corrections?status=failed', headers: bearer(VIEWER) })).json();
    expect(failed.items[0]).toMatchObject({ actionType: 'reward_adjustment', error: 'HTTP 422 from network' });
    expect(failed.total).toBe(failed.items.length); // one page holds them all here
    // Paging: the total counts every match, not the page.
    await t.db('corrections').insert([2, 3].map((i) => ({ idempotency_key: `corr-page-${i}`, connection: 'ps', network: 'partnerstack', action_type: 'reward_adjustment', payload: '{}', usd_minor: 100, status: 'planned', attempts: 0 })));
    try {
      const all = Number((await t.db('corrections').count<Array<{ n: string }>>('* as n'))[0]!.n);
      const p1 = (await app.inject({ url: '/api/corrections?limit=2&offset=0', headers: bearer(VIEWER) })).json();
      const p2 = (await app.inject({ url: '/api/corrections?limit=2&offset=2', headers: bearer(VIEWER) })).json();
      expect([p1.items.length, p2.items.length, p1.total, p2.total]).toEqual([2, all - 2, all, all]);
      expect(new Set([...p1.items, ...p2.items].map((c: { id: number }) => c.id)).size).toBe(all);
    } finally {
      await t.db('corrections').where('idempotency_key', 'like', 'corr-page-%').delete();
    }
  });
});

describe('push', () => {
  it('shows the dry-run plan to a viewer; only an operator can trigger a push', async () => {
    const plan = await app.inject({ url: '/api/push/plan', headers: bearer(VIEWER) });
    expect(plan.statusCode).toBe(200);
    expect(Array.isArray(plan.json().plan.actions)).toBe(true);
    expect((await app.inject({ method: 'POST', url: '/api/trigger/push', headers: bearer(VIEWER), payload: {} })).statusCode).toBe(403);
  });
});

describe('triggers', () => {
  it('starts the main job and a sync through the scheduler (202)', async () => {
    const r = await app.inject({ method: 'POST', url: '/api/trigger/main-job', headers: bearer(OPERATOR), payload: {} });
    expect(r.statusCode).toBe(202);
    expect(r.json()).toMatchObject({ job: 'main-job', status: 'started' });
    const s = await app.inject({ method: 'POST', url: '/api/trigger/sync', headers: bearer(OPERATOR), payload: { connection: 'ps' } });
    expect(s.statusCode).toBe(202);
    const unknown = await app.inject({ method: 'POST', url: '/api/trigger/sync', headers: bearer(OPERATOR), payload: { connection: 'nope' } });
    expect(unknown.statusCode).toBe(404);
    await new Promise((res) => setTimeout(res, 200));
    expect(jobRuns.sort()).toEqual(['main', 'sync:ps']);
    const fires = (await app.inject({ url: '/api/jobs', headers: bearer(VIEWER) })).json().fires;
    expect(fires.map((f: { job: string; status: string }) => `${f.job}:${f.status}`).sort()).toEqual(['main-job:succeeded', 'sync:ps:succeeded']);
  });
});

describe('webhooks', () => {
  const event = JSON.stringify({ id: 'evt_1', object: 'event', type: 'balance.available', created: Math.floor(Date.now() / 1000), data: { object: { id: 'bal_1', object: 'balance' } }, livemode: false, api_version: '2024-06-20' });

  it('Stripe: accepts a valid signature (rotated secret too) and stores the event once', async () => {
    const r = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignatureHeader(event, 'whsec_old_secret_xyz') }, payload: event });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ received: true });
    const again = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignatureHeader(event, 'whsec_new_secret_abc') }, payload: event });
    expect(again.statusCode).toBe(200);
    expect(await t.db('webhook_events').where({ connection: 'stripe', event_id: 'evt_1' }).count<Array<{ n: string }>>('* as n')).toEqual([{ n: expect.anything() }]);
    expect(Number((await t.db('webhook_events').where({ event_id: 'evt_1' }).count<Array<{ n: string }>>('* as n'))[0]!.n)).toBe(1);
  });

  it('Stripe: rejects a tampered body, a wrong secret and a stale timestamp with 400', async () => {
    const sig = stripeSignatureHeader(event, 'whsec_new_secret_abc');
    const tampered = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': sig }, payload: event.replace('evt_1', 'evt_2') });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json().error.message).toMatch(/signature/i);
    const wrong = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignatureHeader(event, 'whsec_wrong') }, payload: event });
    expect(wrong.statusCode).toBe(400);
    const stale = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignatureHeader(event, 'whsec_new_secret_abc', Math.floor(Date.now() / 1000) - 3600) }, payload: event });
    expect(stale.statusCode).toBe(400);
    expect(stale.json().error.message).toMatch(/tolerance/i);
    const missing = await app.inject({ method: 'POST', url: '/webhooks/stripe/stripe', headers: { 'content-type': 'application/json' }, payload: event });
    expect(missing.statusCode).toBe(400);
  });

  it('Chargebee: Basic auth required', async () => {
    const body = JSON.stringify({ id: 'ev_cb_1', event_type: 'customer_changed', api_version: 'v2', occurred_at: 1700000000, content: {} });
    const none = await app.inject({ method: 'POST', url: '/webhooks/chargebee/cb', headers: { 'content-type': 'application/json' }, payload: body });
    expect(none.statusCode).toBe(401);
    const wrong = await app.inject({ method: 'POST', url: '/webhooks/chargebee/cb', headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('cbuser:nope').toString('base64')}` }, payload: body });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe('unauthorized');
    const ok = await app.inject({ method: 'POST', url: '/webhooks/chargebee/cb', headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('cbuser:cb-password-123').toString('base64')}` }, payload: body });
    expect([200, 500]).toContain(ok.statusCode); // accepted and stored; processing may need the API
    expect(await t.db('webhook_events').where({ connection: 'cb', event_id: 'ev_cb_1' }).first()).toBeDefined();
  });

  it('PartnerStack: secret path token; stored and deduplicated', async () => {
    const body = { event: 'reward.created', data: { key: 'rew_9', updated_at: 1700000000 } };
    expect((await app.inject({ method: 'POST', url: '/webhooks/partnerstack/ps/wrong-token', payload: body })).statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: `/webhooks/partnerstack/ps/${env.PS_WEBHOOK_TOKEN}`, payload: body });
    expect(ok.statusCode).toBe(200);
    const dup = await app.inject({ method: 'POST', url: `/webhooks/partnerstack/ps/${env.PS_WEBHOOK_TOKEN}`, payload: body });
    expect(dup.json()).toMatchObject({ duplicate: true });
    expect((await app.inject({ method: 'POST', url: `/webhooks/partnerstack/nope/${env.PS_WEBHOOK_TOKEN}`, payload: body })).statusCode).toBe(404);
  });

  it('enforces the body size limit (413)', async () => {
    const big = JSON.stringify({ event: 'x', pad: 'a'.repeat(5000) });
    const r = await app.inject({ method: 'POST', url: `/webhooks/partnerstack/ps/${env.PS_WEBHOOK_TOKEN}`, headers: { 'content-type': 'application/json' }, payload: big });
    expect(r.statusCode).toBe(413);
    expect(r.json().error.code).toBe('payload_too_large');
  });
});

describe('metrics and OpenAPI', () => {
  it('/metrics needs a viewer token and exposes the gauges', async () => {
    expect((await app.inject('/metrics')).statusCode).toBe(401);
    const r = await app.inject({ url: '/metrics', headers: bearer(VIEWER) });
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('commission_sync_discrepancies{kind="amount_mismatch",status="open"} 1');
    expect(r.body).toContain('commission_sync_usd_at_stake_cents{kind="missing_in_network"} 3000');
    expect(r.body).toContain('commission_sync_push_outcomes{network="partnerstack",status="failed"} 1');
    expect(r.body).toContain('commission_sync_last_sync_records{connection="ps",status="succeeded"} 2');
    expect(r.body).toContain('commission_sync_last_sync_duration_seconds{connection="ps",status="succeeded"} 60');
    expect(r.body).toMatch(/commission_sync_job_runs_total|commission_sync_webhooks_total/);
    expect(r.body).toContain('commission_sync_webhooks_total{source="stripe",outcome="rejected"}');
  });

  it('serves an OpenAPI 3.1 document generated from the route schemas', async () => {
    const doc = (await app.inject({ url: '/api/openapi.json', headers: bearer(VIEWER) })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/api/discrepancies/{id}/ignore');
    const ignore = doc.paths['/api/discrepancies/{id}/ignore'].post;
    expect(ignore.requestBody.content['application/json'].schema.required).toEqual(['reason']);
    expect(doc.paths['/api/discrepancies'].get.parameters.map((p: { name: string }) => p.name)).toContain('kind');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/metrics', '/webhooks/partnerstack/{connection}/{token}', '/api/trigger/push']));
  });
});

describe('rate limit on auth failures', () => {
  it('answers 429 after repeated failures from one address, even with a good token', async () => {
    const ip = '10.9.8.7';
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/api/me', remoteAddress: ip, headers: bearer(`bad-${i}`) })).statusCode).toBe(401);
    const blocked = await app.inject({ url: '/api/me', remoteAddress: ip, headers: bearer(VIEWER) });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error.code).toBe('rate_limited');
    // another address is unaffected
    expect((await app.inject({ url: '/api/me', remoteAddress: '10.9.8.8', headers: bearer(VIEWER) })).statusCode).toBe(200);
  });

  it('behind a trusted proxy, limits per forwarded client address', async () => {
    const { app: proxied } = await buildServer({ db: t.db, config: testConfig({ server: { tokens: [{ env: 'VIEWER_TOKEN', role: 'viewer' }], trustProxy: '127.0.0.1' } }), log: silentLogger, env, authFailures: { max: 2, windowMs: 60_000 } });
    try {
      const via = (client: string, tok: string) => proxied.inject({ url: '/api/me', remoteAddress: '127.0.0.1', headers: { ...bearer(tok), 'x-forwarded-for': client } });
      expect((await via('203.0.113.1', 'bad')).statusCode).toBe(401);
      expect((await via('203.0.113.1', 'bad')).statusCode).toBe(401);
      expect((await via('203.0.113.1', VIEWER)).statusCode).toBe(429);
      expect((await via('203.0.113.2', VIEWER)).statusCode).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});
