import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { bulkInsert, bulkInsertTexts, JsonText, PGLITE_STATEMENT_CHARS, statementChars, upsertClause } from '../../src/db/bulk.ts';
import { isPglite } from '../../src/db/connection.ts';

describe('bulkInsert (json_populate_recordset)', () => {
  const t = useTestDb();

  it('round-trips text, dates, nulls, jsonb objects and pre-serialized JSON, and upserts on the natural key', async () => {
    const at = new Date(Date.UTC(2025, 2, 4, 5, 6, 7, 890));
    // A real value that looks like the serializer's marker must survive untouched.
    const tricky = '\u0001abc:0 "quoted" \\ back';
    const rows = [
      { connection: 'c', stream: 's', external_id: 'a', hash: 'h1', payload: new JsonText('{"id":"a","n":[1,2.5,null],"s":"\\u0001x:0"}'), run_id: 7, fetched_at: at },
      { connection: 'c', stream: 's', external_id: tricky, hash: 'h2', payload: new JsonText('"just a string"'), run_id: null, fetched_at: at },
    ];
    await bulkInsert(t.db, 'raw_records', rows, { onConflict: '(connection, stream, external_id, hash) DO NOTHING' });
    await bulkInsert(t.db, 'raw_records', rows, { onConflict: '(connection, stream, external_id, hash) DO NOTHING' });
    const got = await t.db('raw_records').orderBy('hash').select('external_id', 'payload', 'run_id', 'fetched_at');
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ external_id: 'a', payload: { id: 'a', n: [1, 2.5, null], s: '\u0001x:0' }, run_id: 7 });
    expect(new Date(got[0].fetched_at).getTime()).toBe(at.getTime());
    expect(got[1]).toMatchObject({ external_id: tricky, payload: 'just a string', run_id: null });

    const conn = { name: 'c', type: 'stripe' };
    await t.db('connections').insert(conn);
    const ev = (amount: number, meta: Record<string, unknown>) => ({
      connection: 'c', billing_system: 'stripe', kind: 'payment', external_id: 'in_1', document_id: 'in_1', occurred_at: at,
      amount_minor: amount, currency: 'EUR', exchange_rate: '1.0834500000', metadata: meta, updated_at: at,
    });
    const first = await bulkInsert<{ id: number; external_id: string }>(t.db, 'billing_events', [ev(1000, { a: 1 })], {
      onConflict: upsertClause(['connection', 'kind', 'external_id'], ['amount_minor', 'metadata']), returning: ['id', 'external_id'],
    });
    const second = await bulkInsert<{ id: number; external_id: string }>(t.db, 'billing_events', [ev(1250, { b: [true] })], {
      onConflict: upsertClause(['connection', 'kind', 'external_id'], ['amount_minor', 'metadata']), returning: ['id', 'external_id'],
    });
    expect(Number(second[0]!.id)).toBe(Number(first[0]!.id));
    const row = await t.db('billing_events').first('amount_minor', 'metadata', 'exchange_rate', 'currency');
    expect(Number(row.amount_minor)).toBe(1250);
    expect(row.metadata).toEqual({ b: [true] });
    expect(String(row.exchange_rate)).toMatch(/^1\.08345/);
  });

  it('splits large inputs into several statements and returns every row', async () => {
    const rows = Array.from({ length: 2501 }, (_, i) => ({ connection: 'c', stream: 's', external_id: `k${i}`, record_at: null, last_seen_at: new Date(0), deleted_at: null }));
    const out = await bulkInsert<{ external_id: string }>(t.db, 'stream_keys', rows, { chunkSize: 1000, returning: ['external_id'] });
    expect(out).toHaveLength(2501);
    expect(new Set(out.map((r) => r.external_id)).size).toBe(2501);
  });

  it('bulkInsertTexts keeps a PGlite statement under its char limit, and writes every row on either database', async () => {
    // Four rows of ~40 % of PGlite's limit each: at most two per statement there, one statement on PostgreSQL.
    const big = 'x'.repeat(Math.floor(PGLITE_STATEMENT_CHARS * 0.4));
    const texts = [0, 1, 2, 3].map((i) => JSON.stringify({ external_id: `k${i}`, hash: `h${i}`, payload: { i, big } }));
    const statements: number[] = [];
    const onQuery = (q: { sql: string; bindings?: unknown[] }): void => {
      if (q.sql.startsWith('INSERT INTO "raw_records"')) statements.push(String(q.bindings?.at(-1)).length);
    };
    t.db.on('query', onQuery);
    try {
      await bulkInsertTexts(t.db, 'raw_records', texts, {
        columns: [['external_id', 'text'], ['hash', 'text'], ['payload', 'jsonb']],
        constants: [['connection', 'text', 'c'], ['stream', 'text', 's']],
      });
    } finally {
      t.db.off('query', onQuery);
    }
    const got = await t.db('raw_records').orderBy('external_id').select('external_id', 'payload');
    expect(got.map((r) => r.external_id)).toEqual(['k0', 'k1', 'k2', 'k3']);
    expect(got.every((r, i) => r.payload.i === i && r.payload.big === big)).toBe(true);
    if (isPglite(t.db)) {
      expect(statementChars(t.db)).toBe(PGLITE_STATEMENT_CHARS);
      expect(statements).toHaveLength(2);
      for (const n of statements) expect(n).toBeLessThanOrEqual(PGLITE_STATEMENT_CHARS);
    } else {
      expect(statementChars(t.db)).toBe(Infinity);
      expect(statements).toHaveLength(1);
    }
  });
});
