// Pure matching of network-reported commissions to computed commissions (with their billing facts).
// Matching rules are data in the style of Blnk: an ordered list of named rules, each a list of
// criteria { field, operator, tolerance }. A network row is matched by the first rule whose criteria
// all hold for some still-unmatched computed row; among several candidates the same partner account,
// then the same kind, then the closest time wins. Nothing here does I/O.
import type { ExpectedRow, NetworkRow } from './types.ts';

export type MatchOperator = 'equals' | 'within' | 'contains';
export type MatchField = 'reference' | 'customer' | 'saleAmount' | 'saleCurrency' | 'occurredAt' | 'kind' | 'partner' | 'description';

export interface MatchCriterion {
  field: MatchField;
  operator: MatchOperator;
  /** For `within`: |a − b| ≤ abs, or ≤ relative × |b| (b = the computed/billing side). */
  tolerance?: { abs?: number; relative?: number };
  /** When true a missing value on either side passes (e.g. networks that do not report the tier). */
  optional?: boolean;
}

export interface MatchRule {
  name: string;
  criteria: MatchCriterion[];
}

type Scalar = string | number;
interface FieldDef {
  network(n: NetworkRow): Scalar[];
  expected(e: ExpectedRow): Scalar[];
}

const present = (xs: Array<Scalar | null | undefined>): Scalar[] => xs.filter((x): x is Scalar => x !== null && x !== undefined && x !== '');

/** How each field reads on both sides. A field yields a list: a reference may be any of several ids. */
export const FIELDS: Record<MatchField, FieldDef> = {
  // Transaction key / order reference on the network side against the payment id, invoice id
  // (document) and charge id on the billing side.
  reference: {
    network: (n) => present([n.transactionKey, n.orderRef]),
    expected: (e) => present([e.billing.externalId, e.billing.documentId, e.billing.paymentExternalId]),
  },
  customer: { network: (n) => present([n.customerId]), expected: (e) => present([e.billing.customerId]) },
  saleAmount: { network: (n) => present([n.saleAmountMinor]), expected: (e) => [e.billing.amountMinor] },
  saleCurrency: { network: (n) => present([n.saleCurrency?.toUpperCase()]), expected: (e) => [e.billing.currency.toUpperCase()] },
  occurredAt: { network: (n) => [n.occurredAt.getTime()], expected: (e) => [e.billing.occurredAt.getTime()] },
  kind: { network: (n) => present([n.kindHint]), expected: (e) => [e.kind] },
  partner: { network: (n) => present([n.partnerAccountId]), expected: (e) => present([e.partnerAccountId]) },
  description: { network: (n) => present([n.description]), expected: (e) => present([e.billing.documentId, e.billing.externalId]) },
};

function within(a: number, b: number, tol: MatchCriterion['tolerance']): boolean {
  const diff = Math.abs(a - b);
  if (diff <= (tol?.abs ?? 0)) return true;
  // relative × |b| compared without floats on money: scale the fraction to parts per million.
  const ppm = Math.round((tol?.relative ?? 0) * 1_000_000);
  return ppm > 0 && diff * 1_000_000 <= ppm * Math.abs(b);
}

export function criterionHolds(c: MatchCriterion, n: NetworkRow, e: ExpectedRow): boolean {
  const def = FIELDS[c.field];
  const left = def.network(n);
  const right = def.expected(e);
  if (left.length === 0 || right.length === 0) return c.optional === true;
  switch (c.operator) {
    case 'equals':
      return left.some((l) => right.some((r) => String(l) === String(r)));
    case 'within':
      return left.some((l) => right.some((r) => typeof l === 'number' && typeof r === 'number' && within(l, r, c.tolerance)));
    case 'contains':
      return left.some((l) => right.some((r) => String(r).length > 0 && String(l).includes(String(r))));
  }
}

export function ruleHolds(rule: MatchRule, n: NetworkRow, e: ExpectedRow): boolean {
  return rule.criteria.every((c) => criterionHolds(c, n, e));
}

/**
 * The default rules. By reference first (transaction key / invoice id / order ref); then customer +
 * sale amount + time window; then customer + time window alone, because PartnerStack rewards carry
 * neither an invoice id nor a sale amount. Kind (direct vs second tier) must agree when reported.
 */
export function defaultMatchRules(opts: { windowHours: number; saleAmountTolerance?: { abs: number; relative: number } }): MatchRule[] {
  const windowMs = Math.round(opts.windowHours * 3_600_000);
  const kind: MatchCriterion = { field: 'kind', operator: 'equals', optional: true };
  return [
    { name: 'reference', criteria: [{ field: 'reference', operator: 'equals' }, kind] },
    {
      name: 'customer_amount_time',
      criteria: [
        { field: 'customer', operator: 'equals' },
        { field: 'saleCurrency', operator: 'equals' },
        { field: 'saleAmount', operator: 'within', tolerance: opts.saleAmountTolerance ?? { abs: 100, relative: 0.01 } },
        { field: 'occurredAt', operator: 'within', tolerance: { abs: windowMs } },
        kind,
      ],
    },
    {
      name: 'customer_time',
      criteria: [
        { field: 'customer', operator: 'equals' },
        { field: 'occurredAt', operator: 'within', tolerance: { abs: windowMs } },
        kind,
      ],
    },
  ];
}

