// Human-readable rendering of a row's explanation (for `commission-sync explain`).
import type { ComputedCommission, JsonValue } from './types.ts';

const money = (minor: number | null, currency: string): string => (minor === null ? `? ${currency}` : `${minor} ${currency} minor units`);

function obj(v: JsonValue | undefined): { [key: string]: JsonValue } | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
}

/** How many of the listed counted sales `explain` prints (the stored explanation lists up to 50). */
const SHOWN_COUNTED_SALES = 10;

/**
 * The counted sales an explanation lists: rows in the order of `countedSalesColumns`, or (rows
 * written before it) objects with those names.
 */
function countedSales(tier: { [key: string]: JsonValue }): Array<{ paymentEventId: string; customerId: string; usdMinor: string }> {
  const list = tier['countedSales'];
  if (!Array.isArray(list)) return [];
  const cols = Array.isArray(tier['countedSalesColumns']) ? tier['countedSalesColumns'].map(String) : [];
  const at = { paymentEventId: cols.indexOf('paymentEventId'), customerId: cols.indexOf('customerId'), usdMinor: cols.indexOf('usdMinor') };
  return list.map((entry) => {
    const o = obj(entry);
    const pick = (name: keyof typeof at): string => {
      const v = Array.isArray(entry) ? entry[at[name]] : o?.[name];
      return v === undefined ? '?' : String(v);
    };
    return { paymentEventId: pick('paymentEventId'), customerId: pick('customerId'), usdMinor: pick('usdMinor') };
  });
}

export function explainCommission(c: ComputedCommission): string[] {
  const lines: string[] = [];
  const e = c.explanation;
  lines.push(`${c.key}: ${c.kind}${c.clawbackOf ? ` of ${c.clawbackOf}` : ''} for partner ${c.partnerId} (${c.network ?? 'no network'} ${c.partnerAccountId ?? ''})`.trimEnd());
  lines.push(`  payment ${c.paymentEventId} paid ${c.paidAt.toISOString()}, base ${money(c.baseMinor, c.baseCurrency)} = ${money(c.baseUsdMinor, 'USD')}, rule version ${c.ruleVersion ?? 'none'}`);
  if (c.exclusionReason) lines.push(`  excluded: ${c.exclusionReason} (amount 0)`);
  const tier = obj(e['tier']);
  if (tier) {
    lines.push(
      `  tier ${String(tier['id'])} at ${String(tier['at'])}: ${String(tier['distinctCustomers'])} distinct customers, ` +
        `${String(tier['revenueUsdMinor'])} USD cents counted since ${String(tier['windowStart'])} (${String(tier['countedSalesTotal'])} sales)`,
    );
  }
  const sales = tier ? countedSales(tier) : [];
  if (tier && sales.length > 0) {
    const shown = sales.slice(0, SHOWN_COUNTED_SALES).map((x) => `${x.paymentEventId} (customer ${x.customerId}, ${x.usdMinor})`);
    const more = Number(tier['countedSalesTotal'] ?? sales.length) - shown.length;
    lines.push(`  counted sales, payment (customer, USD cents): ${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''}`);
  }
  if (e['firstQualifiedPaymentOfSubscription'] !== undefined) {
    lines.push(`  first qualified payment of its subscription: ${String(e['firstQualifiedPaymentOfSubscription'])}`);
  }
  const before = obj(e['commissionBeforeRefunds']);
  if (before && typeof before['formula'] === 'string') lines.push(`  ${before['formula']}`);
  if (typeof e['formula'] === 'string') lines.push(`  ${e['formula']}`);
  const refunds = e['refundAdjustments'];
  if (Array.isArray(refunds)) {
    for (const r of refunds) {
      const o = obj(r);
      if (o) lines.push(`  refund ${String(o['eventId'])} at ${String(o['at'])}: ${String(o['amountMinor'])} → ${String(o['treatment'])}`);
    }
  }
  lines.push(`  amount ${money(c.amountMinor, c.baseCurrency)} (${c.amountUsdMinor} USD cents), status ${c.status}, cleared ${c.clearedAt?.toISOString() ?? '-'}, payout ${c.payoutDate ?? '-'}`);
  if (c.flags.length > 0) lines.push(`  flags: ${c.flags.join(', ')}`);
  return lines;
}
