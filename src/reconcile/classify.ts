// Pure classification of a match result into discrepancies. Billing is the truth for money and
// state, the computed commission is what the rules owe, the network row is what was reported.
// Every finding carries a fingerprint built from its kind and the natural keys it links, so the
// same problem keeps the same identity across runs (run.ts upserts on it).
import { applyFraction } from '../rules/money.ts';
import type { MatchResult } from './match.ts';
import { severityRank, type BillingFacts, type DiscrepancyKind, type ExpectedRow, type Finding, type JsonValue, type NetworkRow, type Severity, type Tolerance } from './types.ts';

export interface ClassifyContext {
  network: string;
  tolerance: Tolerance;
  severity: { criticalUsdMinor: number; highUsdMinor: number; mediumUsdMinor: number };
  now: Date;
  /** Payments younger than this are not reported missing yet. */
  graceHours: number;
  attributionWindowDays: number;
  periodOf(at: Date): string;
  partnerOfAccount(accountId: number | null): number | null;
}

const TAKEN_BACK_REASON: Record<string, string> = { refund: 'refunded', chargeback: 'charged_back', reversal: 'reversed', dispute_lost: 'charged_back' };
const SETTLED_STATUSES = new Set(['approved', 'scheduled', 'paid']);

export function severityFor(usdMinor: number, ctx: Pick<ClassifyContext, 'severity'>, floor: Severity = 'info'): Severity {
  const s = ctx.severity;
  const bySize: Severity = usdMinor >= s.criticalUsdMinor ? 'critical' : usdMinor >= s.highUsdMinor ? 'high' : usdMinor >= s.mediumUsdMinor ? 'medium' : usdMinor > 0 ? 'low' : 'info';
  return severityRank(bySize) >= severityRank(floor) ? bySize : floor;
}

/** USD value of a network amount: reported USD, else the payment's own rate when currencies agree. */
export function networkUsd(n: NetworkRow, ref: BillingFacts | undefined): number | null {
  if (n.amountUsdMinor !== null) return n.amountUsdMinor;
  if (n.currency.toUpperCase() === 'USD') return n.amountMinor;
  if (ref && ref.currency.toUpperCase() === n.currency.toUpperCase() && ref.amountUsdMinor !== null && ref.amountMinor !== 0) {
    return applyFraction(n.amountMinor, ref.amountUsdMinor, ref.amountMinor);
  }
  return null;
}

/** What the rules owe net of clawbacks, in the commission's currency and in USD. */
function owed(e: ExpectedRow): { minor: number; usd: number } {
  if (e.exclusionReason !== null || e.status === 'void') return { minor: 0, usd: 0 };
  const usd = (e.amountUsdMinor ?? 0) - Math.abs(e.clawbackUsdMinor);
  const minor = e.clawbackUsdMinor === 0 || !e.amountUsdMinor ? e.amountMinor : applyFraction(e.amountMinor, usd, e.amountUsdMinor);
  return { minor, usd };
}

