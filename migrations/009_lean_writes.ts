// Cheaper sync writes (issue #9), measured at 100k payments on PostgreSQL:
// - raw_records.payload as json, not jsonb: the raw store is written once per distinct record and
//   read only by people auditing it (nothing queries it with jsonb operators), so parsing every
//   payload into jsonb was pure cost — inserts ~40 % faster and the text is kept exactly as the API
//   sent it, which suits an audit copy better.
// - billing_events had two indexes on payment_external_id ((connection, payment_external_id) from
//   001 and (payment_external_id) from 005); one partial index over the rows that have one (refunds,
//   chargebacks, reversals — not payments, the bulk of the table) serves the refund linking and the
//   reconcile look-ups alike: `payment_external_id = …` implies IS NOT NULL.
// - 007's GIN indexes (Stripe payment refs) without fastupdate: the Stripe refund stream searches
//   them right after the invoice stream filled them, and every search scanned the whole pending
//   list (up to 4 MB of not-yet-merged entries): 0.9 s per 200 refs at 100k payments, 1 ms once
//   merged (most of the refund stream's 24-37 s). Entries now go into the index as rows are written.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '009_lean_writes';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    ALTER TABLE raw_records ALTER COLUMN payload TYPE json USING payload::json;
    DROP INDEX billing_events_payment_ext_idx;
    DROP INDEX billing_events_payment_external_id_idx;
    CREATE INDEX billing_events_payment_external_id_idx ON billing_events (payment_external_id) WHERE payment_external_id IS NOT NULL;
    ALTER INDEX billing_events_payment_intents_idx SET (fastupdate = off);
    ALTER INDEX billing_events_charges_idx SET (fastupdate = off);
    SELECT gin_clean_pending_list('billing_events_payment_intents_idx'), gin_clean_pending_list('billing_events_charges_idx');
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    ALTER INDEX billing_events_charges_idx RESET (fastupdate);
    ALTER INDEX billing_events_payment_intents_idx RESET (fastupdate);
    DROP INDEX billing_events_payment_external_id_idx;
    CREATE INDEX billing_events_payment_external_id_idx ON billing_events (payment_external_id);
    CREATE INDEX billing_events_payment_ext_idx ON billing_events (connection, payment_external_id);
    ALTER TABLE raw_records ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
  `);
}
