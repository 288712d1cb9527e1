// Starts the five fake APIs on free loopback ports and fills them with a world's data in each API's
// own shape: billing (Stripe, Chargebee) holds the truth — customers, subscriptions, invoices with
// their payment chain and settlement FX, refunds, disputes — and the networks (PartnerStack,
// ShareASale, Awin) hold what they report by their own plan, errors included. Also builds the
// Config (connections pointing at the fakes) and the private env holding the fakes' credentials.
import { DateTime } from 'luxon';
import { createPartnerStackFake, type ApiObject, type PartnerStackFake } from '../../connectors/partnerstack/fake-server.ts';
import { startFakeShareASale, fakeSasRow, sasDateTime, type FakeShareASale } from '../../connectors/shareasale/fake-server.ts';
import { startFakeAwin, fakeAwinTransaction, type FakeAwin } from '../../connectors/awin/fake-server.ts';
import { startStripeFake, type StripeFake, type StripeObject } from '../../connectors/stripe/fake-server.ts';
import { startChargebeeFake, type CbObject, type ChargebeeFake } from '../../connectors/chargebee/fake-server.ts';
import { configSchema, type Config } from '../config/schema.ts';
import { convertToUsdMinor } from '../rules/money.ts';
import { minorToDecimal, numericId, type NetworkReport, type World, type WorldPayment } from './build.ts';

export interface Fakes {
  partnerstack: PartnerStackFake;
  shareasale: FakeShareASale;
  awin: FakeAwin;
  stripe: StripeFake;
  chargebee: ChargebeeFake;
  close(): Promise<void>;
}

