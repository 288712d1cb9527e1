import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { useTestDb } from '../helpers/db.ts';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { runReconciliation } from '../../src/reconcile/run.ts';
import { decideDiscrepancies, listDiscrepancies } from '../../src/reconcile/discrepancies.ts';
import { executePush, type PushStatusFn } from '../../src/push/executor.ts';
import { planCorrections } from '../../src/push/planner.ts';
import { createHttpClient } from '../../src/http/client.ts';
import type { Connector, PushAction } from '../../src/sync/types.ts';
import { HttpError } from '../../src/http/errors.ts';
import { standardWorld } from '../reconcile/world.ts';

const log = pino({ level: 'silent' });
const now = new Date('2025-03-01T00:00:00Z');

/** A fake network: records created actions by idempotency key; counts every POST it receives. */
function fakeNetwork() {
  const records = new Map<string, { type: string; payload: unknown }>();
  const posts: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const m = /^\/actions\/(.+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        const r = records.get(decodeURIComponent(m[1]!));
        res.writeHead(r ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(r ?? {}));
        return;
      }
      if (req.method === 'POST' && req.url === '/actions') {
        const a = JSON.parse(body) as { key: string; type: string; payload: unknown };
        posts.push(a.key);
        if (records.has(a.key)) return void res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"already exists"}');
        records.set(a.key, { type: a.type, payload: a.payload });
        return void res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ key: a.key }));
      }
      res.writeHead(404).end();
    });
  });
  return { server, records, posts };
}

function stubConnector(baseURL: string, withStatus: boolean): Connector & { pushStatus?: PushStatusFn } {
  const client = createHttpClient({ connection: 'stub', baseURL, retries: 0 });
  const c: Connector & { pushStatus?: PushStatusFn } = {
    type: 'partnerstack',
    streams: () => [],
    async push(_ctx, action: PushAction) {
      try {
        await client.post('/actions', { key: action.idempotencyKey, type: action.type, payload: action.payload });
        return { status: 'confirmed', externalId: action.idempotencyKey };
      } catch (err) {
        // The network dedupes on the key: "already exists" means the earlier send took effect.
        if (err instanceof HttpError && err.status === 409) return { status: 'confirmed', response: { alreadyPresent: true } };
        throw err;
      }
    },
  };
  if (withStatus) {
    c.pushStatus = async (_ctx, action) => {
      try {
        await client.get(`/actions/${encodeURIComponent(action.idempotencyKey)}`);
        return { status: 'confirmed', response: { foundOnNetwork: true } };
      } catch {
        return null;
      }
    };
  }
  return c;
}

