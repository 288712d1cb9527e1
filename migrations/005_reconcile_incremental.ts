// Incremental reconciliation (src/reconcile/incremental.ts). reconcile_items remembers, per matched
// input ("nc:<network_commissions.id>" or "cc:<commission_key>"), what the last evaluation saw:
// its unit (the connected group of rows a match can reach), a signature of its inputs (to tell a
// real change from a re-sync that rewrote the same values), and its share of the run totals. The
// unit is what lets a later run find the OLD group of a row whose customer or reference changed
// (updates leave no tombstone), e.g. the computed commission a moved network row used to match.
// The indexes serve the look-ups an incremental run makes instead of scanning whole tables.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '005_reconcile_incremental';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE reconcile_items (
      item                text PRIMARY KEY,
      network             text NOT NULL,
      unit                text NOT NULL,
      payment_event_id    bigint,
      sig                 text NOT NULL,
      counted             boolean NOT NULL DEFAULT false,
      partner_id          bigint,
      reported_usd_minor  bigint NOT NULL DEFAULT 0,
      owed_usd_minor      bigint NOT NULL DEFAULT 0,
      collected_usd_minor bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX reconcile_items_unit_idx ON reconcile_items (unit);
    CREATE INDEX reconcile_items_payment_idx ON reconcile_items (payment_event_id);
    CREATE INDEX billing_events_external_idx ON billing_events (external_id);
    CREATE INDEX billing_events_payment_external_id_idx ON billing_events (payment_external_id);
    CREATE INDEX billing_events_subscription_idx ON billing_events (subscription_id);
    CREATE INDEX billing_events_occurred_idx ON billing_events (occurred_at);
    CREATE INDEX discrepancies_nc_idx ON discrepancies (network_commission_id);
    CREATE INDEX discrepancies_cc_idx ON discrepancies (computed_commission_key);
    CREATE INDEX discrepancies_last_run_idx ON discrepancies (last_run_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    DROP INDEX discrepancies_last_run_idx;
    DROP INDEX discrepancies_cc_idx;
    DROP INDEX discrepancies_nc_idx;
    DROP INDEX billing_events_occurred_idx;
    DROP INDEX billing_events_subscription_idx;
    DROP INDEX billing_events_payment_external_id_idx;
    DROP INDEX billing_events_external_idx;
    DROP TABLE reconcile_items;
  `);
}
