// A canonical dump of the tables a run produces, with surrogate ids replaced by natural keys, so two
// databases filled by different runs (clean, faulted, killed and resumed) compare line for line.
import type { Knex } from 'knex';

const QUERIES: Record<string, string> = {
  partners: `SELECT p.partner_key, p.name, p.email_normalized, r.partner_key AS recruiter FROM partners p LEFT JOIN partners r ON r.id = p.recruiter_partner_id`,
  partner_accounts: `SELECT a.connection, a.external_id, a.network, p.partner_key, a.status, a.recruiter_external_id FROM partner_accounts a JOIN partners p ON p.id = a.partner_id`,
  customers: `SELECT customer_key, email_normalized, is_test FROM customers`,
  customer_identities: `SELECT i.system, i.connection, i.external_id, c.customer_key FROM customer_identities i JOIN customers c ON c.id = i.customer_id`,
  // Sale attributions' source_ref embeds the customer's surrogate id (sale-customer:<id>), which
  // depends on insertion order (a killed run's rolled-back inserts use up sequence values).
  attributions: `SELECT at.connection, CASE WHEN at.source_ref LIKE 'sale-customer:%' THEN 'sale-customer:' || c.customer_key ELSE at.source_ref END AS source_ref, c.customer_key, a.external_id AS account, at.attributed_at, at.deleted_at IS NULL AS live FROM attributions at JOIN customers c ON c.id = at.customer_id JOIN partner_accounts a ON a.id = at.partner_account_id`,
  subscriptions: `SELECT s.connection, s.external_id, s.status, s.plan_interval, s.currency, c.customer_key FROM subscriptions s LEFT JOIN customers c ON c.id = s.customer_id`,
  billing_events: `SELECT e.connection, e.kind, e.external_id, e.document_id, e.amount_minor, e.currency, e.amount_usd_minor, e.classification, e.occurred_at, e.deleted_at IS NULL AS live, e.payment_external_id, c.customer_key FROM billing_events e LEFT JOIN customers c ON c.id = e.customer_id`,
  network_commissions: `SELECT n.connection, n.external_id, n.amount_minor, n.currency, n.amount_usd_minor, n.status, n.transaction_key, n.order_ref, n.kind_hint, a.external_id AS account, c.customer_key FROM network_commissions n LEFT JOIN partner_accounts a ON a.id = n.partner_account_id LEFT JOIN customers c ON c.id = n.customer_id`,
  computed_commissions: `SELECT cc.kind, cc.clawback_of, p.partner_key, cc.network, pe.document_id AS payment, se.kind AS source_kind, se.external_id AS source, cc.tier, cc.rate, cc.amount_minor, cc.amount_usd_minor, cc.status, cc.payout_date, cc.exclusion_reason FROM computed_commissions cc JOIN partners p ON p.id = cc.partner_id JOIN billing_events pe ON pe.id = cc.payment_event_id JOIN billing_events se ON se.id = cc.source_event_id`,
  discrepancies: `SELECT d.kind, d.network, p.partner_key, be.document_id AS payment, n.external_id AS network_row, d.expected_minor, d.reported_minor, d.usd_at_stake_minor, d.status FROM discrepancies d LEFT JOIN partners p ON p.id = d.partner_id LEFT JOIN billing_events be ON be.id = d.billing_event_id LEFT JOIN network_commissions n ON n.id = d.network_commission_id`,
};

export const CANONICAL_TABLES = Object.keys(QUERIES);

const norm = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : typeof v === 'string' && /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}/.test(v) ? new Date(v).toISOString() : typeof v === 'string' ? v.trim() : v);

/** table → sorted JSON lines. */
export async function canonicalDump(db: Knex): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, sql] of Object.entries(QUERIES)) {
    const rows = (await db.raw(sql)).rows as Array<Record<string, unknown>>;
    out[table] = rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, norm(v)])))).sort();
  }
  return out;
}