describe('push', () => {
  const t = useTestDb();
  let net: ReturnType<typeof fakeNetwork>;
  let config: Config;
  beforeEach(async () => {
    net = fakeNetwork();
    await new Promise<void>((r) => net.server.listen(0, '127.0.0.1', r));
    config = configSchema.parse({ connections: [{ name: 'ps', type: 'partnerstack' }, { name: 'awin', type: 'awin' }] });
    const { customers } = await standardWorld(t.db);
    for (const [i, id] of customers.entries()) await t.db('customer_identities').insert({ customer_id: id, system: 'partnerstack', connection: 'ps', external_id: `psc-${i + 1}` });
    await runReconciliation({ db: t.db, config }, { now });
    const ids = (await listDiscrepancies(t.db)).map((d) => d.id);
    await decideDiscrepancies(t.db, ids, 'approve');
  });
  afterEach(async () => {
    await new Promise((r) => net.server.close(r));
  });
  const base = () => `http://127.0.0.1:${(net.server.address() as AddressInfo).port}`;

  it('plans typed actions with their justification; dry run sends and records nothing', async () => {
    const plan = await planCorrections(t.db, config);
    const types = plan.actions.map((a) => `${a.type}:${a.discrepancyKind}`).sort();
    expect(types).toEqual([
      'create_reward:amount_mismatch',
      'create_reward:duplicate_in_network',
      'create_reward:status_mismatch',
      'create_reward:unexpected_in_network',
      'create_transaction:missing_in_network',
      'delete_transaction:status_mismatch',
      'delete_transaction:unexpected_in_network',
      'delete_transaction:unexpected_in_network',
      'update_customer:unexpected_in_network',
    ]);
    expect(plan.skipped.map((s) => s.kind).sort()).toEqual(['attribution_window_exceeded', 'partner_mismatch']);
    const amend = plan.actions.find((a) => a.discrepancyKind === 'amount_mismatch')!;
    // owed 3000 − reported 6000 = −3000, on the PartnerStack customer of c4
    expect(amend.payload).toEqual({ amount: -3000, currency: 'USD', target: { type: 'customer', key: 'psc-4' }, reason: 'Commission correction' });
    const refund = plan.actions.find((a) => a.type === 'delete_transaction' && a.discrepancyKind === 'status_mismatch')!;
    expect(refund.payload).toEqual({ key: 'in_5' });
    expect(refund.justification.subscription_state).toBe('canceled 2025-01-20 (sub_5)');
    expect(refund.justification.payment).toBe('ch_5');
    const missing = plan.actions.find((a) => a.type === 'create_transaction')!;
    expect(missing.payload).toMatchObject({ key: 'in_2', customer_external_key: 'psc-2', amount: 20000, currency: 'USD' });

    const dry = await executePush({ db: t.db, config, log, loadConnector: async () => stubConnector(base(), true) });
    expect(dry.mode).toBe('dry_run');
    expect(dry.plan.actions).toHaveLength(9);
    expect(net.posts).toHaveLength(0);
    expect(await t.db('corrections').count<{ n: number }>('* as n').first()).toMatchObject({ n: 0 });
  });

  it('apply sends each action once; a re-run sends nothing more', async () => {
    const deps = { db: t.db, config, log, loadConnector: async () => stubConnector(base(), false) };
    const s = await executePush(deps, { apply: true, now });
    expect(s.counts.confirmed).toBe(9);
    // 3000 + 1200 + 4000 + 2000 + 1000 + 500 + 2000 (+0 customer update) + 40 = 13740
    expect(s.usdMovedMinor).toBe(13740);
    expect(net.posts).toHaveLength(9);
    const again = await executePush(deps, { apply: true, now });
    expect(again.plan.actions).toHaveLength(0);
    expect(again.plan.alreadyDone).toBe(9);
    expect(net.posts).toHaveLength(9);
    const statuses = await t.db('corrections').select('status', 'attempts');
    expect(statuses.every((r) => r.status === 'confirmed' && Number(r.attempts) === 1)).toBe(true);
  });

  for (const withStatus of [true, false]) {
    it(`a crash between send and confirm never sends twice (${withStatus ? 'connector status check' : 'idempotent re-drive'})`, async () => {
      let crashes = 1;
      const crashing = {
        db: t.db,
        config,
        log,
        loadConnector: async () => stubConnector(base(), withStatus),
        afterSend: () => {
          if (crashes-- > 0) throw new Error('killed after send, before confirm');
        },
      };
      await expect(executePush(crashing, { apply: true, now })).rejects.toThrow(/killed/);
      const stuck = await t.db('corrections').where({ status: 'sending' });
      expect(stuck).toHaveLength(1);
      expect(net.records.size).toBe(1); // the network did get it

      const s = await executePush({ ...crashing, afterSend: undefined }, { apply: true, now });
      expect(s.counts.recovered).toBe(1);
      expect(s.outcomes.filter((o) => o.recovered)).toEqual([expect.objectContaining({ idempotencyKey: stuck[0].idempotency_key, status: 'confirmed' })]);
      expect(net.records.size).toBe(9); // one effect per action
      const perKey = new Map<string, number>();
      for (const k of net.posts) perKey.set(k, (perKey.get(k) ?? 0) + 1);
      // With a status check the stuck action is not even re-posted; without one it is re-posted
      // under the same key and the network's dedupe answers "already exists".
      expect(perKey.get(stuck[0].idempotency_key)).toBe(withStatus ? 1 : 2);
      expect([...perKey.entries()].filter(([k]) => k !== stuck[0].idempotency_key).every(([, n]) => n === 1)).toBe(true);
      expect((await t.db('corrections').whereNot({ status: 'confirmed' })).length).toBe(0);
    });
  }

  it('caps stop the run with a clear message and leave the rest planned', async () => {
    const deps = { db: t.db, config, log, loadConnector: async () => stubConnector(base(), true) };
    const s = await executePush(deps, { apply: true, now, maxActions: 2 });
    expect(s.stoppedBy).toBe('max_actions');
    expect(s.message).toMatch(/per-run cap of 2 actions \(push\.maxActionsPerRun\).*7 action\(s\) left planned/);
    expect(net.posts).toHaveLength(2);
    expect(s.counts.left).toBe(7);

    const u = await executePush(deps, { apply: true, now, maxUsdMinor: 2500 });
    expect(u.stoppedBy).toBe('max_usd');
    expect(u.message).toMatch(/over the cap of \$25\.00 \(push\.maxUsdMinorPerRun\)/);
    expect(u.usdMovedMinor).toBeLessThanOrEqual(2500);
    // the remaining ones go out on a later run without caps in the way
    const rest = await executePush(deps, { apply: true, now });
    expect(rest.stoppedBy).toBeNull();
    expect(net.records.size).toBe(9);
    expect(new Set(net.posts).size).toBe(net.posts.length);
  });
});

describe('definitive rejections', () => {
  it('a 4xx answer or a per-item rejection is final; 5xx, timeouts and 429 stay retryable', async () => {
    const { isDefinitiveRejection } = await import('../../src/push/executor.ts');
    expect(isDefinitiveRejection({ status: 'failed', response: { status: 404 } })).toBe(true);
    expect(isDefinitiveRejection({ status: 'failed', response: { status: 400 } })).toBe(true);
    expect(isDefinitiveRejection({ status: 'failed', response: { status: 429 } })).toBe(false);
    expect(isDefinitiveRejection({ status: 'failed', response: { status: 503 } })).toBe(false);
    expect(isDefinitiveRejection({ status: 'failed', error: 'socket hang up' })).toBe(false);
    expect(isDefinitiveRejection({ status: 'failed', retryable: false })).toBe(true);
    expect(isDefinitiveRejection({ status: 'failed', retryable: true, response: { status: 400 } })).toBe(false);
  });
});
