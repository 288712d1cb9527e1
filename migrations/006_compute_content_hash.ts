// Compute: a content hash per computed commission and a partial index for the reserve → due flip.
//
// content_hash is written by src/rules/store.ts: a hash of everything a row says except its status
// and run stamps. A recompute compares the hash of each row it produces with the stored one (and
// the status separately) and sends only rows that differ, instead of shipping every row to the
// database to be compared column by column (that comparison was most of a compute's time).
// The column is bookkeeping derived from the content, so the UPDATE change stamp (migration 004)
// ignores it: filling the hash in on an unchanged row must not look like a change to the
// reconciliation. A later migration that re-creates the stamp on computed_commissions must keep
// content_hash out of the compared columns (004's createUpdateStamp with alsoIgnore).
//
// computed_commissions_reserve_idx serves advanceClearedRows (UPDATE … WHERE status = 'reserve'
// AND cleared_at <= asOf), run on every incremental compute: without it that is a full scan.
// computed_commissions_paid_idx serves the paid-keys look-up of every batch (R8: paid rows are never
// edited): paid rows are few, so probing it per payment is cheap where the full payment index was not.
import type { Knex } from 'knex';
import { createUpdateStamp } from './004_change_tracking.ts';

export const name = '006_compute_content_hash';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE computed_commissions ADD COLUMN content_hash text`);
  await createUpdateStamp(knex, 'computed_commissions', ['content_hash']);
  await knex.raw(`CREATE INDEX computed_commissions_reserve_idx ON computed_commissions (cleared_at) WHERE status = 'reserve'`);
  await knex.raw(`CREATE INDEX computed_commissions_paid_idx ON computed_commissions (payment_event_id) WHERE status = 'paid'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS computed_commissions_paid_idx`);
  await knex.raw(`DROP INDEX IF EXISTS computed_commissions_reserve_idx`);
  await knex.raw(`ALTER TABLE computed_commissions DROP COLUMN content_hash`);
  await createUpdateStamp(knex, 'computed_commissions');
}