/** Outside tolerance when the difference exceeds both the absolute and the relative allowance. */
export function beyondTolerance(diffMinor: number, expectedMinor: number, tol: Tolerance): boolean {
  const d = Math.abs(diffMinor);
  if (d <= tol.absMinor) return false;
  const ppm = Math.round(tol.relative * 1_000_000);
  return !(ppm > 0 && d * 1_000_000 <= ppm * Math.abs(expectedMinor));
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function networkDetail(n: NetworkRow, usd: number | null): JsonValue {
  return {
    id: n.id,
    connection: n.connection,
    externalId: n.externalId,
    status: n.status,
    kindHint: n.kindHint,
    amountMinor: n.amountMinor,
    currency: n.currency,
    amountUsdMinor: usd,
    saleAmountMinor: n.saleAmountMinor,
    transactionKey: n.transactionKey,
    orderRef: n.orderRef,
    partnerAccountId: n.partnerAccountId,
    partnerExternalId: n.partnerExternalId,
    customerExternalKey: n.customerExternalKey,
    occurredAt: iso(n.occurredAt),
    clickAt: iso(n.clickAt),
  };
}

function billingDetail(b: BillingFacts): JsonValue {
  return {
    id: b.id,
    connection: b.connection,
    externalId: b.externalId,
    documentId: b.documentId,
    amountMinor: b.amountMinor,
    currency: b.currency,
    amountUsdMinor: b.amountUsdMinor,
    occurredAt: iso(b.occurredAt),
    takenBackMinor: b.takenBackMinor,
    takenBackKinds: b.takenBackKinds,
    classification: b.classification,
  };
}

function computedDetail(e: ExpectedRow): JsonValue {
  return {
    key: e.key,
    kind: e.kind,
    partnerId: e.partnerId,
    partnerAccountId: e.partnerAccountId,
    amountMinor: e.amountMinor,
    currency: e.currency,
    amountUsdMinor: e.amountUsdMinor,
    clawbackUsdMinor: e.clawbackUsdMinor,
    status: e.status,
    exclusionReason: e.exclusionReason,
    // explanation: not copied; the discrepancy names this commission (run.ts, migration 015)
  };
}

export function classify(result: MatchResult, ctx: ClassifyContext): Finding[] {
  const out = new Map<string, Finding>();
  const add = (f: Finding): void => {
    if (!out.has(f.fingerprint)) out.set(f.fingerprint, f);
  };

  const base = (kind: DiscrepancyKind, refs: string, n: NetworkRow | null, e: ExpectedRow | null): Omit<Finding, 'severity' | 'usdAtStakeMinor' | 'detail' | 'expectedMinor' | 'reportedMinor' | 'currency'> => ({
    fingerprint: `${kind}|${refs}`,
    kind,
    network: ctx.network,
    connection: n?.connection ?? null,
    partnerId: e?.partnerId ?? ctx.partnerOfAccount(n?.partnerAccountId ?? null),
    partnerAccountId: e?.partnerAccountId ?? n?.partnerAccountId ?? null,
    billingEventId: e?.billing.id ?? null,
    networkCommissionId: n?.id ?? null,
    computedCommissionKey: e?.key ?? null,
    period: ctx.periodOf(e ? e.billing.occurredAt : n!.occurredAt),
  });
  const pairRefs = (n: NetworkRow, e: ExpectedRow): string => `nc:${n.connection}/${n.externalId}|cc:${e.key}`;

  const classifyPair = (n: NetworkRow, e: ExpectedRow, rule: string, adjustments: NetworkRow[]): void => {
    const nUsd = networkUsd(n, e.billing);
    const common = { matchRule: rule, network: networkDetail(n, nUsd), computed: computedDetail(e), billing: billingDetail(e.billing) };
    const due = owed(e);
    const refs = pairRefs(n, e);

    // R1 (info only): a click reported long before the sign-up.
    if (n.clickAt) {
      const signup = e.billing.signupAt ?? e.billing.occurredAt;
      const days = (signup.getTime() - n.clickAt.getTime()) / 86_400_000;
      if (days > ctx.attributionWindowDays) {
        add({
          ...base('attribution_window_exceeded', `pa:${n.partnerAccountId ?? n.partnerExternalId}|cust:${e.billing.customerId}`, n, e),
          severity: 'info',
          usdAtStakeMinor: 0,
          expectedMinor: null,
          reportedMinor: null,
          currency: null,
          detail: { ...common, clickAt: iso(n.clickAt), signupAt: iso(signup), days: Math.floor(days), windowDays: ctx.attributionWindowDays },
        });
      }
    }

    const declined = n.status === 'declined';
    // No qualifying payment (trial, test customer, self-referral …): nothing is owed at all.
    if (e.exclusionReason !== null) {
      if (declined) return;
      add({
        ...base('unexpected_in_network', refs, n, e),
        severity: severityFor(nUsd ?? 0, ctx),
        usdAtStakeMinor: nUsd ?? 0,
        expectedMinor: 0,
        reportedMinor: n.amountMinor,
        currency: n.currency,
        detail: { ...common, reason: e.exclusionReason },
      });
      return;
    }

    // Billing took the whole payment back, yet the network still counts the commission.
    const b = e.billing;
    if (b.takenBackMinor >= b.amountMinor && b.amountMinor > 0) {
      if (declined) return;
      const reason = TAKEN_BACK_REASON[b.takenBackKinds[b.takenBackKinds.length - 1] ?? 'refund'] ?? 'refunded';
      add({
        ...base('status_mismatch', refs, n, e),
        severity: severityFor(nUsd ?? 0, ctx, SETTLED_STATUSES.has(n.status) ? 'medium' : 'low'),
        usdAtStakeMinor: nUsd ?? 0,
        expectedMinor: 0,
        reportedMinor: n.amountMinor,
        currency: n.currency,
        detail: { ...common, reason: `network_${n.status}_billing_${reason}` },
      });
      return;
    }

    if (declined) {
      if (due.minor <= 0) return;
      add({
        ...base('status_mismatch', refs, n, e),
        severity: severityFor(due.usd, ctx),
        usdAtStakeMinor: due.usd,
        expectedMinor: due.minor,
        reportedMinor: 0,
        currency: e.currency,
        detail: { ...common, reason: 'network_declined_owed' },
      });
      return;
    }

    // Attributed to someone else (different person, not merely another account of the same one).
    if (n.partnerAccountId !== null && e.partnerAccountId !== null && n.partnerAccountId !== e.partnerAccountId) {
      const np = ctx.partnerOfAccount(n.partnerAccountId);
      if (np === null || np !== e.partnerId) {
        add({
          ...base('partner_mismatch', refs, n, e),
          severity: severityFor(Math.max(due.usd, nUsd ?? 0), ctx),
          usdAtStakeMinor: Math.max(due.usd, nUsd ?? 0),
          expectedMinor: due.minor,
          reportedMinor: n.amountMinor,
          currency: e.currency,
          detail: { ...common, reportedPartnerId: np, expectedPartnerId: e.partnerId },
        });
        return;
      }
    }

    compareAmounts(n, e, rule, adjustments, refs, common);
  };

  const compareAmounts = (n: NetworkRow, e: ExpectedRow, rule: string, adjustments: NetworkRow[], refs: string, common: { [k: string]: JsonValue }): void => {
    const due = owed(e);
    const counted = [n, ...adjustments.filter((a) => a !== n)].filter((x) => x.status !== 'declined' && x.status !== 'deleted');
    let diffMinor: number;
    let diffUsd: number;
    let expectedMinor: number;
    let reportedMinor: number;
    let currency: string;
    if (counted.every((x) => x.currency.toUpperCase() === e.currency.toUpperCase())) {
      reportedMinor = counted.reduce((s, x) => s + x.amountMinor, 0);
      expectedMinor = due.minor;
      currency = e.currency;
      diffMinor = reportedMinor - expectedMinor;
      diffUsd = e.amountUsdMinor && e.amountMinor ? applyFraction(diffMinor, e.amountUsdMinor, e.amountMinor) : e.currency.toUpperCase() === 'USD' ? diffMinor : networkUsd({ ...n, amountMinor: diffMinor, amountUsdMinor: null }, e.billing) ?? 0;
    } else {
      const usds = counted.map((x) => networkUsd(x, e.billing));
      if (usds.some((u) => u === null)) return; // cannot compare without a USD value; nothing to claim
      reportedMinor = usds.reduce<number>((s, u) => s + (u ?? 0), 0);
      expectedMinor = due.usd;
      currency = 'USD';
      diffMinor = reportedMinor - expectedMinor;
      diffUsd = diffMinor;
    }
    if (!beyondTolerance(diffMinor, expectedMinor, ctx.tolerance)) return;
    add({
      ...base('amount_mismatch', refs, n, e),
      severity: severityFor(Math.abs(diffUsd), ctx),
      usdAtStakeMinor: Math.abs(diffUsd),
      expectedMinor,
      reportedMinor,
      currency,
      detail: {
        ...common,
        matchRule: rule,
        direction: diffMinor > 0 ? 'network_over' : 'network_under',
        diffMinor,
        diffUsdMinor: diffUsd,
        tolerance: { absMinor: ctx.tolerance.absMinor, relative: ctx.tolerance.relative },
        adjustments: adjustments.map((a) => a.externalId),
      },
    });
  };

  for (const p of result.pairs) classifyPair(p.network, p.expected, p.rule, result.adjustments.get(p.expected.key) ?? []);

  for (const d of result.duplicates) {
    if (d.network.status === 'declined') continue;
    const nUsd = networkUsd(d.network, d.expected.billing);
    add({
      ...base('duplicate_in_network', `nc:${d.network.connection}/${d.network.externalId}`, d.network, d.expected),
      severity: severityFor(nUsd ?? 0, ctx, 'low'),
      usdAtStakeMinor: nUsd ?? 0,
      expectedMinor: 0,
      reportedMinor: d.network.amountMinor,
      currency: d.network.currency,
      detail: { matchRule: d.rule, network: networkDetail(d.network, nUsd), original: networkDetail(d.original, networkUsd(d.original, d.expected.billing)), computed: computedDetail(d.expected), billing: billingDetail(d.expected.billing) },
    });
  }

  for (const n of result.unmatchedNetwork) {
    if (n.status === 'declined') continue;
    const nUsd = networkUsd(n, undefined);
    add({
      ...base('unexpected_in_network', `nc:${n.connection}/${n.externalId}`, n, null),
      severity: severityFor(nUsd ?? 0, ctx),
      usdAtStakeMinor: nUsd ?? 0,
      expectedMinor: 0,
      reportedMinor: n.amountMinor,
      currency: n.currency,
      detail: { reason: 'no_matching_payment', network: networkDetail(n, nUsd) },
    });
  }

  const graceMs = ctx.graceHours * 3_600_000;
  for (const e of result.unmatchedExpected) {
    if (e.network !== ctx.network) continue;
    const adj = result.adjustments.get(e.key) ?? [];
    const first = adj[0];
    if (first) {
      // Only our own correction reward stands for it: compare that.
      compareAmounts(first, e, 'adjustment', adj, pairRefs(first, e), { matchRule: 'adjustment', computed: computedDetail(e), billing: billingDetail(e.billing) });
      continue;
    }
    const due = owed(e);
    if (due.minor <= 0) continue;
    if (ctx.now.getTime() - e.billing.occurredAt.getTime() < graceMs) continue;
    add({
      ...base('missing_in_network', `cc:${e.key}`, null, e),
      severity: severityFor(due.usd, ctx),
      usdAtStakeMinor: due.usd,
      expectedMinor: due.minor,
      reportedMinor: null,
      currency: e.currency,
      detail: { computed: computedDetail(e), billing: billingDetail(e.billing) },
    });
  }
  return [...out.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
}
