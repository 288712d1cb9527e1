// A discrepancy names its computed commission instead of copying the commission's explanation
// (migration 015); readers still see the detail the discrepancy was written with: the commission's
// explanation at that time, also after the commission changed or went away.
import { describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation } from '../../src/reconcile/run.ts';
import { decideDiscrepancies, listDiscrepancies, readDiscrepancyCounts, type DiscrepancyRecord } from '../../src/reconcile/discrepancies.ts';
import { discrepancyDetail } from '../../src/service/queries.ts';
import * as m015 from '../../migrations/015_discrepancy_explanations.ts';
import { standardWorld } from './world.ts';

const config = configSchema.parse({});
const now = new Date('2025-03-01T00:00:00Z');

const byKey = async (db: Knex, key: string): Promise<DiscrepancyRecord> => {
  const all = await listDiscrepancies(db);
  const d = all.find((x) => (x.detail.computed as { key?: string } | undefined)?.key === key);
  if (!d) throw new Error(`no discrepancy shows ${key}`);
  return d;
};
const shown = (d: DiscrepancyRecord): unknown => (d.detail.computed as { explanation?: unknown }).explanation;
const explain = (db: Knex, key: string, note: string) => db('computed_commissions').where({ commission_key: key }).update({ explanation: JSON.stringify({ note }) });

describe('discrepancy explanations', () => {
  const t = useTestDb();

  it('are stored once and shown as written, after the commission changes or is deleted', async () => {
    await standardWorld(t.db);
    await runReconciliation({ db: t.db, config }, { now });

    // Stored without the explanation, naming the commission; shown with it (CLI list and the API).
    const raw = await t.db('discrepancies').where('computed_commission_key', 'cc-4-d').first('id', 'detail', 'explained_by', 'explanation');
    expect(raw.explained_by).toBe('cc-4-d');
    expect(raw.explanation).toBeNull();
    expect((raw.detail as { computed: Record<string, unknown> }).computed).not.toHaveProperty('explanation');
    const mismatch = await byKey(t.db, 'cc-4-d');
    expect(shown(mismatch)).toEqual({ note: 'test cc-4-d' });
    expect((await discrepancyDetail(t.db, mismatch.id))!.discrepancy.detail).toEqual(mismatch.detail);
    const unmatched = (await listDiscrepancies(t.db)).find((d) => d.kind === 'unexpected_in_network' && d.computedCommissionKey === null)!;
    expect(unmatched.detail).not.toHaveProperty('computed');

    // Recomputed but not reconciled yet: still the explanation it was written with.
    await explain(t.db, 'cc-4-d', 'second version');
    expect(shown(await byKey(t.db, 'cc-4-d'))).toEqual({ note: 'test cc-4-d' });
    await explain(t.db, 'cc-4-d', 'third version');
    expect(shown(await byKey(t.db, 'cc-4-d'))).toEqual({ note: 'test cc-4-d' });
    // A status flip does not touch the explanation.
    await t.db('computed_commissions').where({ commission_key: 'cc-2-d' }).update({ status: 'due' });
    expect((await t.db('discrepancies').where('computed_commission_key', 'cc-2-d').first('explained_by')).explained_by).toBe('cc-2-d');

    // Found again: rewritten, it names the commission again and shows its current explanation.
    await runReconciliation({ db: t.db, config }, { now });
    expect(shown(await byKey(t.db, 'cc-4-d'))).toEqual({ note: 'third version' });
    expect(await t.db('discrepancies').where('computed_commission_key', 'cc-4-d').first('explained_by', 'explanation')).toEqual({ explained_by: 'cc-4-d', explanation: null });

    // Deleted: the discrepancy is resolved and keeps showing what it showed (missing cc-2-d).
    const missing = await byKey(t.db, 'cc-2-d');
    await t.db('computed_commissions').where({ commission_key: 'cc-2-d' }).delete();
    await runReconciliation({ db: t.db, config }, { now });
    const gone = (await listDiscrepancies(t.db, { ids: [missing.id] }))[0]!;
    expect(gone.status).toBe('resolved');
    expect(gone.detail).toEqual(missing.detail);

    // Ignored, then its problem goes away and the commission changes: kept ignored with its old detail.
    const pm = await byKey(t.db, 'cc-7-d');
    await decideDiscrepancies(t.db, [pm.id], 'ignore', { reason: 'agency' });
    await t.db('network_commissions').where({ external_id: 'rw-7' }).update({ status: 'deleted' });
    await runReconciliation({ db: t.db, config }, { now });
    await explain(t.db, 'cc-7-d', 'later version');
    await runReconciliation({ db: t.db, config }, { now });
    const stale = (await listDiscrepancies(t.db, { ids: [pm.id] }))[0]!;
    expect(stale.status).toBe('ignored');
    expect(stale.detail).toEqual(pm.detail);
  });

  it('migration 015 converts stored copies both ways, showing the same details', async () => {
    await standardWorld(t.db);
    await runReconciliation({ db: t.db, config }, { now });
    await t.db('computed_commissions').where({ commission_key: 'cc-2-d' }).delete(); // its discrepancy keeps a copy
    const before = await listDiscrepancies(t.db, { status: ['open', 'approved', 'resolved', 'ignored'] });
    expect(before.length).toBeGreaterThan(5);

    // Back to copies in the detail (as before 015) …
    await m015.down(t.db);
    const copies = await t.db('discrepancies').orderBy('id').select('id', 'detail');
    expect(copies.map((r) => ({ id: Number(r.id), detail: r.detail }))).toEqual([...before].sort((a, b) => a.id - b.id).map((d) => ({ id: d.id, detail: d.detail })));
    // … and converted again: a copy equal to the commission's explanation becomes a reference.
    await m015.up(t.db);
    expect(await listDiscrepancies(t.db, { status: ['open', 'approved', 'resolved', 'ignored'] })).toEqual(before);
    const kept = await t.db('discrepancies').whereNotNull('explanation').select('computed_commission_key', 'explained_by');
    expect(kept).toEqual([{ computed_commission_key: 'cc-2-d', explained_by: null }]);
    expect(Number((await t.db('discrepancies').whereNotNull('explained_by').count({ n: '*' }))[0]!.n)).toBe(before.filter((d) => d.detail.computed).length - 1);
    // The counts by kind and status start from the stored rows, then follow every write.
    const actual = async () => (await t.db.raw(`SELECT kind, status, count(*)::int AS n FROM discrepancies GROUP BY kind, status ORDER BY kind, status`)).rows;
    expect(await readDiscrepancyCounts(t.db)).toEqual(await actual());
    await decideDiscrepancies(t.db, [before[0]!.id], 'ignore', { reason: 'checked' });
    await t.db('discrepancies').where('id', before[1]!.id).delete();
    expect(await readDiscrepancyCounts(t.db)).toEqual(await actual());

    // TRUNCATE (manual maintenance) fires no row or DELETE trigger: statement triggers cover it.
    const shownNow = await listDiscrepancies(t.db, { status: ['open', 'approved', 'resolved', 'ignored'] });
    await t.db.raw('TRUNCATE computed_commissions CASCADE');
    expect(await listDiscrepancies(t.db, { status: ['open', 'approved', 'resolved', 'ignored'] })).toEqual(shownNow);
    await t.db.raw('TRUNCATE discrepancies CASCADE');
    expect(await readDiscrepancyCounts(t.db)).toEqual([]);
  });
});
