import { describe, expect, it } from 'vitest';
import { useTestDb, usingPostgres } from '../helpers/db.ts';
import { loadChangeCursor, readChangeWatermark, saveChangeCursor } from '../../src/db/changes.ts';
import { openDb } from '../../src/db/connection.ts';

describe('change tracking (migration 004)', () => {
  const t = useTestDb();

  it('stamps inserts and updates with increasing change_seq and tombstones hard deletes', async () => {
    const db = t.db;
    const w0 = await readChangeWatermark(db);
    const [c] = await db('customers').insert({ customer_key: 'k1', email: 'a@example.com', email_normalized: 'a@example.com' }).returning<{ id: number; change_seq: string }[]>(['id', 'change_seq']);
    expect(Number(c!.change_seq)).toBeGreaterThan(w0);
    const w1 = await readChangeWatermark(db);
    expect(w1).toBe(Number(c!.change_seq));
    const [u] = await db('customers').where({ id: c!.id }).update({ email: 'b@example.com' }).returning<{ change_seq: string }[]>('change_seq');
    expect(Number(u!.change_seq)).toBeGreaterThan(w1);
    // Re-writing the same values (bookkeeping columns aside) is not a change.
    const [same] = await db('customers').where({ id: c!.id }).update({ email: 'b@example.com', updated_at: new Date(Date.now() + 5000) }).returning<{ change_seq: string }[]>('change_seq');
    expect(same!.change_seq).toBe(u!.change_seq);
    await db('customers').where({ id: c!.id }).delete();
    const tomb = await db('change_tombstones').where({ table_name: 'customers' }).first();
    expect(Number(tomb.row_id)).toBe(c!.id);
    expect(tomb.old.email).toBe('b@example.com');
    expect(Number(tomb.change_seq)).toBeGreaterThan(Number(u!.change_seq));
    expect(await readChangeWatermark(db)).toBe(Number(tomb.change_seq));
  });

  it('keeps a cursor per consumer', async () => {
    expect(await loadChangeCursor(t.db, 'compute')).toBeUndefined();
    await saveChangeCursor(t.db, 'compute', 42, { asOf: '2025-01-01' });
    await saveChangeCursor(t.db, 'compute', 43, { asOf: '2025-01-02' });
    expect(await loadChangeCursor(t.db, 'compute')).toEqual({ changeSeq: 43, state: { asOf: '2025-01-02' } });
  });

  it.runIf(usingPostgres())('the watermark never passes a number an open transaction holds', async () => {
    const other = await openDb({ url: t.url!, poolMax: 2 });
    try {
      const trx = await other.transaction();
      const [c] = await trx('customers').insert({ customer_key: 'k2', email: 'x@example.com', email_normalized: 'x@example.com' }).returning<{ change_seq: string }[]>('change_seq');
      // The writer holds its number uncommitted: reading the watermark must wait for it.
      let read: number | undefined;
      const p = readChangeWatermark(t.db).then((w) => (read = w));
      await new Promise((r) => setTimeout(r, 150));
      expect(read).toBeUndefined();
      await trx.commit();
      await p;
      expect(read).toBeGreaterThanOrEqual(Number(c!.change_seq));
    } finally {
      await other.destroy();
    }
  });
});
