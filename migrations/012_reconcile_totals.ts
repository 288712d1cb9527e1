// Reconciliation totals kept by difference (issue #9: an incremental run independent of history).
// One row per (network, partner) with the sums of the counted reconcile_items and how many there
// are: what every run's summary reports. A full run rebuilds it from reconcile_items; an incremental
// run adds the items it writes and subtracts the ones it replaces (src/reconcile/totals.ts), in
// the same transaction, instead of aggregating every item of the history each run. `key` is
// "<network>|<partner_id or null>" because partner_id may be null. Filled here from the items
// already stored, so an upgraded database needs no full run.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '012_reconcile_totals';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE reconcile_totals (
      key                 text PRIMARY KEY,
      network             text NOT NULL,
      partner_id          bigint,
      items               bigint NOT NULL,
      reported_usd_minor  bigint NOT NULL,
      owed_usd_minor      bigint NOT NULL,
      collected_usd_minor bigint NOT NULL
    );
    INSERT INTO reconcile_totals (key, network, partner_id, items, reported_usd_minor, owed_usd_minor, collected_usd_minor)
      SELECT network || '|' || coalesce(partner_id::text, 'null'), network, partner_id, count(*), sum(reported_usd_minor), sum(owed_usd_minor), sum(collected_usd_minor)
        FROM reconcile_items WHERE counted GROUP BY network, partner_id;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `DROP TABLE IF EXISTS reconcile_totals;`);
}
