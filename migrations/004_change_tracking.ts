// Change tracking for incremental compute and reconciliation. Every insert or update of a table the
// rules or the reconciliation read stamps the row with the next value of one sequence (change_seq);
// hard deletes of such rows leave a tombstone with the old row. A consumer (compute, reconcile)
// remembers the highest change_seq it has processed (change_cursors) and next time reads only rows
// stamped after it.
//
// The catch with any sequence watermark: a transaction may draw a number, then commit AFTER a
// consumer has read past it, and its rows would be skipped for good. So every writing statement on
// a tracked table first takes a SHARED transaction-level advisory lock (statement trigger), and a
// consumer reads its new watermark under the EXCLUSIVE form of that lock (src/db/changes.ts): at
// that instant no writer is between drawing a number and committing, so every number at or below
// the watermark is committed and visible. Writers never wait on each other (shared/shared), only
// briefly on a consumer reading the watermark. Done in triggers so no writer (sync pages, webhooks,
// merges, imports, manual SQL) can forget it.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '004_change_tracking';

export const TRACKED_TABLES = [
  'partners', 'partner_accounts', 'customers', 'customer_emails', 'customer_identities', 'attributions',
  'subscriptions', 'subscription_states', 'billing_events', 'network_transactions', 'network_commissions',
  'computed_commissions', 'fx_rates', 'identity_links',
] as const;

/** Tables whose hard deletes matter to a consumer (the rest are soft-deleted with deleted_at). */
const TOMBSTONED = ['customers', 'customer_emails', 'customer_identities', 'attributions', 'computed_commissions', 'subscription_states'] as const;

// Advisory lock key: (CHANGE_LOCK_KEY, hashtext(current_schema())) so test schemas do not contend.
export const CHANGE_LOCK_KEY = 740_211_904;

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE SEQUENCE change_seq;
    CREATE TABLE change_cursors (
      consumer text PRIMARY KEY,
      change_seq bigint NOT NULL,
      state jsonb NOT NULL DEFAULT '{}'::jsonb,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE change_tombstones (
      change_seq bigint NOT NULL DEFAULT nextval('change_seq') PRIMARY KEY,
      table_name text NOT NULL,
      row_id bigint,
      old jsonb NOT NULL,
      deleted_at timestamptz NOT NULL DEFAULT now()
    );
  `);
  // plpgsql bodies hold ';' at line ends, so they go through knex.raw one statement each.
  await knex.raw(`CREATE FUNCTION change_lock() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_advisory_xact_lock_shared(${CHANGE_LOCK_KEY}, hashtext(current_schema())); RETURN NULL; END $f$`);
  await knex.raw(`CREATE FUNCTION change_stamp() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.change_seq := nextval('change_seq'); RETURN NEW; END $f$`);
  await knex.raw(`CREATE FUNCTION change_tombstone() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO change_tombstones (table_name, row_id, old) VALUES (TG_TABLE_NAME, (to_jsonb(OLD)->>'id')::bigint, to_jsonb(OLD)); RETURN OLD; END $f$`);
  for (const t of TRACKED_TABLES) {
    await execScript(knex, `
      ALTER TABLE ${t} ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
      CREATE INDEX ${t}_change_seq_idx ON ${t} (change_seq);
      CREATE TRIGGER ${t}_change_lock BEFORE INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION change_lock();
      CREATE TRIGGER ${t}_change_stamp BEFORE INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION change_stamp();
    `);
    await createUpdateStamp(knex, t);
    // Rows that predate tracking count as changed once, so the first incremental run sees them.
    await knex.raw(`UPDATE ${t} SET change_seq = nextval('change_seq')`);
  }
  for (const t of TOMBSTONED) {
    await knex.raw(`CREATE TRIGGER ${t}_change_tombstone AFTER DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION change_tombstone()`);
  }
}

/** Columns whose change does not count as a change (bookkeeping the writers touch on every upsert). */
const UNTRACKED_COLUMNS = ['change_seq', 'updated_at', 'last_seen_at'];

/**
 * The UPDATE stamp fires only when a column other than the bookkeeping ones really changed, so a
 * sync that re-reads and re-upserts unchanged records (look-back passes, overlaps) does not make
 * every row look changed to compute and reconcile. The column list is read from the table when the
 * trigger is made: a later migration adding a column to a tracked table must call this again
 * (`alsoIgnore`: further bookkeeping columns, e.g. 006's content_hash).
 */
export async function createUpdateStamp(knex: Knex, table: string, alsoIgnore: readonly string[] = []): Promise<void> {
  const untracked = [...UNTRACKED_COLUMNS, ...alsoIgnore];
  const res = await knex.raw(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`,
    [table],
  );
  const cols = (res.rows as Array<{ column_name: string }>).map((r) => r.column_name).filter((c) => !untracked.includes(c));
  const list = (side: string): string => cols.map((c) => `${side}."${c}"`).join(', ');
  await knex.raw(`DROP TRIGGER IF EXISTS ${table}_change_stamp_update ON ${table}`);
  await knex.raw(
    `CREATE TRIGGER ${table}_change_stamp_update BEFORE UPDATE ON ${table} FOR EACH ROW WHEN ((${list('OLD')}) IS DISTINCT FROM (${list('NEW')})) EXECUTE FUNCTION change_stamp()`,
  );
}

export async function down(knex: Knex): Promise<void> {
  for (const t of TOMBSTONED) await knex.raw(`DROP TRIGGER IF EXISTS ${t}_change_tombstone ON ${t}`);
  for (const t of TRACKED_TABLES) {
    await execScript(knex, `
      DROP TRIGGER IF EXISTS ${t}_change_stamp ON ${t};
      DROP TRIGGER IF EXISTS ${t}_change_stamp_update ON ${t};
      DROP TRIGGER IF EXISTS ${t}_change_lock ON ${t};
      ALTER TABLE ${t} DROP COLUMN change_seq;
    `);
  }
  await execScript(knex, `
    DROP FUNCTION change_tombstone();
    DROP FUNCTION change_stamp();
    DROP FUNCTION change_lock();
    DROP TABLE change_tombstones;
    DROP TABLE change_cursors;
    DROP SEQUENCE change_seq;
  `);
}
