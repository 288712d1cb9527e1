// Turns one priced payment into commission rows: the row itself plus clawbacks (R8, R10).
import { nextPayoutDayOnOrAfter, payoutDateFor } from './dates.ts';
import { applyFraction, applyRate } from './money.ts';
import type { RefundStep } from './adjustments.ts';
import type { ProgramVersion } from './program.ts';
import type { BillingEvent, ComputedCommission, Explanation, JsonValue, Network } from './types.ts';

/** What the engine decided about one payment, shared by its direct and second-tier rows. */
export interface PaymentFacts {
  payment: BillingEvent;
  version: ProgramVersion | null;
  baseUsdMinor: number | null;
  /** Clearing moment with disputes applied; null = held by an open dispute. */
  clearedAt: Date | null;
  normalClearedAt: Date | null;
  /** A holding dispute was lost at clearedAt: take-backs at that instant count as before clearing. */
  lostAtClearing: boolean;
  refunds: RefundStep[];
  asOf: Date;
  paidKeys: ReadonlySet<string>;
  /** Explanation parts common to every row of this payment. */
  paymentExplanation: { [key: string]: JsonValue };
  flags: string[];
}

export interface LineSpec {
  kind: 'direct' | 'second_tier';
  partnerId: string;
  partnerAccountId: string | null;
  network: Network | null;
  tier: string | null;
  /** The rate applied; "0" for excluded rows. */
  rate: string;
  exclusionReason: string | null;
  flags: string[];
  explanation: { [key: string]: JsonValue };
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function commissionKey(kind: 'direct' | 'second_tier', paymentEventId: string, partnerId: string): string {
  return `${kind}:${paymentEventId}:${partnerId}`;
}

export function clawbackKey(of: 'direct' | 'second_tier', refundEventId: string, partnerId: string): string {
  return `clawback:${of}:${refundEventId}:${partnerId}`;
}

function uniqSorted(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort();
}

export function buildLines(f: PaymentFacts, spec: LineSpec): ComputedCommission[] {
  const p = f.payment;
  const key = commissionKey(spec.kind, p.id, spec.partnerId);
  const paid = f.paidKeys.has(key);
  const flags = [...f.flags, ...spec.flags];
  const common = {
    partnerId: spec.partnerId,
    partnerAccountId: spec.partnerAccountId,
    network: spec.network,
    paymentEventId: p.id,
    tier: spec.tier,
    baseMinor: p.amountMinor,
    baseCurrency: p.currency,
    baseUsdMinor: f.baseUsdMinor,
    paidAt: p.occurredAt,
    ruleVersion: f.version?.version ?? null,
  };

  if (spec.exclusionReason !== null || f.version === null || f.baseUsdMinor === null || p.amountMinor <= 0) {
    const reason = spec.exclusionReason ?? (f.version === null ? 'no_program_version' : f.baseUsdMinor === null ? 'missing_fx_rate' : 'zero_amount');
    // Excluded payments are still rows (amount 0) so nothing disappears silently.
    if (paid) flags.push('paid_row_now_excluded');
    const explanation: Explanation = {
      ...f.paymentExplanation,
      ...spec.explanation,
      kind: spec.kind,
      rate: '0',
      exclusionReason: reason,
      amountMinor: 0,
      amountUsdMinor: 0,
    };
    return [
      {
        ...common,
        key,
        kind: spec.kind,
        sourceEventId: p.id,
        rate: '0',
        amountMinor: 0,
        amountUsdMinor: 0,
        status: paid ? 'paid' : 'void',
        clearedAt: null,
        payoutDate: null,
        exclusionReason: reason,
        flags: uniqSorted(flags),
        explanation,
      },
    ];
  }

  const version = f.version;
  const base = p.amountMinor;
  const full = applyRate(base, spec.rate);
  const fullUsd = applyRate(f.baseUsdMinor, spec.rate);
  // R8: owed after refunding `cum` of the base = commission × (1 − cum / base), rounded (R10).
  const owed = (cum: number): number => applyFraction(full, base - cum, base);
  const owedUsd = (cum: number): number => applyFraction(fullUsd, base - cum, base);

  const clearedAt = f.clearedAt;
  const isPre = (s: RefundStep): boolean =>
    clearedAt === null ||
    s.event.occurredAt.getTime() < clearedAt.getTime() ||
    (f.lostAtClearing && s.event.occurredAt.getTime() === clearedAt.getTime());
  const pre = f.refunds.filter(isPre);
  const post = f.refunds.filter((s) => !isPre(s));
  const cumPre = pre.reduce((acc, s) => acc + s.amountMinor, 0);
  for (const s of f.refunds) flags.push(...s.flags);

  const voided = cumPre >= base;
  const amount = voided ? 0 : owed(cumPre);
  const amountUsd = voided ? 0 : owedUsd(cumPre);
  const rowCleared = voided ? null : clearedAt;
  const status = paid ? 'paid' : voided ? 'void' : rowCleared !== null && rowCleared.getTime() <= f.asOf.getTime() ? 'due' : 'reserve';
  const payoutDate = rowCleared ? payoutDateFor(rowCleared, version.payout.dayOfMonth, version.payout.monthsAfterClearing, version.payout.timeZone) : null;
  if (paid && voided) flags.push('paid_row_refunded_before_clearing');

  const refundExplanation = (s: RefundStep, treatment: string): JsonValue => ({
    eventId: s.event.id,
    kind: s.event.kind,
    documentId: s.event.documentId,
    at: s.event.occurredAt.toISOString(),
    amountMinor: s.amountMinor,
    cumulativeRefundedMinor: s.cumulativeMinor,
    treatment,
  });

  const rows: ComputedCommission[] = [
    {
      ...common,
      key,
      kind: spec.kind,
      sourceEventId: p.id,
      rate: spec.rate,
      amountMinor: amount,
      amountUsdMinor: amountUsd,
      status,
      clearedAt: rowCleared,
      payoutDate,
      exclusionReason: null,
      flags: uniqSorted(flags),
      explanation: {
        ...f.paymentExplanation,
        ...spec.explanation,
        kind: spec.kind,
        rate: spec.rate,
        commissionBeforeRefunds: {
          amountMinor: full,
          amountUsdMinor: fullUsd,
          formula: `ROUND(${base} × ${spec.rate}) = ${full} ${p.currency}; ROUND(${f.baseUsdMinor} × ${spec.rate}) = ${fullUsd} USD`,
        },
        refundAdjustments: [
          ...pre.map((s) => refundExplanation(s, 'before_clearing_reduces_commission')),
          ...post.map((s) => refundExplanation(s, 'after_clearing_clawback')),
        ],
        amountMinor: amount,
        amountUsdMinor: amountUsd,
        voidedByFullRefund: voided,
        clearing: {
          normalClearedAt: iso(f.normalClearedAt),
          clearedAt: iso(rowCleared),
          heldByDispute: clearedAt === null,
          payoutDate,
        },
      },
    },
  ];

  // R8 after clearing: the clawback is the refunded share of the commission, −ROUND(commission ×
  // refunded / base) with halves away from zero (R10; −500.5 → −501, as a spreadsheet gives). Shares
  // of successive refunds are differences of the rounded cumulative share of what was refunded after
  // clearing, so they never sum past what the row pays and a full refund nets exactly to 0:
  // takenBack(base) = ROUND(full × (base − cumPre) / base) = owed(cumPre).
  const takenBack = (c: number): number => applyFraction(full, c - cumPre, base);
  const takenBackUsd = (c: number): number => applyFraction(fullUsd, c - cumPre, base);
  let cum = cumPre;
  // A voided commission has nothing left to claw back; a step that took nothing back (ignored or
  // beyond the base) only shows in the explanation and flags.
  for (const s of voided ? [] : post.filter((x) => x.amountMinor > 0)) {
    const before = cum;
    cum = s.cumulativeMinor;
    const amt = takenBack(before) - takenBack(cum);
    const amtUsd = takenBackUsd(before) - takenBackUsd(cum);
    const ckey = clawbackKey(spec.kind, s.event.id, spec.partnerId);
    const at = s.event.occurredAt;
    const pd =
      version.payout.clawbackPayoutDate === 'next_payout_day'
        ? nextPayoutDayOnOrAfter(at, version.payout.dayOfMonth, version.payout.timeZone)
        : payoutDateFor(at, version.payout.dayOfMonth, version.payout.monthsAfterClearing, version.payout.timeZone);
    rows.push({
      ...common,
      key: ckey,
      kind: 'clawback',
      clawbackOf: spec.kind,
      sourceEventId: s.event.id,
      rate: spec.rate,
      amountMinor: amt,
      amountUsdMinor: amtUsd,
      status: f.paidKeys.has(ckey) ? 'paid' : 'due',
      clearedAt: at,
      payoutDate: pd,
      exclusionReason: null,
      flags: uniqSorted([...f.flags, ...spec.flags, ...s.flags]),
      explanation: {
        ...f.paymentExplanation,
        ...spec.explanation,
        kind: 'clawback',
        clawbackOf: spec.kind,
        rate: spec.rate,
        originalCommissionKey: key,
        commissionBeforeRefunds: { amountMinor: full, amountUsdMinor: fullUsd },
        refund: refundExplanation(s, 'after_clearing_clawback'),
        formula: `−(ROUND(${full} × ${cum - cumPre}/${base}) − ROUND(${full} × ${before - cumPre}/${base})) = ${amt} ${p.currency}`,
        amountMinor: amt,
        amountUsdMinor: amtUsd,
        dueAt: at.toISOString(),
        payoutDate: pd,
      },
    });
  }
  return rows;
}