/** Credentials of the fakes (random per process); they only ever live in the private env object. */
function secret(prefix: string): string {
  return `${prefix}_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

export async function startFakes(): Promise<Fakes> {
  const [partnerstack, shareasale, awin, stripe, chargebee] = await Promise.all([
    createPartnerStackFake({ publicKey: secret('pk'), secretKey: secret('sk') }),
    startFakeShareASale({ token: secret('sas'), secret: secret('sassec'), credits: { used: 0, limit: 1_000_000 } }),
    startFakeAwin({ token: secret('awin'), rateLimit: { requests: 1_000_000, windowMs: 60_000 } }),
    startStripeFake({ apiKey: secret('sk_test') }),
    startChargebeeFake({ apiKey: secret('cb_test') }),
  ]);
  return {
    partnerstack,
    shareasale,
    awin,
    stripe,
    chargebee,
    close: async () => {
      await Promise.allSettled([partnerstack.close(), shareasale.close(), awin.close(), stripe.close(), chargebee.close()]);
    },
  };
}

const sec = (d: Date): number => Math.floor(d.getTime() / 1000);
const ms = (d: Date): number => d.getTime();

// ------------------------------------------------------------------------------------------ billing

export const stripeCustomerId = (cid: string): string => `cus_${cid}`;
export const chargebeeCustomerId = (cid: string): string => `cb_${cid}`;
export const customerKeyOf = (cid: string): string => `ck_${cid}`;

function subscriptionStatus(w: World, subId: string): { stripe: string; chargebee: string; canceledAt: Date | null } {
  const s = w.subscriptions.get(subId)!;
  const canceledAt = s.canceledAt && s.canceledAt <= w.asOf ? s.canceledAt : null;
  if (canceledAt) return { stripe: 'canceled', chargebee: 'cancelled', canceledAt };
  const trialEnd = s.trial ? new Date(s.start.getTime() + s.trial.days * 86_400_000) : null;
  if (trialEnd && trialEnd > w.asOf) return { stripe: 'trialing', chargebee: 'in_trial', canceledAt: null };
  return { stripe: 'active', chargebee: 'active', canceledAt: null };
}

export function stripeObjects(w: World): StripeObject[] {
  const out: StripeObject[] = [];
  const lc = (c: string): string => c.toLowerCase();
  for (const c of w.customers.values()) {
    if (c.billing !== 'stripe') continue;
    out.push({ id: stripeCustomerId(c.id), object: 'customer', created: sec(c.createdAt), email: c.email, name: c.name ?? c.id, metadata: { customer_key: customerKeyOf(c.id), ...(c.test ? { test: 'true' } : {}) }, livemode: false });
  }
  for (const s of w.subscriptions.values()) {
    const c = w.customers.get(s.customer)!;
    if (c.billing !== 'stripe') continue;
    const st = subscriptionStatus(w, s.id);
    const trialEnd = s.trial ? sec(s.start) + s.trial.days * 86_400 : null;
    out.push({
      id: `sub_${s.id}`,
      object: 'subscription',
      customer: stripeCustomerId(c.id),
      status: st.stripe,
      currency: lc(c.currency),
      created: sec(s.start),
      start_date: sec(s.start),
      trial_start: s.trial ? sec(s.start) : null,
      trial_end: trialEnd,
      canceled_at: st.canceledAt ? sec(st.canceledAt) : null,
      ended_at: st.canceledAt ? sec(st.canceledAt) : null,
      cancel_at_period_end: false,
      metadata: {},
      items: { object: 'list', data: [{ id: `si_${s.id}`, price: { id: `price_${s.interval}_${lc(c.currency)}`, currency: lc(c.currency), recurring: { interval: s.interval, interval_count: 1 } }, current_period_start: trialEnd ?? sec(s.start), current_period_end: (trialEnd ?? sec(s.start)) + 30 * 86_400 }] },
    });
  }
  for (const p of w.payments) {
    if (p.billing !== 'stripe') continue;
    out.push(...stripePayment(w, p));
  }
  return out;
}

function stripePayment(w: World, p: WorldPayment): StripeObject[] {
  const cur = p.currency.toLowerCase();
  const gross = p.baseMinor + p.taxMinor;
  const created = sec(p.issuedAt);
  const paid = sec(p.paidAt);
  const suffix = `${p.subscription}_${p.cycle}`;
  const usd = p.currency === 'USD';
  const settleUsd = (amount: number): number => (usd ? amount : convertToUsdMinor(amount, p.currency, p.rate));
  const customer = stripeCustomerId(p.customer);
  const sub = `sub_${p.subscription}`;
  const interval = w.subscriptions.get(p.subscription)!.interval;
  const out: StripeObject[] = [
    {
      id: p.invoiceId,
      object: 'invoice',
      customer,
      currency: cur,
      created,
      status: 'paid',
      billing_reason: p.cycle <= 1 ? 'subscription_create' : 'subscription_cycle',
      amount_due: gross,
      amount_paid: gross,
      amount_remaining: 0,
      subtotal: p.baseMinor,
      total: gross,
      total_excluding_tax: p.baseMinor,
      total_taxes: p.taxMinor ? [{ amount: p.taxMinor, tax_behavior: 'exclusive' }] : [],
      status_transitions: { finalized_at: created, paid_at: paid },
      parent: { type: 'subscription_details', subscription_details: { subscription: sub, metadata: {} } },
      lines: { object: 'list', data: [{ id: `il_${suffix}`, amount: p.baseMinor, description: p.trial ? '1 × Kartra (trial)' : '1 × Kartra', period: { start: created, end: created + 30 * 86_400 }, price: { id: `price_${interval}`, recurring: { interval } }, parent: { subscription_item_details: { subscription: sub, proration: false } } }] },
      metadata: {},
      livemode: false,
    },
    { id: `txn_${suffix}`, object: 'balance_transaction', amount: settleUsd(gross), currency: 'usd', exchange_rate: usd ? null : Number(p.rate), fee: 0, net: settleUsd(gross), created: paid, type: 'charge', reporting_category: 'charge' },
    { id: `ch_${suffix}`, object: 'charge', amount: gross, currency: cur, created: paid, customer, payment_intent: `pi_${suffix}`, balance_transaction: `txn_${suffix}`, amount_refunded: p.refunds.reduce((a, r) => a + r.grossMinor, 0), refunded: p.refunds.length > 0, disputed: !!p.dispute },
    { id: `pi_${suffix}`, object: 'payment_intent', amount: gross, currency: cur, created: paid, customer, latest_charge: `ch_${suffix}`, status: 'succeeded' },
    { id: `inpay_${suffix}`, object: 'invoice_payment', invoice: p.invoiceId, amount_paid: gross, amount_requested: gross, currency: cur, created: paid, is_default: true, status: 'paid', payment: { type: 'payment_intent', payment_intent: `pi_${suffix}` }, status_transitions: { paid_at: paid } },
  ];
  for (const r of p.refunds) {
    out.push(
      { id: `txn_${r.id}`, object: 'balance_transaction', amount: -settleUsd(r.grossMinor), currency: 'usd', exchange_rate: usd ? null : Number(p.rate), created: sec(r.at), type: 'refund' },
      { id: r.id, object: 'refund', amount: r.grossMinor, currency: cur, created: sec(r.at), status: 'succeeded', reason: 'requested_by_customer', charge: `ch_${suffix}`, payment_intent: `pi_${suffix}`, balance_transaction: `txn_${r.id}`, metadata: {} },
    );
  }
  if (p.dispute) {
    const d = p.dispute;
    const bts: Array<Record<string, unknown>> = [{ id: `txn_${d.id}_w`, object: 'balance_transaction', amount: -settleUsd(gross), currency: 'usd', exchange_rate: usd ? null : Number(p.rate), created: sec(d.openedAt), type: 'adjustment', reporting_category: 'dispute' }];
    if (d.outcome === 'won' && d.closedAt) bts.push({ id: `txn_${d.id}_r`, object: 'balance_transaction', amount: settleUsd(gross), currency: 'usd', exchange_rate: usd ? null : Number(p.rate), created: sec(d.closedAt), type: 'adjustment', reporting_category: 'dispute_reversal' });
    const status = d.outcome === 'open' ? 'needs_response' : d.outcome;
    out.push({ id: d.id, object: 'dispute', amount: gross, currency: cur, created: sec(d.openedAt), status, reason: 'fraudulent', charge: `ch_${suffix}`, payment_intent: `pi_${suffix}`, balance_transactions: bts });
  }
  return out;
}

export function chargebeeObjects(w: World): { customers: CbObject[]; subscriptions: CbObject[]; invoices: CbObject[]; credit_notes: CbObject[] } {
  const customers: CbObject[] = [];
  const subscriptions: CbObject[] = [];
  const invoices: CbObject[] = [];
  const creditNotes: CbObject[] = [];
  for (const c of w.customers.values()) {
    if (c.billing !== 'chargebee') continue;
    const t = sec(c.createdAt);
    customers.push({ id: chargebeeCustomerId(c.id), email: c.email, first_name: 'Customer', last_name: c.id, meta_data: { customer_key: customerKeyOf(c.id), ...(c.test ? { test: true } : {}) }, created_at: t, updated_at: t, deleted: false, object: 'customer' });
  }
  for (const s of w.subscriptions.values()) {
    const c = w.customers.get(s.customer)!;
    if (c.billing !== 'chargebee') continue;
    const st = subscriptionStatus(w, s.id);
    const t = sec(s.start);
    const trialEnd = s.trial ? t + s.trial.days * 86_400 : null;
    subscriptions.push({
      id: `cbsub_${s.id}`,
      customer_id: chargebeeCustomerId(c.id),
      status: st.chargebee,
      billing_period: 1,
      billing_period_unit: s.interval,
      currency_code: c.currency,
      trial_start: s.trial ? t : null,
      trial_end: trialEnd,
      started_at: t,
      activated_at: st.chargebee === 'in_trial' ? null : (trialEnd ?? t),
      cancelled_at: st.canceledAt ? sec(st.canceledAt) : null,
      created_at: t,
      updated_at: st.canceledAt ? sec(st.canceledAt) : (trialEnd ?? t),
      subscription_items: [{ item_price_id: `kartra-${s.interval}-${c.currency.toLowerCase()}`, item_type: 'plan' }],
      object: 'subscription',
    });
  }
  for (const p of w.payments) {
    if (p.billing !== 'chargebee') continue;
    const date = sec(p.issuedAt);
    const gross = p.baseMinor + p.taxMinor;
    const sub = `cbsub_${p.subscription}`;
    const rate = Number(p.rate);
    invoices.push({
      id: p.invoiceId,
      customer_id: chargebeeCustomerId(p.customer),
      subscription_id: sub,
      recurring: true,
      first_invoice: p.cycle <= 1,
      status: 'paid',
      date,
      paid_at: sec(p.paidAt),
      sub_total: p.baseMinor,
      tax: p.taxMinor,
      total: gross,
      amount_paid: gross,
      credits_applied: 0,
      currency_code: p.currency,
      exchange_rate: rate,
      line_items: [{ id: `li_${p.invoiceId}`, subscription_id: sub, amount: p.baseMinor, tax_amount: p.taxMinor, discount_amount: 0, item_level_discount_amount: 0, entity_type: 'plan_item_price', entity_id: 'kartra', description: p.trial ? 'Kartra trial' : 'Kartra', date_from: date, date_to: date + 30 * 86_400 }],
      updated_at: sec(p.paidAt),
      deleted: false,
      object: 'invoice',
    });
    const note = (id: string, at: Date, total: number, chargeback: boolean): CbObject => ({
      id,
      customer_id: chargebeeCustomerId(p.customer),
      reference_invoice_id: p.invoiceId,
      type: 'refundable',
      reason_code: chargeback ? 'chargeback' : 'product_unsatisfactory',
      status: chargeback ? 'adjusted' : 'refunded',
      date: sec(at),
      refunded_at: sec(at) + 30,
      total,
      amount_refunded: chargeback ? 0 : total,
      amount_allocated: 0,
      currency_code: p.currency,
      exchange_rate: rate,
      line_items: [{ id: `cli_${id}`, subscription_id: sub, amount: total, tax_amount: 0, discount_amount: 0 }],
      updated_at: sec(at) + 30,
      object: 'credit_note',
    });
    for (const r of p.refunds) creditNotes.push(note(r.id, r.at, r.grossMinor, false));
    // Chargebee records a lost dispute as a chargeback credit note; open/won disputes leave no trace.
    if (p.dispute?.outcome === 'lost' && p.dispute.closedAt) creditNotes.push(note(`cn_${p.dispute.id}`, p.dispute.closedAt, gross, true));
  }
  return { customers, subscriptions, invoices, credit_notes: creditNotes };
}

// ----------------------------------------------------------------------------------------- networks

export const partnershipKey = (affiliate: string): string => `pship_${affiliate}`;
const psCustomerKey = (cid: string): string => `cust_${cid}`;
export const SECOND_TIER_OFFER = 'second_tier';

export function partnerstackObjects(w: World): Record<'groups' | 'partnerships' | 'customers' | 'transactions' | 'rewards', ApiObject[]> {
  const t0 = ms(w.payments.reduce((m, p) => (p.paidAt < m ? p.paidAt : m), w.asOf)) - 86_400_000 * 60;
  const group = { key: 'grp_default', name: 'Kartra affiliates', slug: 'kartra', default: true, archived: false };
  const partnerships: ApiObject[] = [];
  for (const a of w.affiliates.values()) {
    const pk = a.accounts.partnerstack;
    if (!pk) continue;
    const rec = a.recruiter ? w.affiliates.get(a.recruiter)?.accounts.partnerstack : undefined;
    const joined = a.joinedAt ? ms(a.joinedAt) : t0;
    const [first, ...rest] = a.name.split(' ');
    partnerships.push({ key: partnershipKey(a.id), partner_key: pk, email: a.email, first_name: first ?? a.name, last_name: rest.join(' ') || null, group, tier: null, tags: [], m_data: {}, fields: rec ? { recruited_by: rec } : {}, archived: false, joined_at: joined, created_at: joined, updated_at: joined + 1000 });
  }
  const customers: ApiObject[] = [];
  for (const c of w.customers.values()) {
    if (c.referredBy?.network !== 'partnerstack') continue;
    const a = w.affiliates.get(c.referredBy.affiliate)!;
    const t = ms(c.createdAt);
    customers.push({ key: psCustomerKey(c.id), customer_key: customerKeyOf(c.id), email: c.email, name: c.name ?? null, partner_key: a.accounts.partnerstack!, partnership_key: partnershipKey(a.id), provider_key: c.billing === 'stripe' ? stripeCustomerId(c.id) : null, source_type: c.billing, test: false, fields: [], created_at: t, updated_at: t + 10 });
  }
  const transactions = new Map<string, ApiObject>();
  const rewards: ApiObject[] = [];
  for (const r of w.reports) {
    if (r.network !== 'partnerstack') continue;
    const p = w.paymentsByKey.get(r.payment)!;
    const c = w.customers.get(p.customer)!;
    const cref = { key: psCustomerKey(c.id), email: c.email, external_key: customerKeyOf(c.id) };
    if (!transactions.has(p.invoiceId)) {
      transactions.set(p.invoiceId, { key: p.invoiceId, amount: p.baseMinor, amount_usd: p.usdMinor, currency: p.currency, approved: true, archived: false, category_key: null, product_key: `kartra_${w.subscriptions.get(p.subscription)!.interval}`, customer: cref, metadata: {}, test: false, created_at: ms(r.at) - 1000, updated_at: ms(r.at) - 1000 });
    }
    const a = w.affiliates.get(r.affiliate)!;
    rewards.push({
      key: r.id,
      amount: r.amountMinor,
      amount_usd: r.usdMinor,
      currency: r.currency,
      description: `${r.kind === 'direct' ? 'Commission' : 'Second tier commission'} on ${p.invoiceId}`,
      reward_status: r.status,
      customer: cref,
      partnership: { key: partnershipKey(a.id), email: a.email, group },
      transaction: { key: p.invoiceId, amount: p.baseMinor, currency: p.currency },
      invoice: null,
      offer: { key: r.kind === 'direct' ? 'direct' : SECOND_TIER_OFFER, description: r.kind === 'direct' ? 'Direct 40% recurring' : 'Second tier 10% recurring' },
      trigger: { key: 'transaction' },
      action: null,
      created_at: ms(r.at),
      updated_at: ms(r.at),
    });
  }
  return { groups: [{ ...group, created_at: t0, updated_at: t0 }], partnerships, customers, transactions: [...transactions.values()], rewards };
}

function sasRow(r: NetworkReport, p: WorldPayment, zone: string, asOf: Date, organization: string): Record<string, string> {
  const fmt = (d: Date): string => sasDateTime(d, zone);
  const lock = new Date(p.paidAt.getTime() + 30 * 86_400_000);
  return fakeSasRow(
    {
      transId: numericId(r.id),
      userId: r.account,
      transDate: r.at,
      amount: minorToDecimal(r.saleMinor, 'USD'),
      commission: minorToDecimal(r.amountMinor, 'USD'),
      orderNumber: p.invoiceId,
      voided: r.status === 'declined' ? '1' : '',
      lockDate: r.status === 'approved' || r.status === 'paid' ? fmt(lock < asOf ? lock : new Date(asOf.getTime() - 60_000)) : '',
      paidDate: r.status === 'paid' ? fmt(new Date(Math.min(asOf.getTime() - 60_000, lock.getTime() + 15 * 86_400_000))) : '',
      organization,
    },
    zone,
  );
}
export function shareasaleRows(w: World, zone = 'America/Chicago'): Array<Record<string, string>> {
  return w.reports.filter((r) => r.network === 'shareasale').map((r) => sasRow(r, w.paymentsByKey.get(r.payment)!, zone, w.asOf, w.affiliates.get(r.affiliate)?.name ?? ''));
}

export function awinTransactions(w: World, advertiserId: number): ReturnType<typeof fakeAwinTransaction>[] {
  return w.reports
    .filter((r) => r.network === 'awin')
    .map((r) => {
      const p = w.paymentsByKey.get(r.payment)!;
      const status = r.status === 'declined' ? 'declined' : r.status === 'approved' || r.status === 'paid' ? 'approved' : 'pending';
      const t = fakeAwinTransaction({
        id: numericId(r.id),
        publisherId: Number(r.account),
        advertiserId,
        transactionDate: r.at,
        sale: minorToDecimal(r.saleMinor, r.saleCurrency),
        commission: minorToDecimal(r.amountMinor, r.currency),
        currency: r.currency,
        status,
        validationDate: status === 'pending' ? null : new Date(Math.min(w.asOf.getTime() - 60_000, p.paidAt.getTime() + 30 * 86_400_000)),
        orderRef: p.invoiceId,
        siteName: w.affiliates.get(r.affiliate)!.name,
      });
      if (r.status === 'paid') t.paidToPublisher = true;
      return t;
    });
}

/** Fills all five fakes (replacing what they held). */
export function loadWorld(fakes: Fakes, w: World): void {
  const ps = partnerstackObjects(w);
  fakes.partnerstack.store.clear();
  for (const res of ['groups', 'partnerships', 'customers', 'transactions', 'rewards'] as const) fakes.partnerstack.store.put(res, ps[res]);
  // The objects are built here and nowhere else referenced: the stores take them over (no copies).
  fakes.stripe.store.clear();
  fakes.stripe.store.adopt(stripeObjects(w));
  const cb = chargebeeObjects(w);
  fakes.chargebee.store.clear();
  for (const res of ['customers', 'subscriptions', 'invoices', 'credit_notes'] as const) fakes.chargebee.store.adopt(res, cb[res]);
  fakes.shareasale.store.transactions = shareasaleRows(w, fakes.shareasale.store.timezone);
  fakes.awin.store.transactions = awinTransactions(w, fakes.awin.store.advertiserId);
}

/**
 * Builds the five fakes' list indexes now (each fake otherwise sorts a collection on the first list
 * call after a change). The benchmark calls it after loading data, outside the timed runs: a real
 * API does not sort its tables because we asked.
 */
export function warmFakes(fakes: Fakes): void {
  for (const f of [fakes.partnerstack, fakes.shareasale, fakes.awin, fakes.stripe, fakes.chargebee]) f.warmIndexes();
}

// --------------------------------------------------------------------------------------- configuration

export interface DemoSetup {
  config: Config;
  /** Private env: the fakes' credentials under the names the config refers to. Never printed. */
  env: NodeJS.ProcessEnv;
}

export interface DemoConfigOptions {
  /** Base config to extend (database, log, program …); default: the schema's defaults. */
  base?: Partial<Config> | Record<string, unknown>;
  /** Per-connection base URLs (e.g. through a fault proxy); default the fakes' own. */
  urls?: Partial<Record<'partnerstack' | 'shareasale' | 'awin' | 'stripe' | 'chargebee', string>>;
  /** Fast retries for local fakes (default true). */
  fastRetries?: boolean;
}

/**
 * Where the fakes listen and their credentials: all a pipeline needs to reach them, plain data (the
 * benchmark passes it from the process serving the fakes to the process running the pipeline).
 */
export interface FakeEndpoints {
  stripe: { url: string; apiKey: string };
  chargebee: { baseUrl: string; apiKey: string };
  partnerstack: { url: string; publicKey: string; secretKey: string };
  shareasale: { url: string; merchantId: string; token: string; secret: string };
  awin: { url: string; advertiserId: number; token: string };
}

export function fakeEndpoints(fakes: Fakes): FakeEndpoints {
  return {
    stripe: { url: fakes.stripe.url, apiKey: fakes.stripe.apiKey },
    chargebee: { baseUrl: fakes.chargebee.baseUrl, apiKey: fakes.chargebee.apiKey },
    partnerstack: { url: fakes.partnerstack.url, publicKey: fakes.partnerstack.publicKey, secretKey: fakes.partnerstack.secretKey },
    shareasale: { url: fakes.shareasale.url, merchantId: fakes.shareasale.store.merchantId, token: fakes.shareasale.store.token, secret: fakes.shareasale.store.secret },
    awin: { url: fakes.awin.url, advertiserId: fakes.awin.store.advertiserId, token: fakes.awin.store.token },
  };
}

/** The first invoice date of a world (the connections' startDate is two days before it). */
export function worldFirstIssuedAt(w: World): Date {
  return w.payments.reduce((m, p) => (p.issuedAt < m ? p.issuedAt : m), w.asOf);
}

export function demoConfig(fakes: Fakes, w: World, opts: DemoConfigOptions = {}): DemoSetup {
  return demoConfigFor(fakeEndpoints(fakes), worldFirstIssuedAt(w), opts);
}

/** demoConfig from the fakes' endpoints and the world's first invoice date (no World object needed). */
export function demoConfigFor(fakes: FakeEndpoints, firstIssuedAt: Date, opts: DemoConfigOptions = {}): DemoSetup {
  const first = firstIssuedAt;
  const startDate = DateTime.fromJSDate(first, { zone: 'UTC' }).minus({ days: 2 }).toISODate()!;
  const fast = opts.fastRetries !== false;
  const url = (k: keyof NonNullable<DemoConfigOptions['urls']>, own: string): string => opts.urls?.[k] ?? own;
  const raw = {
    ...(opts.base ?? {}),
    connections: [
      { name: 'stripe', type: 'stripe', baseUrl: url('stripe', fakes.stripe.url), credentials: { apiKey: 'DEMO_STRIPE_API_KEY' }, options: { startDate, concurrency: 8, ...(fast ? { backoffBaseMs: 20, backoffMaxMs: 300, maxNetworkRetries: 4, rateLimitRetries: 8 } : {}) } },
      { name: 'chargebee', type: 'chargebee', baseUrl: url('chargebee', fakes.chargebee.baseUrl), credentials: { apiKey: 'DEMO_CHARGEBEE_API_KEY' }, options: { startDate, ...(fast ? { backoffBaseMs: 20, backoffMaxMs: 300, retries: 8 } : {}) } },
      { name: 'partnerstack', type: 'partnerstack', baseUrl: url('partnerstack', fakes.partnerstack.url), credentials: { publicKey: 'DEMO_PS_PUBLIC_KEY', secretKey: 'DEMO_PS_SECRET_KEY' }, options: { secondTier: { offerKeys: [SECOND_TIER_OFFER] }, lookbackDays: 3650, ...(fast ? { retry: { retries: 8, minBackoffMs: 20, maxBackoffMs: 300, maxRetryAfterMs: 2000 } } : {}) } },
      { name: 'shareasale', type: 'shareasale', baseUrl: url('shareasale', fakes.shareasale.url), credentials: { token: 'DEMO_SAS_TOKEN', secret: 'DEMO_SAS_SECRET' }, options: { merchantId: fakes.shareasale.merchantId, startDate, credits: { monthlyQuota: 1_000_000, reserve: 0, checkTokenCount: false }, ...(fast ? { retries: 8, minBackoffMs: 20 } : {}) } },
      { name: 'awin', type: 'awin', baseUrl: url('awin', fakes.awin.url), credentials: { token: 'DEMO_AWIN_TOKEN' }, options: { advertiserId: fakes.awin.advertiserId, startDate, requestsPerMinute: 1000, ...(fast ? { retries: 8, minBackoffMs: 20, limitWaitMs: 200, push: { pollIntervalMs: 20, pollTimeoutMs: 20_000 } } : {}) } },
    ],
  };
  const config = configSchema.parse(raw);
  const env: NodeJS.ProcessEnv = {
    DEMO_STRIPE_API_KEY: fakes.stripe.apiKey,
    DEMO_CHARGEBEE_API_KEY: fakes.chargebee.apiKey,
    DEMO_PS_PUBLIC_KEY: fakes.partnerstack.publicKey,
    DEMO_PS_SECRET_KEY: fakes.partnerstack.secretKey,
    DEMO_SAS_TOKEN: fakes.shareasale.token,
    DEMO_SAS_SECRET: fakes.shareasale.secret,
    DEMO_AWIN_TOKEN: fakes.awin.token,
  };
  return { config, env };
}
