import { describe, expect, it, vi } from 'vitest';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.ts';
import { notePlannerWrites, refreshPlannerStats } from '../../src/db/planner-stats.ts';
import { configSchema } from '../../src/config/schema.ts';
import { runReconciliation } from '../../src/reconcile/run.ts';
import { computeAndStore } from '../../src/rules/store.ts';

/** pg_class.reltuples: -1 until the table's first ANALYZE (PostgreSQL 14+ and PGlite). */
async function reltuples(db: Knex, table: string): Promise<number> {
  const r = await db.raw(`SELECT c.reltuples::float8 AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() AND c.relname = ?`, [table]);
  return Number((r.rows as Array<{ n: number }>)[0]!.n);
}

/** A table of the schema well past the 64-page floor (~1.6 MB), never analyzed. */
async function bigUnanalyzedTable(db: Knex, name: string, rows = 20_000): Promise<void> {
  await db.raw(`CREATE TABLE ${name} (id bigint PRIMARY KEY, filler text NOT NULL) WITH (autovacuum_enabled = false)`); // no autovacuum race on a server
  await db.raw(`INSERT INTO ${name} SELECT g, repeat('x', 60) FROM generate_series(1, ?) g`, [rows]);
}

describe('planner statistics for tables the pipeline filled (planner-stats.ts)', () => {
  const t = useTestDb();

  it('analyzes a table once it has doubled since its last statistics, and not again until it doubles', async () => {
    await bigUnanalyzedTable(t.db, 'filled');
    expect(await reltuples(t.db, 'filled')).toBe(-1);
    expect(await refreshPlannerStats(t.db, { mode: 'always' })).toContain('filled');
    expect(await reltuples(t.db, 'filled')).toBe(20_000);
    // Grown by half: not doubled yet.
    await t.db.raw(`INSERT INTO filled SELECT g, repeat('x', 60) FROM generate_series(20001, 30000) g`);
    expect(await refreshPlannerStats(t.db, { mode: 'always' })).not.toContain('filled');
    // Doubled: analyzed again.
    await t.db.raw(`INSERT INTO filled SELECT g, repeat('x', 60) FROM generate_series(30001, 45000) g`);
    expect(await refreshPlannerStats(t.db, { mode: 'always' })).toContain('filled');
    expect(await reltuples(t.db, 'filled')).toBe(45_000);
  });

  it('inside a stage, checks only after enough writes and not more often than every few seconds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date('2025-03-01T00:00:00Z'));
      await bigUnanalyzedTable(t.db, 'filled');
      // Nothing noted as written yet: the periodic and the settled checks leave the table alone.
      expect(await refreshPlannerStats(t.db, { mode: 'periodic' })).toEqual([]);
      expect(await refreshPlannerStats(t.db, { mode: 'settled' })).toEqual([]);
      expect(await reltuples(t.db, 'filled')).toBe(-1);
      notePlannerWrites(t.db, 20_000);
      expect(await refreshPlannerStats(t.db, { mode: 'periodic' })).toEqual(['filled']);
      // One second after a check, a periodic one waits even with writes noted; a settled one does not.
      await t.db.raw(`INSERT INTO filled SELECT g, repeat('x', 60) FROM generate_series(20001, 60000) g`);
      notePlannerWrites(t.db, 40_000);
      vi.setSystemTime(new Date('2025-03-01T00:00:01Z'));
      expect(await refreshPlannerStats(t.db, { mode: 'periodic' })).toEqual([]);
      expect(await refreshPlannerStats(t.db, { mode: 'settled' })).toEqual(['filled']);
      expect(await reltuples(t.db, 'filled')).toBe(60_000);
      // Six seconds later, with writes noted and the table doubled again, the periodic check runs.
      await t.db.raw(`INSERT INTO filled SELECT g, repeat('x', 60) FROM generate_series(60001, 130000) g`);
      notePlannerWrites(t.db, 70_000);
      vi.setSystemTime(new Date('2025-03-01T00:00:07Z'));
      expect(await refreshPlannerStats(t.db, { mode: 'periodic' })).toEqual(['filled']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('analyzes a table that was vacuumed but never analyzed; never runs on a transaction handle', async () => {
    await bigUnanalyzedTable(t.db, 'vacuumed');
    await t.db.raw('VACUUM vacuumed'); // relpages is current now, but there are no column statistics
    await t.db.transaction(async (trx) => {
      expect(await refreshPlannerStats(trx, { mode: 'always' })).toEqual([]);
    });
    expect(await refreshPlannerStats(t.db, { mode: 'always' })).toEqual(['vacuumed']);
    expect(await refreshPlannerStats(t.db, { mode: 'always' })).toEqual([]);
  });

  it('a reconcile run starts by analyzing what was filled before it; a full compute ends by it', async () => {
    const config = configSchema.parse({});
    await bigUnanalyzedTable(t.db, 'filled_before_reconcile');
    await runReconciliation({ db: t.db, config }, { now: new Date('2025-03-01T00:00:00Z') });
    expect(await reltuples(t.db, 'filled_before_reconcile')).toBe(20_000);

    await bigUnanalyzedTable(t.db, 'filled_during_compute');
    notePlannerWrites(t.db, 5_000); // as if the compute's batches had written them
    await computeAndStore(t.db, config, new Date('2025-03-01T00:00:00Z'));
    expect(await reltuples(t.db, 'filled_during_compute')).toBe(20_000);
  });
});
