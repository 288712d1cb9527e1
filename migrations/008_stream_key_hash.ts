// The hash of the raw record last stored for each stream key. A stream that opts in
// (StreamDef.skipUnchanged) then hands write() only records whose content changed: look-back and
// full re-reads of billing lists (Stripe subscriptions are re-read whole every run) stop re-mapping
// and re-upserting thousands of identical records. Null (rows from before this migration) = changed.
import type { Knex } from 'knex';

export const name = '008_stream_key_hash';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE stream_keys ADD COLUMN hash text');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE stream_keys DROP COLUMN hash');
}