export interface MatchedPair {
  network: NetworkRow;
  expected: ExpectedRow;
  rule: string;
}

export interface MatchResult {
  pairs: MatchedPair[];
  /** Network rows that repeat a commission another network row already matched. */
  duplicates: Array<MatchedPair & { original: NetworkRow }>;
  unmatchedNetwork: NetworkRow[];
  unmatchedExpected: ExpectedRow[];
  /** Correction rewards we created ourselves (description tagged [cs:<commission_key>]). */
  adjustments: Map<string, NetworkRow[]>;
}

/**
 * Marker in the description of rewards this tool created ([cs:<hash of the correction's
 * idempotency key>], written by the PartnerStack connector). run.ts maps markers back to the
 * commission they corrected through the corrections table, so such rewards count as adjustments
 * of that commission rather than as unexpected rewards.
 */
export const ADJUSTMENT_TAG = /\[(cs:[0-9a-f]{16})\]/;

function score(n: NetworkRow, e: ExpectedRow): [number, number, number, string] {
  return [
    n.partnerAccountId !== null && n.partnerAccountId === e.partnerAccountId ? 0 : 1,
    n.kindHint !== null && n.kindHint === e.kind ? 0 : 1,
    Math.abs(n.occurredAt.getTime() - e.billing.occurredAt.getTime()),
    e.key,
  ];
}
function better(a: [number, number, number, string], b: [number, number, number, string]): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number);
  return a[3] < b[3];
}

/** The first `equals` criterion that is not optional gives a blocking index, so matching is not O(n²). */
function blockingField(rule: MatchRule): MatchField | undefined {
  return rule.criteria.find((c) => c.operator === 'equals' && !c.optional)?.field;
}

function indexBy(rows: ExpectedRow[], field: MatchField): Map<string, ExpectedRow[]> {
  const idx = new Map<string, ExpectedRow[]>();
  for (const e of rows) {
    for (const v of new Set(FIELDS[field].expected(e).map(String))) {
      const list = idx.get(v);
      if (list) list.push(e);
      else idx.set(v, [e]);
    }
  }
  return idx;
}

function candidatesFor(rule: MatchRule, n: NetworkRow, all: ExpectedRow[], idx: Map<string, ExpectedRow[]> | undefined, field: MatchField | undefined): ExpectedRow[] {
  if (!idx || !field) return all;
  const out = new Set<ExpectedRow>();
  for (const v of FIELDS[field].network(n)) for (const e of idx.get(String(v)) ?? []) out.add(e);
  return [...out];
}

export function matchCommissions(networkRows: NetworkRow[], expectedRows: ExpectedRow[], rules: MatchRule[], opts: { adjustmentOf?: (marker: string) => string | undefined } = {}): MatchResult {
  const adjustments = new Map<string, NetworkRow[]>();
  const live: NetworkRow[] = [];
  for (const n of networkRows) {
    if (n.status === 'deleted') continue; // the network withdrew it: nothing reported
    const tag = n.description ? ADJUSTMENT_TAG.exec(n.description) : null;
    const key = tag?.[1] ? opts.adjustmentOf?.(tag[1]) : undefined;
    if (key) {
      const list = adjustments.get(key) ?? [];
      list.push(n);
      adjustments.set(key, list);
    } else live.push(n);
  }
  // Deterministic order: oldest first, then by id, so re-runs pair the same rows.
  live.sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || a.id - b.id);
  const matchedBy = new Map<string, NetworkRow>();
  const pairs: MatchedPair[] = [];
  let unmatched = live;
  const indexes = rules.map((r) => {
    const f = blockingField(r);
    return { field: f, idx: f ? indexBy(expectedRows, f) : undefined };
  });

  rules.forEach((rule, i) => {
    const { field, idx } = indexes[i]!;
    const rest: NetworkRow[] = [];
    for (const n of unmatched) {
      let best: ExpectedRow | undefined;
      let bestScore: [number, number, number, string] | undefined;
      for (const e of candidatesFor(rule, n, expectedRows, idx, field)) {
        if (matchedBy.has(e.key) || !ruleHolds(rule, n, e)) continue;
        const s = score(n, e);
        if (!bestScore || better(s, bestScore)) {
          best = e;
          bestScore = s;
        }
      }
      if (best) {
        matchedBy.set(best.key, n);
        pairs.push({ network: n, expected: best, rule: rule.name });
      } else rest.push(n);
    }
    unmatched = rest;
  });

  // A leftover row that would have matched an already-taken commission repeats it.
  const duplicates: MatchResult['duplicates'] = [];
  const leftovers: NetworkRow[] = [];
  for (const n of unmatched) {
    let dup: (MatchedPair & { original: NetworkRow }) | undefined;
    for (let i = 0; i < rules.length && !dup; i++) {
      const rule = rules[i]!;
      const { field, idx } = indexes[i]!;
      for (const e of candidatesFor(rule, n, expectedRows, idx, field)) {
        const original = matchedBy.get(e.key);
        if (original && ruleHolds(rule, n, e)) {
          dup = { network: n, expected: e, rule: rule.name, original };
          break;
        }
      }
    }
    if (dup) duplicates.push(dup);
    else leftovers.push(n);
  }

  return {
    pairs,
    duplicates,
    unmatchedNetwork: leftovers,
    unmatchedExpected: expectedRows.filter((e) => !matchedBy.has(e.key)),
    adjustments,
  };
}
