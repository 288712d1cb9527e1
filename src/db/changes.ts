// Reading the change log that migration 004 keeps (change_seq stamps, tombstones, consumer cursors).
// See migrations/004_change_tracking.ts for why the watermark is read under an exclusive advisory
// lock: it is the highest change_seq that is certainly committed, so a consumer that processes
// (cursor, watermark] and then stores watermark as its cursor never skips a row.
import type { Knex } from 'knex';
import { CHANGE_LOCK_KEY } from '../../migrations/004_change_tracking.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The highest committed change_seq. Try-lock in a loop rather than a blocking lock: a queued
 * exclusive request would make new writers queue behind it, and a writer waiting on another
 * writer's row lock could then close a deadlock cycle. After `maxWaitMs` it blocks (still correct).
 */
export async function readChangeWatermark(db: Knex, maxWaitMs = 60_000): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const got = await db.transaction(async (trx) => {
      const blocking = Date.now() >= deadline;
      const r = await trx.raw(
        blocking ? 'SELECT pg_advisory_xact_lock(?, hashtext(current_schema())) AS ok' : 'SELECT pg_try_advisory_xact_lock(?, hashtext(current_schema())) AS ok',
        [CHANGE_LOCK_KEY],
      );
      const ok = blocking || (r.rows[0] as { ok: boolean }).ok;
      if (!ok) return undefined;
      const s = await trx.raw('SELECT last_value, is_called FROM change_seq');
      const row = s.rows[0] as { last_value: string | number; is_called: boolean };
      return row.is_called ? Number(row.last_value) : 0;
    });
    if (got !== undefined) return got;
    await sleep(20);
  }
}

export interface ChangeCursor {
  changeSeq: number;
  state: Record<string, unknown>;
}

export async function loadChangeCursor(db: Knex, consumer: string): Promise<ChangeCursor | undefined> {
  const row = await db('change_cursors').where({ consumer }).first<{ change_seq: string | number; state: Record<string, unknown> } | undefined>('change_seq', 'state');
  return row ? { changeSeq: Number(row.change_seq), state: row.state ?? {} } : undefined;
}

export async function saveChangeCursor(db: Knex, consumer: string, changeSeq: number, state: Record<string, unknown> = {}): Promise<void> {
  await db('change_cursors')
    .insert({ consumer, change_seq: changeSeq, state: JSON.stringify(state), updated_at: new Date() })
    .onConflict('consumer')
    .merge(['change_seq', 'state', 'updated_at']);
}

/** Forgets a consumer's cursor, so its next run starts from scratch (full recompute). */
export async function resetChangeCursor(db: Knex, consumer: string): Promise<void> {
  await db('change_cursors').where({ consumer }).delete();
}
