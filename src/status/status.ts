// What `status`, /api/connections and the dashboard show about each connection.
import type { Knex } from 'knex';
import type { Config } from '../config/schema.ts';

export interface ConnectionStatus {
  name: string;
  type: string;
  enabled: boolean;
  schedule: string | undefined;
  lastRun: { id: number; status: string; startedAt: Date; finishedAt: Date | null; error: string | null; stats: unknown } | null;
  lastSuccessAt: Date | null;
  quarantined: number;
}

export async function connectionStatus(db: Knex, config: Config): Promise<{ connections: ConnectionStatus[]; checkpoints: Array<{ connection: string; stream: string; state: unknown; updatedAt: Date }> }> {
  const names = new Set(config.connections.map((c) => c.name));
  const known = await db('connections').select<{ name: string; type: string }[]>('name', 'type');
  for (const k of known) names.add(k.name);
  const out: ConnectionStatus[] = [];
  for (const name of [...names].sort()) {
    const cfg = config.connections.find((c) => c.name === name);
    const last = await db('sync_runs').where({ connection: name }).orderBy('id', 'desc').first();
    const lastOk = await db('sync_runs').where({ connection: name, status: 'succeeded' }).max<{ at: Date | null }>('finished_at as at').first();
    const q = await db('quarantine').where({ connection: name }).whereNull('resolved_at').count<{ n: string | number }>('* as n').first();
    out.push({
      name,
      type: cfg?.type ?? known.find((k) => k.name === name)?.type ?? '?',
      enabled: cfg?.enabled ?? false,
      schedule: cfg?.schedule,
      lastRun: last ? { id: last.id, status: last.status, startedAt: last.started_at, finishedAt: last.finished_at, error: last.error, stats: last.stats } : null,
      lastSuccessAt: lastOk?.at ?? null,
      quarantined: Number(q?.n ?? 0),
    });
  }
  const checkpoints = (await db('checkpoints').orderBy(['connection', 'stream']).select('connection', 'stream', 'state', 'updated_at')).map((c) => ({ connection: c.connection, stream: c.stream, state: c.state, updatedAt: c.updated_at }));
  return { connections: out, checkpoints };
}
