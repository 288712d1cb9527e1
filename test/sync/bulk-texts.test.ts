import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { bulkInsertTexts } from '../../src/db/bulk.ts';

describe('bulkInsertTexts (pre-serialized rows + per-statement constants)', () => {
  const t = useTestDb();

  it('writes the row texts with the constants, in chunks, and honours ON CONFLICT', async () => {
    const at = '2025-03-04T05:06:07.890Z';
    const rows = ['a', 'b', 'c', 'd', 'e'].map((id, i) => JSON.stringify({ external_id: id, hash: `h${i}` }).slice(0, -1) + `,"payload":{"id":"${id}","n":[${i},2.5,null],"s":"\\u0001x"}}`);
    const spec = {
      columns: [['external_id', 'text'], ['hash', 'text'], ['payload', 'json']] as Array<[string, string]>,
      constants: [['connection', 'text', 'c'], ['stream', 'text', 's'], ['run_id', 'bigint', null], ['fetched_at', 'timestamptz', at]] as Array<[string, string, string | number | null]>,
      onConflict: '(connection, stream, external_id, hash) DO NOTHING',
      chunkSize: 2,
    };
    await bulkInsertTexts(t.db, 'raw_records', rows, spec);
    await bulkInsertTexts(t.db, 'raw_records', rows, spec); // all conflict: nothing added
    const got = await t.db('raw_records').orderBy('external_id').select('connection', 'stream', 'external_id', 'hash', 'payload', 'run_id', 'fetched_at');
    expect(got).toHaveLength(5);
    expect(got[2]).toMatchObject({ connection: 'c', stream: 's', external_id: 'c', hash: 'h2', payload: { id: 'c', n: [2, 2.5, null], s: '\u0001x' }, run_id: null });
    expect(new Date(got[4].fetched_at).toISOString()).toBe(at);
  });
});
