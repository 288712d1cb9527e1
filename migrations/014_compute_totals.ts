// The compute summary's totals by (kind, status) kept by difference (issue #9: an incremental run
// independent of history). Every statement that inserts, updates or deletes computed_commissions
// rows appends what it changed — row count and USD amount per (kind, status), signed — to
// compute_totals, through statement-level triggers reading the statement's transition tables: the
// delta commits or rolls back with the writer's own transaction, whoever the writer is (the
// compute's batches, advanceClearedRows, markPayoutsPaid, manual SQL). The table is append-only for
// writers (no row is updated, so concurrent writers never wait on each other); the compute folds it
// to one row per (kind, status) at the end of a run and reads its summary from there, instead of
// aggregating every computed_commissions row of the history each run. Filled here from the rows
// already stored, so an upgraded database needs no full run.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '014_compute_totals';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE compute_totals (
      kind      text NOT NULL,
      status    text NOT NULL,
      rows      bigint NOT NULL,
      usd_minor bigint NOT NULL
    );
    INSERT INTO compute_totals (kind, status, rows, usd_minor)
      SELECT kind, status, count(*), coalesce(sum(amount_usd_minor), 0) FROM computed_commissions GROUP BY kind, status;
  `);
  // plpgsql bodies hold ';' at line ends, so they go through knex.raw one statement each.
  await knex.raw(`CREATE FUNCTION compute_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO compute_totals (kind, status, rows, usd_minor)
      SELECT kind, status, count(*), coalesce(sum(amount_usd_minor), 0) FROM compute_totals_new GROUP BY kind, status;
    RETURN NULL; END $f$`);
  await knex.raw(`CREATE FUNCTION compute_totals_delete() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO compute_totals (kind, status, rows, usd_minor)
      SELECT kind, status, -count(*), -coalesce(sum(amount_usd_minor), 0) FROM compute_totals_old GROUP BY kind, status;
    RETURN NULL; END $f$`);
  await knex.raw(`CREATE FUNCTION compute_totals_update() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO compute_totals (kind, status, rows, usd_minor)
      SELECT kind, status, sum(n), sum(usd) FROM (
        SELECT kind, status, 1 AS n, coalesce(amount_usd_minor, 0) AS usd FROM compute_totals_new
        UNION ALL SELECT kind, status, -1, -coalesce(amount_usd_minor, 0) FROM compute_totals_old) d
      GROUP BY kind, status HAVING sum(n) <> 0 OR sum(usd) <> 0;
    RETURN NULL; END $f$`);
  // TRUNCATE fires no DELETE trigger: the kept totals empty with the table.
  await knex.raw(`CREATE FUNCTION compute_totals_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    DELETE FROM compute_totals;
    RETURN NULL; END $f$`);
  await execScript(knex, `
    CREATE TRIGGER computed_commissions_totals_truncate AFTER TRUNCATE ON computed_commissions
      FOR EACH STATEMENT EXECUTE FUNCTION compute_totals_truncate();
    CREATE TRIGGER computed_commissions_totals_insert AFTER INSERT ON computed_commissions
      REFERENCING NEW TABLE AS compute_totals_new FOR EACH STATEMENT EXECUTE FUNCTION compute_totals_insert();
    CREATE TRIGGER computed_commissions_totals_delete AFTER DELETE ON computed_commissions
      REFERENCING OLD TABLE AS compute_totals_old FOR EACH STATEMENT EXECUTE FUNCTION compute_totals_delete();
    CREATE TRIGGER computed_commissions_totals_update AFTER UPDATE ON computed_commissions
      REFERENCING OLD TABLE AS compute_totals_old NEW TABLE AS compute_totals_new FOR EACH STATEMENT EXECUTE FUNCTION compute_totals_update();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    DROP TRIGGER IF EXISTS computed_commissions_totals_truncate ON computed_commissions;
    DROP FUNCTION IF EXISTS compute_totals_truncate();
    DROP TRIGGER IF EXISTS computed_commissions_totals_insert ON computed_commissions;
    DROP TRIGGER IF EXISTS computed_commissions_totals_delete ON computed_commissions;
    DROP TRIGGER IF EXISTS computed_commissions_totals_update ON computed_commissions;
    DROP FUNCTION IF EXISTS compute_totals_insert();
    DROP FUNCTION IF EXISTS compute_totals_delete();
    DROP FUNCTION IF EXISTS compute_totals_update();
    DROP TABLE IF EXISTS compute_totals;
  `);
}
