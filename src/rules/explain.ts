// Human-readable rendering of a row's explanation (for `commission-sync explain`).
import type { ComputedCommission, JsonValue } from './types.ts';

const money = (minor: number | null, currency: string): string => (minor === null ? `? ${currency}` : `${minor} ${currency} minor units`);

function obj(v: JsonValue | undefined): { [key: string]: JsonValue } | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
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
