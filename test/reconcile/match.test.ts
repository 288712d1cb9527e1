import { describe, expect, it } from 'vitest';
import { defaultMatchRules, matchCommissions, type MatchRule } from '../../src/reconcile/match.ts';
import type { ExpectedRow, NetworkRow } from '../../src/reconcile/types.ts';

const at = (iso: string) => new Date(iso);
const billing = (id: number, o: Partial<ExpectedRow['billing']> = {}): ExpectedRow['billing'] => ({ id, connection: 'stripe', externalId: `ch_${id}`, documentId: `in_${id}`, paymentExternalId: null, customerId: 7, subscriptionId: null, occurredAt: at('2025-01-10T10:00:00Z'), amountMinor: 10000, currency: 'USD', amountUsdMinor: 10000, takenBackMinor: 0, takenBackUsdMinor: 0, takenBackKinds: [], classification: null, billingReason: null, signupAt: null, ...o });
const exp = (key: string, o: Partial<ExpectedRow> = {}): ExpectedRow => ({ key, kind: 'direct', partnerId: 1, partnerAccountId: 11, network: 'partnerstack', amountMinor: 2000, currency: 'USD', amountUsdMinor: 2000, status: 'reserve', exclusionReason: null, clawbackUsdMinor: 0, contentSig: '99914b932bd37a50b983c5e7c90ae93b', billing: billing(1), ...o });
let nid = 0;
const nc = (o: Partial<NetworkRow> = {}): NetworkRow => ({ id: ++nid, connection: 'ps', network: 'partnerstack', externalId: `rw-${nid}`, partnerAccountId: 11, partnerExternalId: null, customerId: 7, customerExternalKey: null, transactionKey: null, orderRef: null, kindHint: null, amountMinor: 2000, currency: 'USD', amountUsdMinor: 2000, saleAmountMinor: null, saleCurrency: null, status: 'approved', occurredAt: at('2025-01-10T11:00:00Z'), clickAt: null, description: null, ...o });
const rules = defaultMatchRules({ windowHours: 48 });

describe('matchCommissions (pure, rules as data)', () => {
  it('pairs a direct and a second-tier reward on one payment by kind and partner, without invoice ids', () => {
    const direct = exp('d');
    const second = exp('s', { kind: 'second_tier', partnerId: 2, partnerAccountId: 22, amountMinor: 1000 });
    // No kind hints: the partner account decides which is which.
    const r = matchCommissions([nc({ partnerAccountId: 22, amountMinor: 1000 }), nc()], [direct, second], rules);
    expect(r.pairs.map((p) => [p.network.partnerAccountId, p.expected.key, p.rule])).toEqual([
      [22, 's', 'customer_time'],
      [11, 'd', 'customer_time'],
    ]);
    expect(r.unmatchedNetwork).toEqual([]);
  });

  it('tries rules in order: reference, then customer + sale amount + time, then customer + time', () => {
    const a = exp('a', { billing: billing(1) });
    const b = exp('b', { billing: billing(2, { amountMinor: 5000, occurredAt: at('2025-01-10T12:00:00Z') }) });
    const byRef = nc({ transactionKey: 'in_2', occurredAt: at('2025-01-10T10:00:00Z') });
    const byAmount = nc({ saleAmountMinor: 10050, saleCurrency: 'USD' }); // 50 off on 10000: within 1%
    const r = matchCommissions([byRef, byAmount], [a, b], rules);
    expect(r.pairs.map((p) => [p.expected.key, p.rule])).toEqual([
      ['b', 'reference'],
      ['a', 'customer_amount_time'],
    ]);
  });

  it('leaves rows outside the time window unmatched and flags repeats as duplicates', () => {
    const e = exp('e');
    const late = nc({ occurredAt: at('2025-01-13T10:00:01Z') }); // 72 h after: outside 48 h
    expect(matchCommissions([late], [e], rules).unmatchedNetwork).toHaveLength(1);
    const first = nc({ transactionKey: 'in_1' });
    const again = nc({ transactionKey: 'in_1' });
    const r = matchCommissions([first, again], [e], rules);
    expect(r.duplicates.map((d) => [d.network.id, d.original.id])).toEqual([[again.id, first.id]]);
  });

  it('accepts custom rules: contains on the description', () => {
    const custom: MatchRule[] = [{ name: 'memo', criteria: [{ field: 'description', operator: 'contains' }] }];
    const r = matchCommissions([nc({ customerId: null, description: 'Sale for invoice in_1 (annual)' })], [exp('x')], custom);
    expect(r.pairs.map((p) => p.rule)).toEqual(['memo']);
  });
});
