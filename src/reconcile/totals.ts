// Reconciliation totals per (network, partner), kept by difference in reconcile_totals (migration
// 012) so a run reads them instead of aggregating every reconcile_items row of the history. The
// table always equals `SELECT network, partner_id, count(*), sum(…) FROM reconcile_items WHERE
// counted GROUP BY 1, 2` (groups with no counted item have no row, or a row with items = 0).
import type { Knex } from 'knex';
import { bulkInsert } from '../db/bulk.ts';
import { num } from './load.ts';

/** One item's share of the totals (or a sum of such shares). */
export interface Contribution {
  network: string;
  partnerId: number | null;
  reported: number;
  owed: number;
  collected: number;
}

const keyOf = (network: string, partnerId: number | null): string => `${network}|${partnerId}`;

/** Adds one item's share into per-(network, partner) sums. */
export function addContribution(sums: Map<string, Contribution>, c: Contribution): void {
  const key = keyOf(c.network, c.partnerId);
  const x = sums.get(key) ?? { network: c.network, partnerId: c.partnerId, reported: 0, owed: 0, collected: 0 };
  x.reported += c.reported;
  x.owed += c.owed;
  x.collected += c.collected;
  sums.set(key, x);
}

/** A reconcile_items / reconcile_totals row's share. */
function toContribution(r: Record<string, unknown>): Contribution {
  return { network: String(r.network), partnerId: r.partner_id === null ? null : num(r.partner_id), reported: num(r.reported_usd_minor), owed: num(r.owed_usd_minor), collected: num(r.collected_usd_minor) };
}

/** After a full run rewrote every item. */
export async function rebuildTotals(trx: Knex): Promise<void> {
  await trx('reconcile_totals').delete();
  await trx.raw(
    `INSERT INTO reconcile_totals (key, network, partner_id, items, reported_usd_minor, owed_usd_minor, collected_usd_minor)
     SELECT network || '|' || coalesce(partner_id::text, 'null'), network, partner_id, count(*), sum(reported_usd_minor), sum(owed_usd_minor), sum(collected_usd_minor)
       FROM reconcile_items WHERE counted GROUP BY network, partner_id`,
  );
}

/**
 * Deletes these items from reconcile_items and returns the counted ones' shares, to be taken out
 * of the totals (an incremental run replaces the items it re-evaluated).
 */
export async function deleteItems(trx: Knex, items: string[]): Promise<Contribution[]> {
  const r = await trx.raw(
    `DELETE FROM reconcile_items WHERE item = ANY(?::text[]) RETURNING network, partner_id, counted, reported_usd_minor, owed_usd_minor, collected_usd_minor`,
    [items],
  );
  return (r.rows as Array<Record<string, unknown>>)
    .filter((x) => x.counted === true)
    .map(toContribution);
}

/** Adds the counted items written (`added`) and subtracts those replaced (`removed`). */
export async function applyTotalsDelta(trx: Knex, removed: Contribution[], added: Contribution[]): Promise<void> {
  const d = new Map<string, { key: string; network: string; partner_id: number | null; items: number; reported_usd_minor: number; owed_usd_minor: number; collected_usd_minor: number }>();
  const add = (c: Contribution, sign: 1 | -1): void => {
    const key = keyOf(c.network, c.partnerId);
    const x = d.get(key) ?? { key, network: c.network, partner_id: c.partnerId, items: 0, reported_usd_minor: 0, owed_usd_minor: 0, collected_usd_minor: 0 };
    x.items += sign;
    x.reported_usd_minor += sign * c.reported;
    x.owed_usd_minor += sign * c.owed;
    x.collected_usd_minor += sign * c.collected;
    d.set(key, x);
  };
  for (const c of removed) add(c, -1);
  for (const c of added) add(c, 1);
  const rows = [...d.values()].filter((x) => x.items !== 0 || x.reported_usd_minor !== 0 || x.owed_usd_minor !== 0 || x.collected_usd_minor !== 0);
  if (rows.length === 0) return;
  const sum = (c: string): string => `${c} = reconcile_totals.${c} + excluded.${c}`;
  await bulkInsert(trx, 'reconcile_totals', rows, {
    onConflict: `(key) DO UPDATE SET ${['items', 'reported_usd_minor', 'owed_usd_minor', 'collected_usd_minor'].map(sum).join(', ')}`,
    chunkSize: 2000,
  });
  await trx.raw(`DELETE FROM reconcile_totals WHERE key = ANY(?::text[]) AND items = 0`, [rows.map((x) => x.key)]);
}

/** The totals of every (network, partner) with counted items. */
export async function readTotals(db: Knex): Promise<Contribution[]> {
  const rows = await db('reconcile_totals').where('items', '>', 0).select('network', 'partner_id', 'reported_usd_minor', 'owed_usd_minor', 'collected_usd_minor');
  return rows.map(toContribution);
}
