// The rules engine's per-partner tier facts (issue #9, incremental compute at any history size).
// One row per payment a partner's computation priced: its customer and paid time, and — when it is
// a sale the tier calculation counts (R4: qualified, with a USD value) — its USD base, clearing time
// and refunds. Written with the partner's commission rows (same transaction, replaced whenever
// those rows are), so it always describes the stored rows' inputs. A partner whose only change is
// new payments then reads its earlier sales here (narrow rows, one index range) instead of loading
// its customers' whole billing history: see src/rules/store.ts.
// Primary key (partner_id, paid_at, payment_event_id): every read is "a partner's payments from t on".
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '010_compute_partner_payments';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE compute_partner_payments (
      partner_id bigint NOT NULL,
      paid_at timestamptz NOT NULL,
      payment_event_id bigint NOT NULL,
      customer_id bigint NOT NULL,
      usd_minor bigint,
      cleared_at timestamptz,
      refunds json,
      PRIMARY KEY (partner_id, paid_at, payment_event_id)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `DROP TABLE IF EXISTS compute_partner_payments;`);
}
