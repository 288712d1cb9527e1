// The rules engine's outputs have honest "unknown" values the first schema did not allow:
//  - computed_commissions.rule_version: null when no program version was in force at the payment's
//    paid time (the row is then excluded with reason no_program_version). A sentinel such as 'none'
//    would look like a real version name to reports and joins, so the column becomes nullable.
//  - payouts.minimum_usd_minor: null when no minimum applies (no network account or no program
//    version; the statement is then blocked and says why). Writing 0 would claim a real minimum.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '003_rules_nullable';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    ALTER TABLE computed_commissions ALTER COLUMN rule_version DROP NOT NULL;
    ALTER TABLE payouts ALTER COLUMN minimum_usd_minor DROP NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    UPDATE computed_commissions SET rule_version = 'none' WHERE rule_version IS NULL;
    ALTER TABLE computed_commissions ALTER COLUMN rule_version SET NOT NULL;
    UPDATE payouts SET minimum_usd_minor = 0 WHERE minimum_usd_minor IS NULL;
    ALTER TABLE payouts ALTER COLUMN minimum_usd_minor SET NOT NULL;
  `);
}
