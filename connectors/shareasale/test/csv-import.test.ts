import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDb, type TestDb } from '../../../test/helpers/db.ts';
import { importShareASaleCsv } from '../csv-import.ts';
import { importConnection } from '../../../src/cli/commands/import.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { sasConfig, silentLog } from './helpers.ts';

let t: TestDb;
let dir: string;
beforeEach(async () => {
  t = await createTestDb();
  dir = mkdtempSync(path.join(tmpdir(), 'sas-csv-'));
});
afterEach(async () => {
  await t.destroy();
  rmSync(dir, { recursive: true, force: true });
});

// A UI export: two title lines, then the header; columns in a different order and spelling than the API.
const EXPORT = [
  'ShareASale Transaction Detail Report',
  '"Date Range: 01/01/2023 - 12/31/2023",,,,,,',
  'Transaction ID,Affiliate ID,Order Number,Transaction Date,Sale Amount,Commission,Voided,Comment',
  '5001,77,inv_1,01/15/2023 03:04:05 PM,"$1,200.00",$480.00,,"Sale - inv_1, annual"',
  '5002,78,inv_2,02/01/2023 10:00:00 AM,99.00,39.60,02/10/2023,refund',
  '5003,77,inv_3,not a date,99.00,39.60,,',
  '5004,77,inv_4,03/01/2023 10:00:00 AM,99.00',
  '5005,,inv_5,03/02/2023 10:00:00 AM,99.00,39.60,,',
  '',
  '5006,79,inv_6,03/03/2023 11:59:00 PM,49.00,19.60,,"multi',
  'line comment"',
  '5007,77,inv_7,03/04/2023 09:00:00 AM,10.00,abc,,',
].join('\r\n');

describe('ShareASale CSV history import', () => {
  it('detects the header, maps columns by name, quarantines bad rows with line numbers, and is idempotent', async () => {
    const file = path.join(dir, 'export.csv');
    writeFileSync(file, EXPORT);
    const { config, connection } = sasConfig('http://127.0.0.1:9');
    const headers: number[] = [];
    const r1 = await importShareASaleCsv({ db: t.db, config, connection, log: silentLog, file, batchSize: 2, onHeader: (h) => void headers.push(h.line) });
    expect(headers).toEqual([3]);
    expect(r1.run.status).toBe('succeeded');
    expect(r1.rows).toBe(3);
    expect(r1.quarantined).toBe(4);
    const rows = await t.db('network_commissions').orderBy('external_id').select('external_id', 'amount_minor', 'sale_amount_minor', 'status', 'order_ref', 'occurred_at', 'description');
    expect(rows.map((r: { external_id: string }) => r.external_id)).toEqual(['5001', '5002', '5006']);
    // $480.00 → 48000; $1,200.00 → 120000; 3:04:05 PM Chicago (CST, UTC−6) → 21:04:05Z.
    expect(rows[0]).toMatchObject({ amount_minor: 48000, sale_amount_minor: 120000, status: 'pending', order_ref: 'inv_1', description: 'Sale - inv_1, annual' });
    expect(new Date(rows[0].occurred_at).toISOString()).toBe('2023-01-15T21:04:05.000Z');
    expect(rows[1]).toMatchObject({ status: 'declined' });
    expect(rows[2].description).toBe('multi\r\nline comment'); // the export's own CRLF inside a quoted field
    const q = await t.db('quarantine').where({ stream: 'csv_history' }).orderBy('id').select('location', 'error');
    expect(q.map((x: { location: string }) => x.location)).toEqual(['export.csv:line 6', 'export.csv:line 7', 'export.csv:line 8', 'export.csv:line 13']);
    expect(q[0].error).toMatch(/not a date/);
    expect(q[1].error).toMatch(/5 fields, header has 8/);
    expect(q[2].error).toMatch(/missing affiliate id/);
    expect(q[3].error).toMatch(/commission "abc"/);

    const r2 = await importShareASaleCsv({ db: t.db, config, connection, log: silentLog, file });
    expect(r2.run.status).toBe('succeeded');
    expect(await t.db('network_commissions').count<{ n: string }[]>({ n: '*' })).toEqual([{ n: 3 }]);
    expect(Number((await t.db('quarantine').count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(4);
    expect((await t.db('quarantine').where({ location: 'export.csv:line 6' }).first()).occurrences).toBe(2);
    expect(Number((await t.db('partners').count<{ n: string }[]>({ n: '*' }))[0]!.n)).toBe(3);
  });

  it('reads pipe exports and refuses a file without a header', async () => {
    const file = path.join(dir, 'pipe.txt');
    writeFileSync(file, 'TRANSID|USERID|TRANSDATE|TRANSAMOUNT|COMMISSION\n9|1|12/31/2022|5.00|2.00\n');
    const { config, connection } = sasConfig('http://127.0.0.1:9');
    const r = await importShareASaleCsv({ db: t.db, config, connection, log: silentLog, file });
    expect(r.rows).toBe(1);
    const bad = path.join(dir, 'bad.csv');
    writeFileSync(bad, 'a,b,c\n1,2,3\n');
    await expect(importShareASaleCsv({ db: t.db, config, connection, log: silentLog, file: bad })).rejects.toThrow(/no header row/);
  });

  it('picks the import connection', () => {
    const config = configSchema.parse({ connections: [{ name: 'sas', type: 'shareasale' }, { name: 'aw', type: 'awin' }] });
    expect(importConnection(config, undefined).name).toBe('sas');
    expect(() => importConnection(config, 'aw')).toThrow(/not shareasale/);
    expect(importConnection(configSchema.parse({}), undefined).name).toBe('shareasale-csv');
  });
});
