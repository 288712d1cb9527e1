// Discrepancies no longer copy the computed commission's explanation (~2.6 kB a row, 40 % of a 1M
// full reconcile's statement time): the stored detail leaves out `computed.explanation` and names
// the commission instead (`explained_by`); readers put the explanation back
// (src/reconcile/discrepancies.ts, detailSql) and see the detail the discrepancy was written with.
//
// A commission can change or go away while a discrepancy that showed its explanation is not
// rewritten (it was resolved, ignored and gone stale, or the reconcile has not run yet): such a
// discrepancy must keep showing the explanation it was written with. A trigger on
// computed_commissions does that: when a row's explanation changes or the row is deleted, the
// discrepancies naming it get the old explanation as their own copy (`explanation`) and stop naming
// it. A later sighting rewrites the discrepancy, naming the commission again and dropping the copy.
// The trigger fires only on statements that set the explanation (compute's upserts, which send only
// rows whose content changed) and on deletes, never on status updates.
//
// Existing rows are converted here: a discrepancy whose copy equals its commission's current
// explanation names it; any other keeps its copy.
//
// Discrepancy counts by (kind, status), kept by difference (issue #9: an incremental run
// independent of history): every statement that inserts, updates or deletes discrepancies appends
// its signed difference to discrepancy_counts through statement-level triggers on the statement's
// transition tables, so it commits or rolls back with the writer (the reconcile, decisions from
// the CLI or the API, manual SQL). Append-only for writers; the reconcile folds it to one row per
// (kind, status) and reads each run's counts by kind from there instead of counting every
// discrepancy of the history (0.30 s at 1M). Filled here from the rows already stored.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '015_discrepancy_explanations';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    ALTER TABLE discrepancies ADD COLUMN explained_by text, ADD COLUMN explanation jsonb;
    WITH x AS (
      SELECT d.id, d.detail->'computed'->'explanation' AS shown,
             (SELECT cc.commission_key FROM computed_commissions cc
               WHERE cc.commission_key = d.detail->'computed'->>'key' AND cc.explanation = d.detail->'computed'->'explanation') AS same
        FROM discrepancies d
       WHERE jsonb_typeof(d.detail->'computed') = 'object' AND d.detail->'computed'->'explanation' IS NOT NULL
    )
    UPDATE discrepancies d
       SET explained_by = x.same,
           explanation = CASE WHEN x.same IS NULL THEN x.shown END,
           detail = d.detail #- '{computed,explanation}'
      FROM x WHERE x.id = d.id;
    CREATE INDEX discrepancies_explained_by_idx ON discrepancies (explained_by) WHERE explained_by IS NOT NULL;
    CREATE TABLE discrepancy_counts (
      kind   text NOT NULL,
      status text NOT NULL,
      n      bigint NOT NULL
    );
    INSERT INTO discrepancy_counts (kind, status, n) SELECT kind, status, count(*) FROM discrepancies GROUP BY kind, status;
  `);
  // plpgsql bodies hold ';' at line ends, so they go through knex.raw one statement each.
  await knex.raw(`CREATE FUNCTION discrepancies_keep_explanation() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    UPDATE discrepancies SET explanation = OLD.explanation, explained_by = NULL WHERE explained_by = OLD.commission_key;
    RETURN NULL;
  END $f$`);
  await knex.raw(`CREATE TRIGGER computed_commissions_explanation_changed AFTER UPDATE OF explanation ON computed_commissions
    FOR EACH ROW WHEN (OLD.explanation IS DISTINCT FROM NEW.explanation) EXECUTE FUNCTION discrepancies_keep_explanation()`);
  await knex.raw(`CREATE TRIGGER computed_commissions_explanation_deleted AFTER DELETE ON computed_commissions
    FOR EACH ROW EXECUTE FUNCTION discrepancies_keep_explanation()`);
  // TRUNCATE fires neither row nor DELETE triggers: the same, once per statement (no code truncates
  // these tables; manual maintenance may).
  await knex.raw(`CREATE FUNCTION discrepancies_keep_all_explanations() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    UPDATE discrepancies d SET explanation = cc.explanation, explained_by = NULL FROM computed_commissions cc WHERE cc.commission_key = d.explained_by;
    RETURN NULL;
  END $f$`);
  await knex.raw(`CREATE TRIGGER computed_commissions_explanation_truncated BEFORE TRUNCATE ON computed_commissions
    FOR EACH STATEMENT EXECUTE FUNCTION discrepancies_keep_all_explanations()`);
  await knex.raw(`CREATE FUNCTION discrepancy_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    DELETE FROM discrepancy_counts;
    RETURN NULL; END $f$`);
  await knex.raw(`CREATE TRIGGER discrepancies_counts_truncate AFTER TRUNCATE ON discrepancies FOR EACH STATEMENT EXECUTE FUNCTION discrepancy_counts_truncate()`);
  await knex.raw(`CREATE FUNCTION discrepancy_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO discrepancy_counts (kind, status, n) SELECT kind, status, count(*) FROM discrepancy_counts_new GROUP BY kind, status;
    RETURN NULL; END $f$`);
  await knex.raw(`CREATE FUNCTION discrepancy_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO discrepancy_counts (kind, status, n) SELECT kind, status, -count(*) FROM discrepancy_counts_old GROUP BY kind, status;
    RETURN NULL; END $f$`);
  await knex.raw(`CREATE FUNCTION discrepancy_counts_update() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
    INSERT INTO discrepancy_counts (kind, status, n)
      SELECT kind, status, sum(n) FROM (
        SELECT kind, status, 1 AS n FROM discrepancy_counts_new
        UNION ALL SELECT kind, status, -1 FROM discrepancy_counts_old) d
      GROUP BY kind, status HAVING sum(n) <> 0;
    RETURN NULL; END $f$`);
  await execScript(knex, `
    CREATE TRIGGER discrepancies_counts_insert AFTER INSERT ON discrepancies
      REFERENCING NEW TABLE AS discrepancy_counts_new FOR EACH STATEMENT EXECUTE FUNCTION discrepancy_counts_insert();
    CREATE TRIGGER discrepancies_counts_delete AFTER DELETE ON discrepancies
      REFERENCING OLD TABLE AS discrepancy_counts_old FOR EACH STATEMENT EXECUTE FUNCTION discrepancy_counts_delete();
    CREATE TRIGGER discrepancies_counts_update AFTER UPDATE ON discrepancies
      REFERENCING OLD TABLE AS discrepancy_counts_old NEW TABLE AS discrepancy_counts_new FOR EACH STATEMENT EXECUTE FUNCTION discrepancy_counts_update();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    DROP TRIGGER IF EXISTS discrepancies_counts_truncate ON discrepancies;
    DROP FUNCTION IF EXISTS discrepancy_counts_truncate();
    DROP TRIGGER IF EXISTS computed_commissions_explanation_truncated ON computed_commissions;
    DROP FUNCTION IF EXISTS discrepancies_keep_all_explanations();
    DROP TRIGGER IF EXISTS discrepancies_counts_insert ON discrepancies;
    DROP TRIGGER IF EXISTS discrepancies_counts_delete ON discrepancies;
    DROP TRIGGER IF EXISTS discrepancies_counts_update ON discrepancies;
    DROP FUNCTION IF EXISTS discrepancy_counts_insert();
    DROP FUNCTION IF EXISTS discrepancy_counts_delete();
    DROP FUNCTION IF EXISTS discrepancy_counts_update();
    DROP TABLE IF EXISTS discrepancy_counts;
    DROP TRIGGER IF EXISTS computed_commissions_explanation_deleted ON computed_commissions;
    DROP TRIGGER IF EXISTS computed_commissions_explanation_changed ON computed_commissions;
    DROP FUNCTION IF EXISTS discrepancies_keep_explanation();
    UPDATE discrepancies d
       SET detail = coalesce(jsonb_set(d.detail, '{computed,explanation}',
             coalesce(d.explanation, (SELECT cc.explanation FROM computed_commissions cc WHERE cc.commission_key = d.explained_by))), d.detail)
     WHERE d.explanation IS NOT NULL OR d.explained_by IS NOT NULL;
    DROP INDEX IF EXISTS discrepancies_explained_by_idx;
    ALTER TABLE discrepancies DROP COLUMN explanation, DROP COLUMN explained_by;
  `);
}
