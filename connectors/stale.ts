// Which unchanged network records of a tail must still be re-mapped (StreamDef.stale): those whose
// canonical row would come out differently now because a link its mapping looks up arrived or moved
// since it was written. Each query mirrors the look-ups of the stream's write() and answers for a
// whole batch in one statement; a key whose canonical row is missing is always stale.
//
// Every look-up is a per-key index probe: the canonical row through LATERAL … OFFSET 0 and the links
// as scalar sub-selects (an EXISTS in an OR may be planned as a hashed scan of the whole table, and
// with the key count known the planner would hash-join the canonical table: both grow with history).
import type { Knex } from 'knex';

async function keysOf(trx: Knex, sql: string, bindings: readonly Knex.RawBinding[]): Promise<Set<string>> {
  const res = await trx.raw(sql, bindings);
  return new Set((res.rows as Array<{ external_id: string }>).map((r) => r.external_id));
}

const row = (table: string): string =>
  `FROM unnest(?::text[]) AS k(external_id)
   LEFT JOIN LATERAL (SELECT * FROM ${table} x WHERE x.connection = ? AND x.external_id = k.external_id OFFSET 0) t ON true`;

/**
 * Customer links of a PartnerStack reference as write() resolves them (customerIdsForRefs: the
 * PartnerStack key's identity first, else the shared customer_key), as min/max so that an ambiguous
 * look-up counts as moved. The PartnerStack key is the canonical row's metadata.customer_key.
 */
const PS_CUSTOMER_LINKS = `
  (SELECT min(ci.customer_id) FROM customer_identities ci WHERE ci.system = 'partnerstack' AND ci.external_id = t.metadata->>'customer_key') AS key_min,
  (SELECT max(ci.customer_id) FROM customer_identities ci WHERE ci.system = 'partnerstack' AND ci.external_id = t.metadata->>'customer_key') AS key_max,
  (SELECT min(c.id) FROM customers c WHERE c.customer_key = t.customer_external_key) AS ext_min,
  (SELECT max(c.id) FROM customers c WHERE c.customer_key = t.customer_external_key) AS ext_max`;
const PS_CUSTOMER_MOVED = `(t.customer_id IS NULL OR CASE
    WHEN l.key_min IS NOT NULL THEN l.key_min <> t.customer_id OR l.key_max <> t.customer_id
    ELSE l.ext_min IS DISTINCT FROM t.customer_id OR l.ext_max <> t.customer_id END)`;

/** PartnerStack transactions: the customer, and the partner from the customer's live attribution on the connection. */
export function stalePsTransactions(trx: Knex, connection: string, keys: string[]): Promise<Set<string>> {
  return keysOf(trx, `
    SELECT k.external_id ${row('network_transactions')}
      LEFT JOIN LATERAL (SELECT ${PS_CUSTOMER_LINKS},
        (SELECT min(a.partner_account_id) FROM attributions a WHERE a.customer_id = t.customer_id AND a.connection = t.connection AND a.deleted_at IS NULL) AS acc_min,
        (SELECT max(a.partner_account_id) FROM attributions a WHERE a.customer_id = t.customer_id AND a.connection = t.connection AND a.deleted_at IS NULL) AS acc_max
        OFFSET 0) l ON true
     WHERE t.id IS NULL OR t.partner_account_id IS NULL OR ${PS_CUSTOMER_MOVED}
        OR l.acc_min IS DISTINCT FROM t.partner_account_id OR l.acc_max <> t.partner_account_id`,
  [keys, connection]);
}

/** PartnerStack rewards: the customer, the partner key (partnership link first) and its account. */
export function stalePsRewards(trx: Knex, connection: string, keys: string[], partnershipLinkKind: string): Promise<Set<string>> {
  return keysOf(trx, `
    SELECT k.external_id ${row('network_commissions')}
      LEFT JOIN LATERAL (SELECT ${PS_CUSTOMER_LINKS},
        (SELECT li.to_ref FROM identity_links li WHERE li.kind = ? AND li.from_ref = t.connection || ':' || (t.metadata->>'partnership_key')) AS link,
        (SELECT pa.id FROM partner_accounts pa WHERE pa.connection = t.connection AND pa.external_id = t.partner_external_id) AS account
        OFFSET 0) l ON true
     WHERE t.id IS NULL OR t.partner_external_id IS NULL OR t.partner_account_id IS NULL OR ${PS_CUSTOMER_MOVED}
        OR l.link <> t.partner_external_id OR l.account IS DISTINCT FROM t.partner_account_id`,
  [keys, connection, partnershipLinkKind]);
}

/**
 * ShareASale and Awin sales: the partner account (by affiliate/publisher id), and R1's attribution
 * from the sale's billing document (attributeFromSales): stale when the document names a customer
 * that has no attribution on the connection dated at or before this sale — re-mapping would
 * create or move it (a document that arrived after the sale was first read). `lockedBy` (ShareASale,
 * whose schema reads a lock date in the past as locked): a pending sale whose stored lock date has
 * passed by the run's clock is stale too (it becomes approved with the same payload).
 */
export function staleSales(trx: Knex, connection: string, keys: string[], lockedBy?: Date): Promise<Set<string>> {
  return keysOf(trx, `
    SELECT k.external_id ${row('network_commissions')}
      LEFT JOIN LATERAL (SELECT
        (SELECT pa.id FROM partner_accounts pa WHERE pa.connection = t.connection AND pa.external_id = t.partner_external_id) AS account,
        CASE WHEN t.status NOT IN ('deleted', 'declined') AND coalesce(t.order_ref, t.transaction_key) <> '' THEN
          (SELECT count(*) FROM billing_events be
             LEFT JOIN LATERAL (SELECT 1 AS ok FROM attributions a
                                 WHERE a.connection = t.connection AND a.source_ref = 'sale-customer:' || be.customer_id AND a.attributed_at <= t.occurred_at
                                 LIMIT 1) a ON true
            WHERE be.kind = 'payment' AND be.customer_id IS NOT NULL AND a.ok IS NULL
              AND (be.document_id = coalesce(t.order_ref, t.transaction_key) OR be.external_id = coalesce(t.order_ref, t.transaction_key)))
        ELSE 0 END AS unattributed
        OFFSET 0) l ON true
     WHERE t.id IS NULL OR t.partner_account_id IS NULL OR l.account IS DISTINCT FROM t.partner_account_id OR l.unattributed > 0
        ${lockedBy ? `OR (t.raw_status = 'pending' AND (t.metadata->>'lockDate')::timestamptz <= ?)` : ''}`,
  lockedBy ? [keys, connection, lockedBy] : [keys, connection]);
}
