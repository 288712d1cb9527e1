// Stripe refunds and disputes name their payment by payment intent or charge; a payment event keeps
// those ids in metadata.payment_intents / metadata.charges. Looking them up by unnesting every
// payment's arrays scanned the whole billing_events table once per refund page (quadratic with
// history: 10 s of a 100k-payment sync). GIN indexes on the two arrays answer `?|` directly.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '007_stripe_payment_refs';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE INDEX billing_events_payment_intents_idx ON billing_events USING gin ((metadata->'payment_intents')) WHERE kind = 'payment';
    CREATE INDEX billing_events_charges_idx ON billing_events USING gin ((metadata->'charges')) WHERE kind = 'payment';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    DROP INDEX billing_events_charges_idx;
    DROP INDEX billing_events_payment_intents_idx;
  `);
}
