// Two push runs at once (e.g. the scheduled main job and `push --apply`, or two replicas) must not
// send any action twice; a run arriving while another is mid-send must not "recover" its in-flight row.
import { beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { useTestDb, usingPostgres } from '../helpers/db.ts';
import { openDb } from '../../src/db/connection.ts';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { runReconciliation } from '../../src/reconcile/run.ts';
import { decideDiscrepancies, listDiscrepancies } from '../../src/reconcile/discrepancies.ts';
import { executePush } from '../../src/push/executor.ts';
import type { Connector, PushAction } from '../../src/sync/types.ts';
import { standardWorld } from '../reconcile/world.ts';

const log = pino({ level: 'silent' });
const now = new Date('2025-03-01T00:00:00Z');

/** A network that does NOT dedupe (a reward adjustment is a delta): every call is one effect. */
function countingConnector(delayMs: number) {
  const sent: string[] = [];
  const connector: Connector = {
    type: 'partnerstack',
    streams: () => [],
    async push(_ctx, action: PushAction) {
      sent.push(action.idempotencyKey);
      await new Promise((r) => setTimeout(r, delayMs));
      return { status: 'confirmed' };
    },
  };
  return { sent, connector };
}

describe('concurrent push runs', () => {
  const t = useTestDb();
  let config: Config;
  beforeEach(async () => {
    config = configSchema.parse({ connections: [{ name: 'ps', type: 'partnerstack' }, { name: 'awin', type: 'awin' }] });
    const { customers } = await standardWorld(t.db);
    for (const [i, id] of customers.entries()) await t.db('customer_identities').insert({ customer_id: id, system: 'partnerstack', connection: 'ps', external_id: `psc-${i + 1}` });
    await runReconciliation({ db: t.db, config }, { now });
    await decideDiscrepancies(t.db, (await listDiscrepancies(t.db)).map((d) => d.id), 'approve');
  });

  it('each action is sent once in total', async () => {
    const net = countingConnector(20);
    const deps = { db: t.db, config, log, loadConnector: async () => net.connector };
    const [a, b] = await Promise.all([executePush(deps, { apply: true, now }), executePush(deps, { apply: true, now })]);
    const perKey = new Map<string, number>();
    for (const k of net.sent) perKey.set(k, (perKey.get(k) ?? 0) + 1);
    expect([...perKey.values()].every((n) => n === 1)).toBe(true);
    expect(perKey.size).toBe(9);
    expect(a.counts.confirmed + b.counts.confirmed).toBe(9);
    expect(a.counts.recovered + b.counts.recovered).toBe(0);
    const rows = await t.db('corrections').select('status', 'attempts');
    expect(rows.every((r) => r.status === 'confirmed' && Number(r.attempts) === 1)).toBe(true);
  });

  it.runIf(usingPostgres())('two processes (separate pools on one PostgreSQL) send each action once', async () => {
    const other = await openDb({ url: t.url!, poolMax: 3 });
    try {
      const net = countingConnector(20);
      const a = executePush({ db: t.db, config, log, loadConnector: async () => net.connector }, { apply: true, now });
      const b = executePush({ db: other, config, log, loadConnector: async () => net.connector }, { apply: true, now });
      const [sa, sb] = await Promise.all([a, b]);
      expect(net.sent.length).toBe(9);
      expect(new Set(net.sent).size).toBe(9);
      expect(sa.counts.recovered + sb.counts.recovered).toBe(0);
    } finally {
      await other.destroy();
    }
  });
});
