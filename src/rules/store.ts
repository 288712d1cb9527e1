// The rules engine's database adapter: the only module of src/rules that touches the database.
//
// computeAndStore() walks partners in keyset order, in batches of at most `batchSize` partners and
// `batchEvents` billing events (estimated from the claims; a partner with more is alone in its
// batch), loads just what those partners' commissions depend on — accounts, attributions (all
// claims on their customers, so R1's last-click choice is the same whatever the batch), customers
// with their emails and billing identities, subscriptions, billing events, recruiters, already-paid
// keys — runs the pure engine per partner, and turns each partner's rows into write-ready rows right
// away (the engine's objects are dropped). Memory is bounded by one batch, never by the tables.
//
// Idempotent: rows are upserted on their deterministic key (same inputs → same rows, same ids), and
// only when their content changed. Each row carries content_hash (migration 006): the batch's stored
// (key, status, hash) are read in one query and only rows whose hash or status differ are sent
// (as_of / computed_at are the stamps of the run that last changed a row). In the same transaction,
// the stored rows that batch's partners produced before and no longer produce (key gone: attribution
// moved, event deleted…) are deleted — except paid rows, which are never edited nor deleted (R8).
// Ids are bigints in the database and strings in the engine; keys therefore read like
// `direct:<billing_events.id>:<partners.id>`.
//
// Incremental by default: only the partners whose rows the changes since the last run can affect
// are recomputed (src/rules/incremental.ts has the dependency analysis), and a partner whose only
// change is new payments after its whole known history gets only those payments' rows computed
// (the append-only shortcut; new payments in the middle of its history: the rows of every payment
// from the first new one on); `full` recomputes all.
import { DISCREPANCY_WRITE_LOCK } from '../db/locks.ts';
import { resolveShippedPath } from '../util/paths.ts';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { chunk, takeFront } from '../util/chunk.ts';
import { pauseEvery, type Pause } from '../util/pause.ts';
import { writeBehind } from '../util/write-behind.ts';
import { isPglite } from '../db/connection.ts';
import { bulkInsert, statementChars, upsertClause } from '../db/bulk.ts';
import { foldKeptSums } from '../db/kept-sums.ts';
import { UserError } from '../util/errors.ts';
import { loadChangeCursor, readChangeWatermark, saveChangeCursor } from '../db/changes.ts';
import { computePartnerCommissions, resolveAttributions, type PricedPayment, type UnmatchedEvent } from './engine.ts';
import type { CountableSale } from './tiers.ts';
import { createFxTable, DECIMAL_RATE_PATTERN, type FxTable } from './money.ts';
import { advanceClearedRows, agencyOwnerState, findAffectedPartners, fxCurrencyState, PRODUCER_SQL, type AppendWindow, type FxCurrencyState } from './incremental.ts';
import { buildPayoutStatements } from './payouts.ts';
import { notePlannerWrites, refreshPlannerStats } from '../db/planner-stats.ts';
import { loadProgramsFromDir } from './program-loader.ts';
import type { ProgramVersion } from './program.ts';
import type {
  Attribution,
  BillingEvent,
  BillingEventKind,
  BillingSystem,
  CommissionKind,
  CommissionStatus,
  ComputedCommission,
  Customer,
  Explanation,
  FxRate,
  Network,
  Partner,
  PartnerAccount,
  PlanInterval,
  Subscription,
} from './types.ts';

export const DEFAULT_PARTNER_BATCH_SIZE = 500;
/** Billing events per batch (a partner with more is alone in its batch): bounds a batch's memory. */
export const DEFAULT_BATCH_EVENTS = 5_000;
/** A stored sale read as a prior sale, as a share of a loaded billing event, when sizing batches. */
const STORED_SALE_WEIGHT = 0.25;
const IN_CHUNK = 1000;
const WRITE_CHUNK = 250;

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const dateOf = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : dateOf(v));
const json = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const trimCur = (v: unknown): string => String(v).trim().toUpperCase();

/** "1.100000000000" → "1.1", "1.00000000" → "1": numeric columns back to exact decimal strings. */
export function normalizeDecimal(v: unknown): string {
  const s = String(v);
  if (!s.includes('.')) return s;
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

/** A date column as yyyy-mm-dd whatever the driver hands back. */
function dateOnly(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  return String(v).slice(0, 10);
}

/** A JS array bound as one PostgreSQL array parameter (`= ANY(?::bigint[])`). */
const asArray = (xs: readonly (number | string)[]): Knex.Value => xs as unknown as Knex.Value;

/** As inChunks, for `= ANY(array)` look-ups (one bind parameter, so far bigger chunks). */
async function inBigChunks<T>(ids: readonly (number | string)[], load: (part: (number | string)[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (const part of chunk([...ids], 20_000)) out.push(...(await load(part)));
  return out;
}

async function inChunks<T>(ids: readonly (number | string)[], load: (part: (number | string)[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (const part of chunk([...ids], IN_CHUNK)) out.push(...(await load(part)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Program and FX

/** The configured program's versions (config.program.dir / config.program.name). */
export async function loadProgramVersions(config: Pick<Config, 'program'>): Promise<ProgramVersion[]> {
  const dir = resolveShippedPath(config.program.dir);
  let programs;
  try {
    programs = await loadProgramsFromDir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`program.dir: no such directory ${dir}`);
    throw err;
  }
  const p = programs.find((x) => x.program === config.program.name);
  if (!p) throw new UserError(`program.name: no program "${config.program.name}" in ${dir} (found: ${programs.map((x) => x.program).join(', ') || 'none'})`);
  return p.versions;
}

const fxCsvRow = z.object({
  currency: z.string().trim().regex(/^[A-Za-z]{3}$/, 'a 3-letter currency code').transform((s) => s.toUpperCase()),
  date: z.string().trim().regex(/^\d{4}-\d{2}-\d{2}$/, 'yyyy-mm-dd'),
  usd_per_unit: z.string().trim().regex(DECIMAL_RATE_PATTERN, 'a decimal such as 1.0825'),
});

/** Loads config.fxRatesFile (CSV currency,date,usd_per_unit; header optional) into fx_rates. */
export async function loadFxRatesFile(db: Knex, file: string): Promise<number> {
  const text = await readFile(path.resolve(file), 'utf8');
  const records = parseCsv(text, { skip_empty_lines: true, trim: true, comment: '#' }) as string[][];
  const rows: Array<{ currency: string; rate_date: string; usd_per_unit: string; source: string }> = [];
  records.forEach((r, i) => {
    if (i === 0 && r[0]?.toLowerCase() === 'currency') return;
    const parsed = fxCsvRow.safeParse({ currency: r[0] ?? '', date: r[1] ?? '', usd_per_unit: r[2] ?? '' });
    if (!parsed.success) throw new UserError(`fxRatesFile ${file} line ${i + 1}: ${parsed.error.issues.map((x) => `${String(x.path[0])}: ${x.message}`).join('; ')}`);
    rows.push({ currency: parsed.data.currency, rate_date: parsed.data.date, usd_per_unit: parsed.data.usd_per_unit, source: 'config' });
  });
  for (const part of chunk(rows, WRITE_CHUNK)) {
    // Unchanged rows are not rewritten: a rewrite would stamp a new change_seq and make the next
    // incremental compute reprice every payment of the currency for nothing.
    await db('fx_rates')
      .insert(part)
      .onConflict(['currency', 'rate_date'])
      .merge(['usd_per_unit', 'source'])
      .whereRaw('(fx_rates.usd_per_unit, fx_rates.source) IS DISTINCT FROM (excluded.usd_per_unit, excluded.source)');
  }
  return rows.length;
}

/** The configured FX table (small: one row per currency and date). */
export async function loadFxRates(db: Knex): Promise<FxRate[]> {
  const rows = await db('fx_rates').select('currency', 'rate_date', 'usd_per_unit').orderBy(['currency', 'rate_date']);
  return rows.map((r: Row) => ({ currency: trimCur(r.currency), date: dateOnly(r.rate_date)!, rate: normalizeDecimal(r.usd_per_unit) }));
}

// ---------------------------------------------------------------------------------------------
// Row → engine shapes

interface AccountRow {
  id: number;
  partnerId: number;
  network: Network;
  externalId: string;
  email: string | null;
  deleted: boolean;
  taxInfoOnFile: boolean | null;
  payoutMethodOnFile: boolean | null;
}

async function loadAccounts(db: Knex, partnerIds: readonly number[]): Promise<AccountRow[]> {
  const rows = await inChunks(partnerIds, (part) =>
    db('partner_accounts').whereIn('partner_id', part).orderBy('id').select('id', 'partner_id', 'network', 'external_id', 'email', 'deleted_at', 'tax_info_on_file', 'payout_method_on_file'),
  );
  return rows.map((r: Row) => ({
    id: num(r.id),
    partnerId: num(r.partner_id),
    network: r.network as Network,
    externalId: str(r.external_id),
    email: strOrNull(r.email),
    deleted: r.deleted_at !== null && r.deleted_at !== undefined,
    taxInfoOnFile: (r.tax_info_on_file as boolean | null) ?? null,
    payoutMethodOnFile: (r.payout_method_on_file as boolean | null) ?? null,
  }));
}

/** Partner-level flag, else what its live accounts report: any false → false; all reporting true → true. */
function aggregateFlag(own: boolean | null, accounts: readonly AccountRow[], pick: (a: AccountRow) => boolean | null): boolean | null {
  if (own !== null) return own;
  const vals = accounts.filter((a) => !a.deleted).map(pick).filter((v): v is boolean => v !== null);
  if (vals.length === 0) return null;
  return vals.every(Boolean);
}

function toPartner(r: Row, accounts: readonly AccountRow[]): Partner {
  return {
    id: str(r.id),
    email: strOrNull(r.email) ?? strOrNull(r.email_normalized),
    // R2 personal use: the affiliate is one person across networks; every account's address counts.
    emails: [...new Set(accounts.map((a) => a.email).filter((e): e is string => !!e))],
    billingCustomerIds: [],
    recruiterPartnerId: r.recruiter_partner_id === null || r.recruiter_partner_id === undefined ? null : str(r.recruiter_partner_id),
    taxInfoOnFile: aggregateFlag((r.tax_info_on_file as boolean | null) ?? null, accounts, (a) => a.taxInfoOnFile),
    payoutMethodOnFile: aggregateFlag((r.payout_method_on_file as boolean | null) ?? null, accounts, (a) => a.payoutMethodOnFile),
  };
}

const toAccount = (a: AccountRow): PartnerAccount => ({ id: String(a.id), partnerId: String(a.partnerId), network: a.network, externalId: a.externalId });

const PARTNER_COLS = ['id', 'partner_key', 'email', 'email_normalized', 'recruiter_partner_id', 'tax_info_on_file', 'payout_method_on_file'];

async function loadPartners(db: Knex, ids: readonly number[]): Promise<{ partners: Map<number, Partner>; accounts: Map<number, AccountRow[]> }> {
  const rows = await inChunks(ids, (part) => db('partners').whereIn('id', part).select(PARTNER_COLS));
  const accountRows = await loadAccounts(db, ids);
  const accounts = new Map<number, AccountRow[]>();
  for (const a of accountRows) {
    let l = accounts.get(a.partnerId);
    if (!l) accounts.set(a.partnerId, (l = []));
    l.push(a);
  }
  const partners = new Map<number, Partner>();
  for (const r of rows as Row[]) partners.set(num(r.id), toPartner(r, accounts.get(num(r.id)) ?? []));
  return { partners, accounts };
}

/** agency_owner_ref (billing metadata) → partner id: partner_key, a network external id, the id, or the email. */
async function resolveAgencyOwners(db: Knex, refs: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (refs.length === 0) return out;
  const lower = refs.map((r) => r.toLowerCase());
  const numeric = refs.filter((r) => /^\d{1,15}$/.test(r)).map(Number);
  const set = (ref: string, id: unknown): void => {
    if (!out.has(ref)) out.set(ref, str(id));
  };
  for (const r of await db('partners').whereIn('partner_key', refs).orderBy('id').select('id', 'partner_key')) set(str(r.partner_key), r.id);
  for (const r of await db('partner_accounts').whereIn('external_id', refs).orderBy('partner_id').select('partner_id', 'external_id')) set(str(r.external_id), r.partner_id);
  if (numeric.length) for (const r of await db('partners').whereIn('id', numeric).select('id')) set(str(r.id), r.id);
  const byEmail = await db('partners').whereIn('email_normalized', lower).orderBy('id').select('id', 'email_normalized');
  for (const ref of refs) {
    const hit = byEmail.find((r: Row) => str(r.email_normalized) === ref.toLowerCase());
    if (hit) set(ref, hit.id);
  }
  return out;
}

function toEvent(r: Row, customerOverride?: number): BillingEvent {
  return {
    id: str(r.id),
    kind: r.kind as BillingEventKind,
    billingSystem: r.billing_system as BillingSystem,
    documentId: str(r.document_id),
    customerId: str(customerOverride ?? r.customer_id),
    subscriptionId: r.subscription_id === null || r.subscription_id === undefined ? null : str(r.subscription_id),
    paymentId: r.payment_event_id === null || r.payment_event_id === undefined ? null : str(r.payment_event_id),
    occurredAt: dateOf(r.occurred_at),
    amountMinor: num(r.amount_minor),
    currency: trimCur(r.currency),
    usdMinor: numOrNull(r.amount_usd_minor),
    exchangeRate: r.exchange_rate === null || r.exchange_rate === undefined ? null : normalizeDecimal(r.exchange_rate),
    isTrialCharge: r.classification === 'trial',
    planInterval: r.kind === 'payment' && (r.plan_interval === 'month' || r.plan_interval === 'year') ? r.plan_interval : null,
  };
}

const EVENT_COLS = [
  'id', 'kind', 'billing_system', 'document_id', 'customer_id', 'subscription_id', 'payment_event_id', 'occurred_at', 'amount_minor', 'currency',
  'amount_usd_minor', 'exchange_rate', 'classification', 'plan_interval',
];

// ---------------------------------------------------------------------------------------------
// One batch of partners → commission rows

interface BatchResult {
  /** Rows per partner of the batch, ready to compare and write (engine objects already dropped). */
  rows: PreparedRow[];
  unmatchedEvents: UnmatchedEvent[];
  partnersWithCustomers: number;
  payments: number;
  /** Append-only partners whose history turned out not to end before the new payments (recomputed whole). */
  notAppendable: number[];
  /** Keys of the rows computed for append-only partners. */
  appendKeys: string[];
  /** Append-only partners whose recomputed range holds old payments too: their stored rows on those payments not produced again are deleted. */
  rangePayments: RangePayments[];
  /** Tier facts (compute_partner_payments rows) of the payments whose rows were produced. */
  facts: Row[];
  /** Append-only partners: their stored tier facts from this instant on are replaced by `facts` (the others' are replaced whole). */
  factsFrom: Array<{ partner: number; fromMs: number }>;
}

/** A producer and the payments whose rows it recomputed (all of them, nothing else of its). */
interface RangePayments {
  partner: number;
  payments: string[];
}

interface BatchContext {
  versions: readonly ProgramVersion[];
  asOf: Date;
  fx: FxTable;
  stamp: Date;
  /** Append-only partners (src/rules/incremental.ts): only the rows of these payments are produced. */
  append?: ReadonlyMap<number, ReadonlySet<string>> | undefined;
  /** Their first new payment and its subscriptions (for the windowed load). */
  appendFrom?: ReadonlyMap<number, AppendWindow> | undefined;
  /** The partners loaded through a window (loadWindowOf), worked out once per run of batches. */
  windows: ReadonlyMap<number, LoadWindow>;
}

interface LoadWindow {
  first: number;
  since: number;
}

/**
 * Append-only partners load only what their new payments can change. The rows of every payment at
 * or after the partner's first new payment F are recomputed (new payments can move later payments'
 * tier and first-qualified flag; nothing before F reads them), so the customers of the partner's
 * payments from F on (its stored tier facts, compute_partner_payments, plus the new payments'
 * customers) are loaded with their events from F on and every payment of the subscriptions paid
 * from F on. The rows of a payment at t also read the sales paid in the tier window before t: those
 * before F come from the stored tier facts (one tier window, plus a month of margin, before F),
 * which were written with the partner's rows from the same inputs (any change to an earlier
 * payment, customer or the partner makes it a whole-partner recompute, src/rules/incremental.ts).
 * The cost is the new payments' customers plus the window's narrow fact rows, whatever the length
 * of the partner's history. Only when no version counts customers over all history
 * (windowAppliesToCustomerCount) and every version prices later payments at the current tier
 * (otherwise the tier of a subscription's first payment, possibly years back, is needed).
 */
/** The first new payment (ms) of a partner loaded through a window, and where its load starts; null: whole history. */
function loadWindowOf(pid: number, ctx: Pick<BatchContext, 'versions' | 'asOf' | 'append' | 'appendFrom'>): LoadWindow | null {
  const w = ctx.appendFrom?.get(pid);
  if (!w || !ctx.append?.has(pid) || ctx.versions.some((v) => !v.tierWindow.windowAppliesToCustomerCount || !v.laterPaymentsUseCurrentTier)) return null;
  const months = Math.max(...ctx.versions.map((v) => v.tierWindow.months));
  const first = Number.isFinite(w.firstMs) ? w.firstMs : ctx.asOf.getTime();
  return { first, since: first - (months + 1) * 31 * 86_400_000 };
}

/**
 * Loads what a batch of partners' commissions depend on; the returned function runs the engine on it
 * (CPU only), so the next batch can load while this one computes and stores.
 */
async function loadBatch(db: Knex, batch: Row[], ctx: BatchContext): Promise<(pause?: Pause) => Promise<BatchResult>> {
  const batchIds = batch.map((r) => num(r.id));
  const inBatch = new Set(batchIds.map(String));
  const windowOf = new Map<number, LoadWindow>();
  for (const id of batchIds) {
    const w = ctx.windows.get(id);
    if (w) windowOf.set(id, w);
  }
  const accountRows = await loadAccounts(db, batchIds);
  const accountsByPartner = new Map<number, AccountRow[]>();
  for (const a of accountRows) {
    let l = accountsByPartner.get(a.partnerId);
    if (!l) accountsByPartner.set(a.partnerId, (l = []));
    l.push(a);
  }

  // Customers claimed by this batch's accounts (of a windowed partner: those of its payments from its
  // first new payment on, see loadWindowOf), then every live claim on them (R1 across batches).
  const claimed = await inBigChunks(
    accountRows.filter((a) => !windowOf.has(a.partnerId)).map((a) => a.id),
    (part) => db('attributions').whereRaw('partner_account_id = ANY(?::bigint[])', [asArray(part)]).whereNull('deleted_at').distinct('customer_id').pluck('customer_id'),
  );
  const priorByPartner = new Map<string, CountableSale[]>();
  if (windowOf.size > 0) {
    const pids = [...windowOf.keys()];
    const iso = (ms: number): string => new Date(ms).toISOString();
    // One read of each partner's stored facts from its window's start on: those from its first new
    // payment on name the customers to load, the earlier counted sales are its prior sales.
    const stored = (await db.raw(
      `SELECT w.pid, f.payment_event_id, f.customer_id, f.paid_at, f.usd_minor, f.cleared_at, f.refunds FROM unnest(?::bigint[], ?::timestamptz[]) AS w(pid, since)
        CROSS JOIN LATERAL (SELECT * FROM compute_partner_payments f WHERE f.partner_id = w.pid AND f.paid_at >= w.since OFFSET 0) f`,
      [asArray(pids), asArray(pids.map((p) => iso(windowOf.get(p)!.since)))],
    )).rows as Row[];
    for (const p of pids) for (const c of ctx.appendFrom!.get(p)!.customers) claimed.push(c);
    for (const r of stored) {
      const paidAt = dateOf(r.paid_at);
      if (paidAt.getTime() >= windowOf.get(num(r.pid))!.first) {
        claimed.push(r.customer_id);
        continue;
      }
      if (r.usd_minor === null || r.usd_minor === undefined) continue;
      const pid = str(r.pid);
      let l = priorByPartner.get(pid);
      if (!l) priorByPartner.set(pid, (l = []));
      l.push({
        paymentEventId: str(r.payment_event_id),
        customerId: str(r.customer_id),
        paidAt,
        clearedAt: dateOrNull(r.cleared_at),
        usdMinor: num(r.usd_minor),
        refunds: json<Array<[number, number]>>(r.refunds, []).map(([at, usd]) => ({ at: new Date(at), usdMinor: usd })),
      });
    }
  }
  const claimedIds = [...new Set(claimed.map(Number))].sort((a, b) => a - b);
  const allClaims = await inBigChunks(claimedIds, (part) =>
    db('attributions as a')
      .join('partner_accounts as pa', 'pa.id', 'a.partner_account_id')
      .whereRaw('a.customer_id = ANY(?::bigint[])', [asArray(part)])
      .whereNull('a.deleted_at')
      .orderBy('a.id')
      .select('a.customer_id', 'a.partner_account_id', 'pa.partner_id', 'pa.network', 'a.attributed_at', 'a.click_at', 'a.signup_at'),
  );
  const attributions: Attribution[] = allClaims.map((r: Row) => ({
    customerId: str(r.customer_id),
    partnerId: str(r.partner_id),
    partnerAccountId: str(r.partner_account_id),
    network: r.network as Network,
    ...(r.attributed_at ? { attributedAt: dateOf(r.attributed_at) } : {}),
    clickAt: dateOrNull(r.click_at),
    signupAt: dateOrNull(r.signup_at),
  }));
  const { byCustomer, competing } = resolveAttributions(attributions);
  const won = [...byCustomer.values()].filter((a) => inBatch.has(a.partnerId));
  const customerIds = [...new Set(won.map((a) => Number(a.customerId)))].sort((a, b) => a - b);

  // Customers with their emails and billing identities.
  const customerRows = await inBigChunks(customerIds, (part) => db('customers').whereRaw('id = ANY(?::bigint[])', [asArray(part)]).select('id', 'email', 'email_normalized', 'is_test', 'agency_owner_ref'));
  const emailRows = await inBigChunks(customerIds, (part) => db('customer_emails').whereRaw('customer_id = ANY(?::bigint[])', [asArray(part)]).select('customer_id', 'email_normalized'));
  const identityRows = await inBigChunks(customerIds, (part) =>
    db('customer_identities').whereRaw('customer_id = ANY(?::bigint[])', [asArray(part)]).whereIn('system', ['stripe', 'chargebee']).orderBy('id').select('customer_id', 'external_id'),
  );
  const owners = await resolveAgencyOwners(db, [...new Set(customerRows.map((r: Row) => strOrNull(r.agency_owner_ref)).filter((x): x is string => !!x))]);
  const group = (rows: Row[], col: string): Map<number, string[]> => {
    const m = new Map<number, string[]>();
    for (const x of rows) {
      const k = num(x.customer_id);
      let l = m.get(k);
      if (!l) m.set(k, (l = []));
      l.push(str(x[col]));
    }
    return m;
  };
  const emailsByCustomer = group(emailRows as Row[], 'email_normalized');
  const billingIdsByCustomer = group(identityRows as Row[], 'external_id');
  const customers: Customer[] = customerRows.map((r: Row) => {
    const id = num(r.id);
    const emails = [strOrNull(r.email), strOrNull(r.email_normalized), ...(emailsByCustomer.get(id) ?? [])].filter((x): x is string => !!x);
    const ref = strOrNull(r.agency_owner_ref);
    return {
      id: String(id),
      emails: [...new Set(emails)],
      billingCustomerIds: billingIdsByCustomer.get(id) ?? [],
      isTest: r.is_test === true,
      agencyOwnerPartnerId: ref ? (owners.get(ref) ?? null) : null,
    };
  });

  // Billing events of those customers, plus take-backs linked to their payments but filed without a
  // customer. Customers won by a windowed partner (see loadWindowOf) load only their events from the
  // partner's first new payment on, and every payment of the subscriptions paid from then on.
  const windowCustomers = new Map<number, number>(); // customer → load from (ms)
  for (const a of won) {
    const w = windowOf.get(Number(a.partnerId));
    if (w) windowCustomers.set(Number(a.customerId), w.first);
  }
  const fullIds = customerIds.filter((c) => !windowCustomers.has(c));
  // Per-customer index look-ups (`customer_id = ANY(large array)` was planned as a scan of every billing event).
  const own = (await inBigChunks(fullIds, async (part) =>
    (await db.raw(
      `SELECT ${EVENT_COLS.map((c) => `e.${c}`).join(', ')} FROM unnest(?::bigint[]) AS c(id)
        CROSS JOIN LATERAL (SELECT * FROM billing_events e WHERE e.customer_id = c.id AND e.deleted_at IS NULL OFFSET 0) e ORDER BY e.id`,
      [asArray(part)],
    )).rows as Row[],
  )) as Row[];
  if (windowCustomers.size > 0) {
    // Index look-ups per customer and per subscription (LATERAL … OFFSET 0 keeps them parameterized:
    // joined plainly, the arrays were planned as hash joins over a scan of every billing event).
    const cids = [...windowCustomers.keys()];
    const since = cids.map((c) => new Date(windowCustomers.get(c)!).toISOString());
    const win = (await db.raw(
      `SELECT ${EVENT_COLS.map((c) => `e.${c}`).join(', ')} FROM unnest(?::bigint[], ?::timestamptz[]) AS w(cid, since)
        CROSS JOIN LATERAL (SELECT * FROM billing_events e WHERE e.customer_id = w.cid AND e.occurred_at >= w.since AND e.deleted_at IS NULL OFFSET 0) e`,
      [asArray(cids), asArray(since)],
    )).rows as Row[];
    // Every payment of the subscriptions paid from the partner's first new payment on (earlier ones decide the first qualified payment).
    const subs = new Set<number>();
    for (const p of windowOf.keys()) for (const sub of ctx.appendFrom!.get(p)!.subscriptions) subs.add(sub);
    for (const r of win) if (r.kind === 'payment' && r.subscription_id !== null && r.subscription_id !== undefined) subs.add(num(r.subscription_id));
    if (subs.size > 0) {
      const subPayments = (await db.raw(
        `SELECT ${EVENT_COLS.map((c) => `e.${c}`).join(', ')} FROM unnest(?::bigint[]) AS s(id)
          CROSS JOIN LATERAL (SELECT * FROM billing_events e WHERE e.subscription_id = s.id AND e.kind = 'payment' AND e.deleted_at IS NULL OFFSET 0) e`,
        [asArray([...subs].sort((a, b) => a - b))],
      )).rows as Row[];
      for (const r of subPayments) if (r.customer_id !== null && r.customer_id !== undefined && windowCustomers.has(num(r.customer_id))) win.push(r);
    }
    own.push(...win); // duplicates (a window payment of a new payment's subscription) are skipped below by id
    own.sort((a, b) => num(a.id) - num(b.id));
  }
  const paymentCustomer = new Map<number, number>();
  for (const r of own) if (r.kind === 'payment') paymentCustomer.set(num(r.id), num(r.customer_id));
  const linked = await inBigChunks([...paymentCustomer.keys()], (part) =>
    db('billing_events').whereRaw('payment_event_id = ANY(?::bigint[])', [asArray(part)]).whereNot('kind', 'payment').whereNull('deleted_at').orderBy('id').select(EVENT_COLS),
  );
  const seen = new Set<number>();
  const events: BillingEvent[] = [];
  const intervalFromPayments = new Map<number, PlanInterval>();
  for (const r of [...own, ...linked] as Row[]) {
    const id = num(r.id);
    if (seen.has(id)) continue;
    seen.add(id);
    const payCustomer = r.payment_event_id !== null && r.payment_event_id !== undefined ? paymentCustomer.get(num(r.payment_event_id)) : undefined;
    if ((r.customer_id === null || r.customer_id === undefined) && payCustomer === undefined) continue;
    events.push(toEvent(r, payCustomer));
    if (r.kind === 'payment' && r.subscription_id != null && (r.plan_interval === 'month' || r.plan_interval === 'year')) {
      intervalFromPayments.set(num(r.subscription_id), r.plan_interval); // rows are in id order: the latest wins
    }
  }

  const subRows = await inBigChunks(customerIds, (part) => db('subscriptions').whereRaw('customer_id = ANY(?::bigint[])', [asArray(part)]).select('id', 'customer_id', 'plan_interval'));
  const subscriptions: Subscription[] = [];
  for (const r of subRows as Row[]) {
    const interval = (r.plan_interval as PlanInterval | null) ?? intervalFromPayments.get(num(r.id)) ?? null;
    // Without a plan interval the rate is unknown: the engine records unknown_subscription.
    if (interval) subscriptions.push({ id: str(r.id), customerId: str(r.customer_id), interval });
  }

  // Recruiters (second tier) and the keys already paid out (R8: never edited again).
  const recruiterIds = [...new Set(batch.map((r) => r.recruiter_partner_id).filter((x) => x !== null && x !== undefined).map(Number))];
  const recruiters = await loadPartners(db, recruiterIds);
  const paidKeys = new Set<string>(
    (await inBigChunks([...paymentCustomer.keys()], (part) => db('computed_commissions').whereRaw('payment_event_id = ANY(?::bigint[])', [asArray(part)]).where('status', 'paid').pluck('commission_key'))).map(String),
  );

  const customersById = new Map(customers.map((c) => [c.id, c]));
  const subsByCustomer = new Map<string, Subscription[]>();
  for (const s of subscriptions) {
    let l = subsByCustomer.get(s.customerId);
    if (!l) subsByCustomer.set(s.customerId, (l = []));
    l.push(s);
  }
  const eventsByCustomer = new Map<string, BillingEvent[]>();
  for (const e of events) {
    let l = eventsByCustomer.get(e.customerId);
    if (!l) eventsByCustomer.set(e.customerId, (l = []));
    l.push(e);
  }
  const wonByPartner = new Map<string, Attribution[]>();
  for (const a of won) {
    let l = wonByPartner.get(a.partnerId);
    if (!l) wonByPartner.set(a.partnerId, (l = []));
    l.push(a);
  }

  return async (pause) => {
  const prepared: PreparedRow[] = [];
  const unmatchedEvents: UnmatchedEvent[] = [];
  const notAppendable: number[] = [];
  const rangePayments: RangePayments[] = [];
  const appendKeys: string[] = [];
  const facts: Row[] = [];
  const factsFrom: Array<{ partner: number; fromMs: number }> = [];
  let partnersWithCustomers = 0;
  for (const r of batch) {
    const attrs = wonByPartner.get(str(r.id));
    if (!attrs || attrs.length === 0) continue;
    const paused = pause?.();
    if (paused) await paused;
    partnersWithCustomers++;
    let emitOnly = ctx.append?.get(num(r.id));
    const windowed = windowOf.has(num(r.id));
    if (emitOnly && windowed) {
      // Loaded through a window (every event from a tier window before the first new payment on,
      // and every payment of the subscriptions paid from then on): the rows of every payment known
      // from the first new payment on are recomputed — the new payments can change the tier and
      // the subscription's first qualified payment of later payments only (src/rules/incremental.ts).
      // Earlier payments' rows read nothing at or after it. When old payments are in that range,
      // their stored rows the engine no longer produces are deleted (rangePayments).
      const cids = new Set(attrs.map((a) => a.customerId));
      // The earliest new payment known at asOf (src/rules/incremental.ts found it with the payments).
      const firstNew = ctx.appendFrom!.get(num(r.id))!.firstMs;
      const range = new Set(emitOnly);
      const old: string[] = [];
      for (const c of cids) {
        for (const e of eventsByCustomer.get(c) ?? []) {
          const t = e.occurredAt.getTime();
          if (e.kind !== 'payment' || t < firstNew || t > ctx.asOf.getTime() || range.has(e.id)) continue;
          range.add(e.id);
          old.push(e.id);
        }
      }
      if (old.length > 0) {
        emitOnly = range;
        rangePayments.push({ partner: num(r.id), payments: [...range] });
      }
    } else if (emitOnly) {
      // The whole history is loaded: the shortcut holds when every appended payment is strictly
      // later than everything the partner knew before (src/rules/incremental.ts), else the partner
      // is recomputed whole.
      const cids = new Set(attrs.map((a) => a.customerId));
      let firstNew = Infinity;
      let lastOld = -Infinity;
      for (const c of cids) {
        for (const e of eventsByCustomer.get(c) ?? []) {
          const t = e.occurredAt.getTime();
          if (t > ctx.asOf.getTime()) continue;
          if (emitOnly.has(e.id)) firstNew = Math.min(firstNew, t);
          else lastOld = Math.max(lastOld, t);
        }
      }
      if (!(lastOld < firstNew)) {
        notAppendable.push(num(r.id));
        emitOnly = undefined;
      }
    }
    const partner = toPartner(r, accountsByPartner.get(num(r.id)) ?? []);
    const rid = partner.recruiterPartnerId ? Number(partner.recruiterPartnerId) : null;
    const recruiter = rid !== null ? (recruiters.partners.get(rid) ?? null) : null;
    const cids = attrs.map((a) => a.customerId);
    const partnerRows: PreparedRow[] = [];
    const res = computePartnerCommissions({
      partner,
      recruiter,
      recruiterAccounts: rid !== null ? (recruiters.accounts.get(rid) ?? []).filter((a) => !a.deleted).map(toAccount) : [],
      attributions: attrs,
      customers: cids.flatMap((id) => {
        const c = customersById.get(id);
        return c ? [c] : [];
      }),
      subscriptions: cids.flatMap((id) => subsByCustomer.get(id) ?? []),
      events: cids.flatMap((id) => eventsByCustomer.get(id) ?? []),
      programVersions: ctx.versions,
      asOf: ctx.asOf,
      fx: ctx.fx,
      paidCommissionKeys: paidKeys,
      competingPartners: competing,
      ...(emitOnly ? { emitOnly } : {}),
      ...(windowed ? { priorSales: priorByPartner.get(str(r.id)) ?? [] } : {}),
      onRow: (c) => partnerRows.push(prepareRow(c, ctx.asOf, ctx.stamp)),
    });
    // A windowed load sees only part of the history: refunds of payments before the window look
    // unmatched there. The unmatched list is the whole-partner runs' (full or not append-only).
    if (windowed) res.unmatchedEvents.length = 0;
    // Key order, as the engine returns rows (the write order, hence the ids, stay as before).
    partnerRows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const row of partnerRows) {
      prepared.push(row);
      if (emitOnly) appendKeys.push(row.key);
    }
    unmatchedEvents.push(...res.unmatchedEvents);
    const priced = res.priced ?? [];
    for (const p of priced) facts.push(factRow(num(r.id), p));
    // Appended payments (and a windowed range) are the partner's latest: its stored facts from the first of them on are replaced.
    if (emitOnly && priced.length > 0) factsFrom.push({ partner: num(r.id), fromMs: priced[0]!.paidAt.getTime() });
  }
  return { rows: prepared, unmatchedEvents, partnersWithCustomers, payments: paymentCustomer.size, notAppendable, appendKeys, rangePayments, facts, factsFrom };
  };
}

/** A compute_partner_payments row (migration 010): what later tiers read from this payment. */
function factRow(partnerId: number, p: PricedPayment): Row {
  const sale = p.sale;
  return {
    partner_id: partnerId,
    paid_at: p.paidAt.toISOString(),
    payment_event_id: Number(p.paymentEventId),
    customer_id: Number(p.customerId),
    usd_minor: sale ? sale.usdMinor : null,
    cleared_at: sale?.clearedAt ? sale.clearedAt.toISOString() : null,
    refunds: sale && sale.refunds.length > 0 ? sale.refunds.map((x) => [x.at.getTime(), x.usdMinor]) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Writing

const dbId = (s: string | null): number | null => (s === null ? null : Number(s));

/** One produced row: its key, status and content hash (to compare with the stored row) and the row to write. */
interface PreparedRow {
  key: string;
  status: CommissionStatus;
  hash: string;
  row: Row;
}

/**
 * The row as written (json_populate_recordset input: dates as ISO strings, jsonb columns as JSON
 * text), and a hash of its content without status and run stamps. The hash covers exactly the
 * columns compared below; status is compared on its own because advanceClearedRows flips it in
 * the database without recomputing.
 */
function prepareRow(c: ComputedCommission, asOf: Date, stamp: Date): PreparedRow {
  const flags = JSON.stringify(c.flags);
  const explanation = JSON.stringify(c.explanation);
  const paidAt = c.paidAt.toISOString();
  const clearedAt = c.clearedAt ? c.clearedAt.toISOString() : null;
  const content = [
    c.key, c.kind, c.clawbackOf ?? null, c.partnerId, c.partnerAccountId, c.network, c.paymentEventId, c.sourceEventId, c.tier, c.rate, c.baseMinor,
    c.baseCurrency, c.baseUsdMinor, c.amountMinor, c.amountUsdMinor, paidAt, clearedAt, c.payoutDate, c.ruleVersion, c.exclusionReason,
  ];
  const hash = oneShotHash('sha1', `${JSON.stringify(content)}\u0000${flags}\u0000${explanation}`, 'base64');
  return {
    key: c.key,
    status: c.status,
    hash,
    row: {
      commission_key: c.key,
      kind: c.kind,
      clawback_of: c.clawbackOf ?? null,
      partner_id: Number(c.partnerId),
      partner_account_id: dbId(c.partnerAccountId),
      network: c.network,
      payment_event_id: Number(c.paymentEventId),
      source_event_id: Number(c.sourceEventId),
      tier: c.tier,
      rate: c.rate,
      base_minor: c.baseMinor,
      base_currency: c.baseCurrency,
      base_usd_minor: c.baseUsdMinor,
      amount_minor: c.amountMinor,
      amount_usd_minor: c.amountUsdMinor,
      status: c.status,
      paid_at: paidAt,
      cleared_at: clearedAt,
      payout_date: c.payoutDate,
      rule_version: c.ruleVersion, // nullable since 003_rules_nullable: null = no version in force
      exclusion_reason: c.exclusionReason,
      flags, // JSON text sent as a string: see ROW_COLUMNS
      explanation,
      as_of: asOf.toISOString(),
      computed_at: stamp.toISOString(),
      content_hash: hash,
    },
  };
}

const CONTENT_COLS = [
  'kind', 'clawback_of', 'partner_id', 'partner_account_id', 'network', 'payment_event_id', 'source_event_id', 'tier', 'rate', 'base_minor', 'base_currency',
  'base_usd_minor', 'amount_minor', 'amount_usd_minor', 'status', 'paid_at', 'cleared_at', 'payout_date', 'rule_version', 'exclusion_reason', 'flags',
  'explanation',
];
 /**
 * The rows go over as one JSON array whose flags / explanation are JSON *strings* cast to jsonb by
 * the server: json_populate_recordset with them as nested objects spent ~60 % more server time on
 * the same rows (30k rows of the 100k world, 2.6 KB of explanation each: 10.6 s → 6.7 s), and the
 * explanation text is most of what a full run writes.
 */
const ROW_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['commission_key', 'text'], ['kind', 'text'], ['clawback_of', 'text'], ['partner_id', 'bigint'], ['partner_account_id', 'bigint'], ['network', 'text'],
  ['payment_event_id', 'bigint'], ['source_event_id', 'bigint'], ['tier', 'text'], ['rate', 'numeric'], ['base_minor', 'bigint'], ['base_currency', 'text'],
  ['base_usd_minor', 'bigint'], ['amount_minor', 'bigint'], ['amount_usd_minor', 'bigint'], ['status', 'text'], ['paid_at', 'timestamptz'],
  ['cleared_at', 'timestamptz'], ['payout_date', 'date'], ['rule_version', 'text'], ['exclusion_reason', 'text'], ['flags', 'text'], ['explanation', 'text'],
  ['as_of', 'timestamptz'], ['computed_at', 'timestamptz'], ['content_hash', 'text'],
];
const JSONB_COLUMNS = new Set(['flags', 'explanation']);
const DISTINCT_SQL = `(${CONTENT_COLS.map((c) => `computed_commissions.${c}`).join(', ')}) IS DISTINCT FROM (${CONTENT_COLS.map((c) => `excluded.${c}`).join(', ')})`;
/**
 * Upsert on commission_key; never a paid row (R8). The run stamps (as_of, computed_at) move only
 * when the content really differs, so a row whose stored hash was merely missing (written before
 * migration 006) gets its hash and keeps its stamps — and its change_seq, since the update stamp
 * ignores content_hash: the reconciliation sees only real changes.
 */
const UPSERT_SQL =
  `${upsertClause(['commission_key'], [...CONTENT_COLS, 'content_hash'])}, ` +
  `as_of = CASE WHEN ${DISTINCT_SQL} THEN excluded.as_of ELSE computed_commissions.as_of END, ` +
  `computed_at = CASE WHEN ${DISTINCT_SQL} THEN excluded.computed_at ELSE computed_commissions.computed_at END ` +
  `WHERE computed_commissions.status <> 'paid'`;

const UPSERT_ROWS_SQL =
  `INSERT INTO computed_commissions (${ROW_COLUMNS.map(([c]) => c).join(', ')}) ` +
  `SELECT ${ROW_COLUMNS.map(([c]) => (JSONB_COLUMNS.has(c) ? `r.${c}::jsonb` : `r.${c}`)).join(', ')} ` +
  `FROM json_to_recordset(?::json) AS r(${ROW_COLUMNS.map(([c, t]) => `${c} ${t}`).join(', ')}) ` +
  `ON CONFLICT ${UPSERT_SQL} RETURNING computed_at`;

/**
 * Rows per upsert statement (PostgreSQL: 1,000, fewer round trips), and on PGlite at most
 * PGLITE_STATEMENT_CHARS of JSON each (~250 rows of the 100k world, 2.6 KB of explanation each):
 * a 100k compute alone peaked at 381–398 MB RSS against 413–430 MB with 1,000-row statements there.
 * The 8 MB on PostgreSQL only splits rows with unusually long explanations.
 */
const UPSERT_ROWS = 1_000;
const UPSERT_CHARS_POSTGRES = 8_000_000;
/** A written row's JSON length, roughly: its two JSON texts plus the other columns' names and values. */
const rowChars = (r: Row): number => (r.explanation as string).length + (r.flags as string).length + 600;

interface StoredRow {
  status: CommissionStatus;
  hash: string | null;
}

/**
 * Stored rows (key → status, hash) of `producers` (see src/rules/incremental.ts: the partner whose
 * computation writes them), plus the stored rows of `keys` (rows an append-only partner produces).
 */
async function loadStored(db: Knex | Knex.Transaction, producers: readonly number[], keys: readonly string[], ranges: readonly RangePayments[] = []): Promise<Map<string, StoredRow>> {
  const out = new Map<string, StoredRow>();
  const add = (rows: Array<{ commission_key: string; status: CommissionStatus; content_hash: string | null }>): void => {
    for (const r of rows) out.set(r.commission_key, { status: r.status, hash: r.content_hash });
  };
  // ARRAY(…) makes the planner fetch the producers' payments first and probe the payment index
  // with them (a semi-join here was planned as a scan of every second-tier row: 4 s per batch at 100k).
  for (const part of chunk([...producers], 5_000)) {
    add(
      (
        await db.raw(
          `SELECT cc.commission_key, cc.status, cc.content_hash FROM computed_commissions cc
            WHERE cc.partner_id = ANY(?::bigint[]) AND (cc.kind = 'direct' OR cc.clawback_of = 'direct')
           UNION ALL
           SELECT cc.commission_key, cc.status, cc.content_hash FROM computed_commissions cc
            WHERE (cc.kind = 'second_tier' OR cc.clawback_of = 'second_tier')
              AND cc.payment_event_id = ANY(ARRAY(SELECT d.payment_event_id FROM computed_commissions d WHERE d.kind = 'direct' AND d.partner_id = ANY(?::bigint[])))
              AND (cc.explanation->>'recruitPartnerId') = ANY(?::text[])`,
          [part, part, part.map(String)],
        )
      ).rows,
    );
  }
  for (const part of chunk([...keys], 5_000)) {
    add((await db.raw(`SELECT commission_key, status, content_hash FROM computed_commissions WHERE commission_key = ANY(?::text[])`, [part])).rows);
  }
  // The rows a range-recomputed producer has on the payments it recomputed (what it no longer produces there is stale).
  const pairs = ranges.flatMap((r) => r.payments.map((p) => [Number(p), r.partner] as const));
  for (const part of chunk(pairs, 5_000)) {
    add(
      (
        await db.raw(
          `SELECT cc.commission_key, cc.status, cc.content_hash FROM unnest(?::bigint[], ?::bigint[]) AS r(payment_id, producer)
            CROSS JOIN LATERAL (SELECT * FROM computed_commissions cc WHERE cc.payment_event_id = r.payment_id OFFSET 0) cc
            WHERE ${PRODUCER_SQL} = r.producer`,
          [asArray(part.map((x) => x[0])), asArray(part.map((x) => x[1]))],
        )
      ).rows,
    );
  }
  return out;
}

/**
 * Writes the produced rows that differ from the stored ones (hash or status; never paid rows) and
 * deletes the stored rows of `producers` that are no longer produced (never paid ones). Returns
 * rows inserted or changed, and rows deleted.
 */
async function storeRows(
  db: Knex,
  rows: PreparedRow[],
  producers: readonly number[],
  appendKeys: readonly string[],
  ranges: readonly RangePayments[],
  stamp: Date,
  facts: Pick<BatchResult, 'facts' | 'factsFrom'>,
): Promise<{ written: number; deleted: number }> {
  const stored = await loadStored(db, producers, appendKeys, ranges);
  const toWrite: Row[] = [];
  const produced = new Set<string>();
  for (const r of rows) {
    produced.add(r.key);
    const old = stored.get(r.key);
    if (old && (old.status === 'paid' || (old.hash === r.hash && old.status === r.status))) continue;
    if (r.status === 'paid') continue; // the engine marks keys already paid; those are never written
    toWrite.push(r.row);
  }
  const stale: string[] = [];
  // Stored rows are the producers' own, the appended keys (all produced) and the recomputed ranges' rows.
  for (const [k, v] of stored) if (v.status !== 'paid' && !produced.has(k)) stale.push(k);
  // The rows to write are in toWrite; the rest (unchanged, paid) are released now, and the written
  // ones chunk by chunk below (emptied, the caller's rows array lets them go).
  rows.length = 0;
  let written = 0;
  let deleted = 0;
  if (toWrite.length === 0 && stale.length === 0 && facts.facts.length === 0 && producers.length === 0) return { written, deleted };
  const stampMs = stamp.getTime();
  // One transaction per batch: its partners' rows are replaced as a whole, with their tier facts.
  await db.transaction(async (trx) => {
    // Shared against the reconcile's write phase (src/db/locks.ts): deleting or re-explaining a
    // commission also updates the discrepancies naming it.
    await trx.raw('SELECT pg_advisory_xact_lock_shared(?, hashtext(current_schema()))', [DISCREPANCY_WRITE_LOCK]);
    // The producers' stored facts go whole, the append-only partners' from their first recomputed
    // payment on: one delete, by row address from per-partner index ranges. Joined with the unnest
    // plainly, or with partner_id = ANY(…), the planner scanned the whole table per batch while the
    // table had no statistics (1M: 3.5 s of an incremental run over 51 batches; 15.5 s of a full one).
    const replaced = [...producers.map((partner) => ({ partner, since: '-infinity' })), ...facts.factsFrom.map((x) => ({ partner: x.partner, since: new Date(x.fromMs).toISOString() }))];
    for (const part of chunk(replaced, 5_000)) {
      await trx.raw(
        `DELETE FROM compute_partner_payments WHERE ctid = ANY(ARRAY(
           SELECT f.ctid FROM unnest(?::bigint[], ?::timestamptz[]) AS d(pid, since)
            CROSS JOIN LATERAL (SELECT f.ctid FROM compute_partner_payments f WHERE f.partner_id = d.pid AND f.paid_at >= d.since OFFSET 0) f))`,
        [asArray(part.map((x) => x.partner)), asArray(part.map((x) => x.since))],
      );
    }
    await bulkInsert(trx, 'compute_partner_payments', facts.facts, { chunkSize: 5_000 });
    facts.facts.length = 0;
    // Front chunks are taken out as they are sent, so a large partner's written rows can be collected
    // while the rest is still being written (the transaction is never retried with them).
    const chars = statementChars(db, UPSERT_CHARS_POSTGRES);
    while (toWrite.length > 0) {
      const part = takeFront(toWrite, UPSERT_ROWS, chars, rowChars);
      for (const r of (await trx.raw(UPSERT_ROWS_SQL, [JSON.stringify(part)])).rows as Array<{ computed_at: unknown }>) if (dateOf(r.computed_at).getTime() === stampMs) written++;
    }
    for (const keys of chunk(stale, 5_000)) {
      deleted += await countDeleted(trx, `DELETE FROM computed_commissions WHERE status <> 'paid' AND commission_key = ANY(?::text[]) RETURNING 1`, [keys]);
    }
  });
  return { written, deleted };
}

/** Runs a DELETE … RETURNING 1 and counts the rows (the PGlite knex client reports no row count). */
async function countDeleted(db: Knex | Knex.Transaction, sql: string, bindings: Knex.RawBinding[]): Promise<number> {
  const r = await db.raw(`WITH d AS (${sql}) SELECT count(*)::int AS n FROM d`, bindings);
  return num((r.rows as Array<{ n: number }>)[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------------------------
// computeAndStore

/** change_cursors consumer name of the compute (src/db/changes.ts). */
export const COMPUTE_CONSUMER = 'compute';
/**
 * Bumped when the cursor state's meaning changes: an old state then forces one full run.
 * 2: compute_partner_payments (migration 010) is filled by every run and read by incremental ones.
 */
const CURSOR_STATE_VERSION = 2;

interface ComputeCursorState {
  v: number;
  asOf: string;
  programHash: string;
  agency: Record<string, string | null>;
  fx: Record<string, FxCurrencyState>;
}

export interface ComputeOptions {
  /** Partners per batch (default 500). */
  batchSize?: number | undefined;
  /** Billing events per batch (default 5,000; a partner with more is computed alone). */
  batchEvents?: number | undefined;
  log?: Logger | undefined;
  /** Override the program files (tests). */
  programVersions?: readonly ProgramVersion[] | undefined;
  /** Recompute every partner even when the change cursor allows an incremental run. */
  full?: boolean | undefined;
}

export interface KindStatusTotal {
  kind: CommissionKind;
  status: CommissionStatus;
  rows: number;
  amountUsdMinor: number;
}

export interface ComputeSummary {
  asOf: string;
  program: string;
  versions: string[];
  fxRatesLoaded: number;
  /** full: every partner recomputed; incremental: only the partners the changes since the last run can affect. */
  mode: 'full' | 'incremental';
  /** Why the run was full (null when incremental). */
  fullReason: string | null;
  /** The change_seq watermark this run covered (the cursor saved at its end). */
  changeSeq: number;
  /** Partners recomputed in this run (every partner when full). */
  partners: number;
  /** Of those, partners whose only change was new payments after their history: only those payments' rows computed. */
  appendOnlyPartners: number;
  partnersWithCustomers: number;
  batches: number;
  /** Payments of the recomputed partners' customers. */
  payments: number;
  /** Rows the engine produced in this run (for the recomputed partners). */
  computed: number;
  /** Rows inserted or changed (unchanged and paid rows are not rewritten). */
  written: number;
  /** Stored rows whose key the engine no longer produces (never paid rows). */
  deleted: number;
  /** Incremental runs: reserve rows that became due because asOf passed their cleared_at. */
  advanced: number;
  /** Incremental runs: what was found changed (customers, events, partners … per source). */
  changes: Record<string, number>;
  /** Refunds/disputes of the recomputed partners' customers that point at no known payment. */
  unmatchedEvents: UnmatchedEvent[];
  /** Every stored row after the run, by kind and status. */
  byKindStatus: KindStatusTotal[];
  totals: { rows: number; amountUsdMinor: number; dueUsdMinor: number; reserveUsdMinor: number; paidUsdMinor: number };
}

/** Content hash of the program definition the rows are priced with (a change → full recompute). */
export function programHash(name: string, versions: readonly ProgramVersion[]): string {
  return createHash('sha256').update(JSON.stringify({ name, versions })).digest('hex');
}

function parseState(raw: Record<string, unknown> | undefined): ComputeCursorState | null {
  if (!raw || raw.v !== CURSOR_STATE_VERSION || typeof raw.asOf !== 'string' || typeof raw.programHash !== 'string') return null;
  if (typeof raw.agency !== 'object' || raw.agency === null || typeof raw.fx !== 'object' || raw.fx === null) return null;
  return raw as unknown as ComputeCursorState;
}

/**
 * Computes commissions as of `asOf` and stores them (the main job calls `computeAndStore(db,
 * config, asOf)`). Loads config.fxRatesFile into fx_rates first when it is set.
 *
 * Incremental by default (src/rules/incremental.ts): reads the change watermark W first, recomputes
 * only the partners whose rows the changes in (cursor, W] and the move of asOf can affect, flips
 * reserve rows whose cleared_at passed to due, and saves the cursor (W, asOf, program hash, agency
 * resolution, FX counts) only after every affected partner is stored — a run that dies half-way is
 * redone by the next one (every step is idempotent). Full recompute when asked (`full`), when
 * there is no cursor (or an older state format), when asOf moved backwards, or when the program
 * definition changed. Either way the stored rows equal a full recompute's (only as_of /
 * computed_at, the run stamps of a row's last change, differ).
 */
export async function computeAndStore(db: Knex, config: Config, asOf: Date = new Date(), opts: ComputeOptions = {}): Promise<ComputeSummary> {
  if (Number.isNaN(asOf.getTime())) throw new UserError('--as-of: not a valid instant');
  const batchSize = opts.batchSize ?? DEFAULT_PARTNER_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer (got ${batchSize})`);
  const batchEvents = opts.batchEvents ?? DEFAULT_BATCH_EVENTS;
  if (!Number.isSafeInteger(batchEvents) || batchEvents < 1) throw new Error(`batchEvents must be a positive integer (got ${batchEvents})`);
  const versions = opts.programVersions ?? (await loadProgramVersions(config));
  const hash = programHash(config.program.name, versions);
  const fxRatesLoaded = config.fxRatesFile ? await loadFxRatesFile(db, config.fxRatesFile) : 0;
  // The watermark before reading anything: every change at or below it is committed and visible to
  // the reads below; later ones are the next run's (a row read here that changes again after W is
  // simply recomputed again next time).
  const watermark = await readChangeWatermark(db);
  const cursor = await loadChangeCursor(db, COMPUTE_CONSUMER);
  const state = parseState(cursor?.state);
  const fullReason = opts.full
    ? 'requested'
    : !cursor
      ? 'no cursor (first run)'
      : !state
        ? 'cursor state from another version'
        : state.programHash !== hash
          ? 'program definition changed'
          : new Date(state.asOf).getTime() > asOf.getTime()
            ? 'asOf moved backwards'
            : null;
  const fx = createFxTable(await loadFxRates(db));
  // State snapshots for the next run are taken now, before any partner is computed: a partner or
  // FX change landing during the run then shows up as a difference next time (extra work at
  // worst), never as a difference already absorbed into the saved state but missed by the batches.
  const fxState = await fxCurrencyState(db, watermark);
  const stamp = dateOf(((await db.raw(`SELECT now() AS now`)).rows[0] as { now: unknown }).now);

  const s: ComputeSummary = {
    asOf: asOf.toISOString(),
    program: config.program.name,
    versions: versions.map((v) => v.version),
    fxRatesLoaded,
    mode: fullReason === null ? 'incremental' : 'full',
    fullReason,
    changeSeq: watermark,
    partners: 0,
    appendOnlyPartners: 0,
    partnersWithCustomers: 0,
    batches: 0,
    payments: 0,
    computed: 0,
    written: 0,
    deleted: 0,
    advanced: 0,
    changes: {},
    unmatchedEvents: [],
    byKindStatus: [],
    totals: { rows: 0, amountUsdMinor: 0, dueUsdMinor: 0, reserveUsdMinor: 0, paidUsdMinor: 0 },
  };

  const storeBatch = async (batch: Row[], r: BatchResult, append?: ReadonlyMap<number, ReadonlySet<string>>): Promise<void> => {
    s.batches++;
    s.partners += batch.length;
    s.partnersWithCustomers += r.partnersWithCustomers;
    s.payments += r.payments;
    s.computed += r.rows.length;
    s.unmatchedEvents.push(...r.unmatchedEvents);
    const notAppendable = new Set(r.notAppendable);
    const appended = new Set([...(append?.keys() ?? [])].filter((id) => !notAppendable.has(id)));
    for (const p of batch) if (appended.has(num(p.id))) s.appendOnlyPartners++;
    const producers = batch.map((p) => num(p.id)).filter((id) => !appended.has(id));
    const computed = r.rows.length; // storeRows empties the list as it writes
    const w = await storeRows(db, r.rows, producers, r.appendKeys, r.rangePayments, stamp, r);
    s.written += w.written;
    s.deleted += w.deleted;
    opts.log?.debug({ batch: s.batches, partners: batch.length, rows: computed, written: w.written }, 'rules batch stored');
    // A full compute fills computed_commissions and compute_partner_payments from empty, and later
    // batches (and the reconcile after) read them: keep their statistics current (planner-stats.ts).
    notePlannerWrites(db, w.written + w.deleted + r.payments);
    await refreshPlannerStats(db, { mode: 'periodic', log: opts.log });
  };
  /**
   * Partners (rows of PARTNER_COLS) in batches of at most batchSize partners and batchEvents events
   * (a bigger partner alone). Batch i+1 is loaded while batch i is computed and stored: its inputs
   * are canonical rows and paid keys, which storing batch i does not change (the stored rows the
   * comparison reads are read after the previous batch's writes, in storeRows).
   */
  const runInBatches = async (partners: Row[], append?: ReadonlyMap<number, ReadonlySet<string>>, appendFrom?: ReadonlyMap<number, AppendWindow>): Promise<void> => {
    const ids = partners.map((p) => num(p.id));
    const sizes = new Map<number, number>();
    // Events each partner will load (of its claimed customers): from its load window on when it
    // has one (loadWindowOf), else all; counted through per-customer index look-ups.
    const windows = new Map<number, LoadWindow>();
    for (const id of ids) {
      const w = loadWindowOf(id, { versions, asOf, append, appendFrom });
      if (w) windows.set(id, w);
    }
    const windowed = [...windows.keys()];
    for (const part of chunk(windowed, 5_000)) {
      // A windowed partner loads its stored sales of the window and its payments from the first new
      // one on. A stored sale before that is a compact row of seven columns (a loaded billing event
      // has twenty and its metadata), so it counts as STORED_SALE_WEIGHT of an event: counted in
      // full, an incremental run at 1M split 750 partners into 61 batches of ~12, each paying the
      // batch's ~18 fixed statements (4.3 s of statements for 865 rows written).
      const since = part.map((id) => new Date(windows.get(id)!.since).toISOString());
      const first = part.map((id) => new Date(windows.get(id)!.first).toISOString());
      const res = await db.raw(
        `SELECT p.id AS partner_id, count(*) FILTER (WHERE f.paid_at < p.first)::int AS prior, count(*) FILTER (WHERE f.paid_at >= p.first)::int AS n
           FROM unnest(?::bigint[], ?::timestamptz[], ?::timestamptz[]) AS p(id, since, first)
          CROSS JOIN LATERAL (SELECT f.paid_at FROM compute_partner_payments f WHERE f.partner_id = p.id AND f.paid_at >= p.since OFFSET 0) f
          GROUP BY 1`,
        [asArray(part), asArray(since), asArray(first)],
      );
      for (const r of res.rows as Row[]) sizes.set(num(r.partner_id), num(r.n) + Math.ceil(num(r.prior) * STORED_SALE_WEIGHT));
    }
    for (const part of chunk(ids.filter((id) => !windows.has(id)), 5_000)) {
      const res = await db.raw(
        `SELECT p.id AS partner_id, count(*)::int AS n FROM unnest(?::bigint[]) AS p(id)
           JOIN partner_accounts pa ON pa.partner_id = p.id
           JOIN attributions a ON a.partner_account_id = pa.id AND a.deleted_at IS NULL
          CROSS JOIN LATERAL (SELECT 1 FROM billing_events e WHERE e.customer_id = a.customer_id OFFSET 0) e
          GROUP BY 1`,
        [asArray(part)],
      );
      for (const r of res.rows as Row[]) sizes.set(num(r.partner_id), num(r.n));
    }
    const batches: Row[][] = [];
    let batch: Row[] = [];
    let events = 0;
    for (const p of partners) {
      const n = sizes.get(num(p.id)) ?? 0;
      if (batch.length > 0 && (batch.length >= batchSize || events + n > batchEvents)) {
        batches.push(batch);
        batch = [];
        events = 0;
      }
      batch.push(p);
      events += n;
    }
    if (batch.length > 0) batches.push(batch);
    const ctx: BatchContext = { versions, asOf, fx, stamp, append, appendFrom, windows };
    let next: Promise<(pause?: Pause) => Promise<BatchResult>> | null = batches.length > 0 ? loadBatch(db, batches[0]!, ctx) : null;
    // On PostgreSQL, batch i is computed while batch i-1 is still being written: one after the
    // other they took the sum, and the write is the longer (100k full compute, ~5k rows a batch:
    // ~0.3 s computing, ~0.9 s writing, most of it the server's upserts). The computing loop pauses
    // every few ms so the write's statements go out as each one ends. Writes stay in batch order,
    // one at a time. PGlite runs its statements on this thread, so there is nothing to overlap
    // there, and its memory is the tighter: one batch at a time, as before.
    const overlap = !isPglite(db);
    const writes = writeBehind(overlap);
    try {
      for (let i = 0; i < batches.length; i++) {
        // The batch's loaded inputs are held by its computing closure, which only this promise chain
        // references: once it has run they can be collected while the rows are written and the next
        // batch loads (memory holds one batch's inputs, not two; on PostgreSQL also the rows of the
        // batch still being written, ~5k rows).
        const computed = next!.then((compute) => compute(overlap ? pauseEvery() : undefined));
        next = i + 1 < batches.length ? loadBatch(db, batches[i + 1]!, ctx) : null;
        next?.catch(() => undefined); // awaited in its turn; an early failure must not be "unhandled"
        const result = await computed;
        await writes.add(() => storeBatch(batches[i]!, result, append));
      }
      await writes.done();
    } finally {
      // A failure while the previous batch was still being written: that write ends (commits or
      // rolls back) before the error leaves, so nothing writes after the compute has returned.
      await writes.settled();
    }
  };

  let agency: Record<string, string | null>;
  if (fullReason !== null) {
    agency = await agencyOwnerState(db, (refs) => resolveAgencyOwners(db, refs));
    let lastId = 0;
    for (;;) {
      const page = (await db('partners').where('id', '>', lastId).orderBy('id').limit(5_000).select(PARTNER_COLS)) as Row[];
      if (page.length === 0) break;
      lastId = num(page[page.length - 1]!.id);
      await runInBatches(page);
    }
    // Tier facts of partners that no longer exist (every existing partner's were replaced above).
    await db.raw(`DELETE FROM compute_partner_payments f WHERE NOT EXISTS (SELECT 1 FROM partners p WHERE p.id = f.partner_id)`);
    // Second-tier rows whose producer no longer prices that payment at all (no direct row of it
    // there, e.g. legacy rows): nothing above reaches them.
    s.deleted += await countDeleted(
      db,
      `DELETE FROM computed_commissions cc WHERE cc.status <> 'paid' AND (cc.kind = 'second_tier' OR cc.clawback_of = 'second_tier')
          AND NOT EXISTS (SELECT 1 FROM computed_commissions d WHERE d.kind = 'direct' AND d.payment_event_id = cc.payment_event_id
                           AND d.partner_id = ${PRODUCER_SQL})
        RETURNING 1`,
      [],
    );
  } else {
    const prev = state!;
    const found = await findAffectedPartners(db, {
      window: { from: cursor!.changeSeq, to: watermark, prevAsOf: new Date(prev.asOf), asOf },
      fx: prev.fx,
      agency: prev.agency,
      resolveAgency: (refs) => resolveAgencyOwners(db, refs),
    });
    s.changes = found.counts;
    agency = found.agency ?? prev.agency;
    s.advanced = await advanceClearedRows(db, asOf);
    for (const part of chunk(found.partners, 5_000)) {
      const partners = (await db('partners').whereRaw('id = ANY(?::bigint[])', [asArray(part)]).orderBy('id').select(PARTNER_COLS)) as Row[];
      await runInBatches(partners, found.append, found.appendFrom);
    }
  }
  await refreshPlannerStats(db, { mode: 'settled', log: opts.log });
  const newState: ComputeCursorState = { v: CURSOR_STATE_VERSION, asOf: asOf.toISOString(), programHash: hash, agency, fx: fxState };
  await saveChangeCursor(db, COMPUTE_CONSUMER, watermark, newState as unknown as Record<string, unknown>);
  s.unmatchedEvents.sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));

  s.byKindStatus = await readComputeTotals(db);
  for (const k of s.byKindStatus) {
    s.totals.rows += k.rows;
    s.totals.amountUsdMinor += k.amountUsdMinor;
    if (k.status === 'due') s.totals.dueUsdMinor += k.amountUsdMinor;
    if (k.status === 'reserve') s.totals.reserveUsdMinor += k.amountUsdMinor;
    if (k.status === 'paid') s.totals.paidUsdMinor += k.amountUsdMinor;
  }
  opts.log?.info(
    { asOf: s.asOf, mode: s.mode, fullReason: s.fullReason, partners: s.partners, computed: s.computed, written: s.written, deleted: s.deleted, advanced: s.advanced, unmatched: s.unmatchedEvents.length },
    'commissions computed',
  );
  return s;
}

/**
 * Every stored row by kind and status, from compute_totals (migration 014: the statement triggers of
 * computed_commissions append each statement's signed difference there). Folds the differences
 * written since the last fold into one row per (kind, status) first, so the read stays a handful of
 * rows whatever the history; the fold is one statement (a concurrent writer's uncommitted
 * differences are not touched, and a concurrent fold's rows are skipped, not counted twice).
 */
export async function readComputeTotals(db: Knex | Knex.Transaction): Promise<KindStatusTotal[]> {
  const rows = (await foldKeptSums(db, 'compute_totals', ['kind', 'status'], ['rows', 'usd_minor'])) as Row[];
  return rows.map((r) => ({ kind: r.kind as CommissionKind, status: r.status as CommissionStatus, rows: num(r.rows), amountUsdMinor: num(r.usd_minor ?? 0) }));
}

// ---------------------------------------------------------------------------------------------
// Reading rows back

/** A stored row as the engine's ComputedCommission (for explanations and payout statements). */
export function rowToCommission(r: Row): ComputedCommission {
  return {
    key: str(r.commission_key),
    kind: r.kind as CommissionKind,
    ...(r.clawback_of ? { clawbackOf: r.clawback_of as 'direct' | 'second_tier' } : {}),
    partnerId: str(r.partner_id),
    partnerAccountId: r.partner_account_id === null || r.partner_account_id === undefined ? null : str(r.partner_account_id),
    network: (r.network as Network | null) ?? null,
    paymentEventId: str(r.payment_event_id),
    sourceEventId: str(r.source_event_id ?? r.payment_event_id),
    tier: strOrNull(r.tier),
    rate: normalizeDecimal(r.rate ?? '0'),
    baseMinor: num(r.base_minor ?? 0),
    baseCurrency: trimCur(r.base_currency ?? 'USD'),
    baseUsdMinor: numOrNull(r.base_usd_minor),
    amountMinor: num(r.amount_minor ?? 0),
    amountUsdMinor: num(r.amount_usd_minor ?? 0),
    status: r.status as CommissionStatus,
    paidAt: dateOf(r.paid_at),
    clearedAt: dateOrNull(r.cleared_at),
    payoutDate: dateOnly(r.payout_date),
    ruleVersion: strOrNull(r.rule_version),
    exclusionReason: strOrNull(r.exclusion_reason),
    flags: json<string[]>(r.flags, []),
    explanation: json<Explanation>(r.explanation, {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Payouts (R9)

export interface PayoutBuildOptions {
  batchSize?: number | undefined;
  programVersions?: readonly ProgramVersion[] | undefined;
}

export interface PayoutBuildSummary {
  payoutDate: string;
  statements: number;
  byStatus: Record<string, number>;
  payableUsdMinor: number;
  carriedOutUsdMinor: number;
  /** Stored statements for this date that no longer have anything in them. */
  deleted: number;
}

/** payouts.network is NOT NULL (it is part of the unique key): a statement without a network is stored as 'none'. */
export const NO_NETWORK = 'none';

export const PAYOUT_DATE_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

export function assertPayoutDate(payoutDate: string, flag = '--date'): void {
  if (!PAYOUT_DATE_RE.test(payoutDate)) throw new UserError(`${flag}: expected a date yyyy-mm-dd (got "${payoutDate}")`);
  const [y, m, d] = payoutDate.split('-').map(Number) as [number, number, number];
  const check = new Date(Date.UTC(y, m - 1, d));
  if (check.getUTCMonth() !== m - 1 || check.getUTCDate() !== d) throw new UserError(`${flag}: not a real date (got "${payoutDate}")`);
}

/**
 * Builds the payout statements for `payoutDate` from computed_commissions (partners in batches) and
 * stores them in payouts + payout_items, idempotently: statements are upserted on (partner, network,
 * date), their items replaced; statements for that date nothing produces any more are deleted.
 * Statements already marked paid are left alone.
 */
export async function buildPayouts(db: Knex, config: Config, payoutDate: string, opts: PayoutBuildOptions = {}): Promise<PayoutBuildSummary> {
  assertPayoutDate(payoutDate);
  const batchSize = opts.batchSize ?? DEFAULT_PARTNER_BATCH_SIZE;
  const versions = opts.programVersions ?? (await loadProgramVersions(config));
  const stamp = dateOf(((await db.raw(`SELECT now() AS now`)).rows[0] as { now: unknown }).now);
  const s: PayoutBuildSummary = { payoutDate, statements: 0, byStatus: {}, payableUsdMinor: 0, carriedOutUsdMinor: 0, deleted: 0 };
  const open = (q: Knex.QueryBuilder): Knex.QueryBuilder => q.whereIn('status', ['due', 'reserve']).whereNotNull('payout_date').where('payout_date', '<=', payoutDate);

  let lastId = 0;
  for (;;) {
    const ids = (await open(db('computed_commissions').where('partner_id', '>', lastId)).distinct('partner_id').orderBy('partner_id').limit(batchSize)).map((r: Row) => num(r.partner_id));
    if (ids.length === 0) break;
    lastId = ids[ids.length - 1]!;
    const rows = await inChunks(ids, (part) =>
      open(db('computed_commissions').whereIn('partner_id', part))
        .orderBy('commission_key')
        .select('commission_key', 'kind', 'clawback_of', 'partner_id', 'partner_account_id', 'network', 'payment_event_id', 'source_event_id', 'status', 'paid_at', 'cleared_at', 'payout_date', 'amount_minor', 'amount_usd_minor', 'base_currency'),
    );
    const { partners, accounts } = await loadPartners(db, ids);
    const liveAccounts = [...accounts.values()].flat().filter((a) => !a.deleted);
    const statements = buildPayoutStatements({
      commissions: (rows as Row[]).map((r) => rowToCommission(r)),
      partners: [...partners.values()],
      payoutDate,
      programVersions: versions,
      // R9 per network: each network's own tax / payout-method report blocks only its payout.
      accounts: liveAccounts.map((a) => ({ partnerId: String(a.partnerId), network: a.network, taxInfoOnFile: a.taxInfoOnFile, payoutMethodOnFile: a.payoutMethodOnFile })),
    });
    await db.transaction(async (trx) => {
      for (const st of statements) {
        const network = st.network ?? NO_NETWORK;
        const row = {
          partner_id: Number(st.partnerId),
          network,
          payout_date: payoutDate,
          balance_usd_minor: st.balanceUsdMinor,
          carried_in_usd_minor: st.carriedInUsdMinor,
          carried_out_usd_minor: st.carriedOutUsdMinor,
          payable_usd_minor: st.payableUsdMinor,
          minimum_usd_minor: st.minimumUsdMinor,
          status: st.status,
          // One text column in the schema: every reason joined; the list itself is in detail.reasons.
          blocked_reason: st.reasons.length ? st.reasons.join(', ') : null,
          detail: JSON.stringify({ reasons: st.reasons, newUsdMinor: st.newUsdMinor, projected: st.projected, lines: st.lines.length, network: st.network }),
          updated_at: stamp,
        };
        const [saved] = (await trx('payouts')
          .insert(row)
          .onConflict(['partner_id', 'network', 'payout_date'])
          .merge(['balance_usd_minor', 'carried_in_usd_minor', 'carried_out_usd_minor', 'payable_usd_minor', 'minimum_usd_minor', 'status', 'blocked_reason', 'detail', 'updated_at'])
          .where('payouts.status', '<>', 'paid')
          .returning('id')) as Array<{ id: number }>;
        if (!saved) continue; // already paid: kept as it was
        await trx('payout_items').where('payout_id', saved.id).delete();
        for (const part of chunk(st.lines, WRITE_CHUNK)) {
          await trx('payout_items').insert(part.map((l) => ({ payout_id: saved.id, commission_key: l.key, amount_usd_minor: l.amountUsdMinor })));
        }
        s.statements++;
        s.byStatus[st.status] = (s.byStatus[st.status] ?? 0) + 1;
        s.payableUsdMinor += st.payableUsdMinor;
        s.carriedOutUsdMinor += st.carriedOutUsdMinor;
      }
    });
  }
  s.deleted = await countDeleted(db, `DELETE FROM payouts WHERE payout_date = ? AND updated_at < ? AND status <> 'paid' RETURNING 1`, [payoutDate, stamp]);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Queries for the CLI, the API and the demo

/** --partner: the partner id, its partner_key, or a network external id (all its matches). */
export async function resolvePartnerRef(db: Knex, ref: string, flag = '--partner'): Promise<number[]> {
  const ids = new Set<number>();
  if (/^\d{1,15}$/.test(ref)) for (const r of await db('partners').where('id', Number(ref)).select('id')) ids.add(num(r.id));
  for (const r of await db('partners').where('partner_key', ref).select('id')) ids.add(num(r.id));
  for (const r of await db('partner_accounts').where('external_id', ref).select('partner_id')) ids.add(num(r.partner_id));
  if (ids.size === 0) throw new UserError(`${flag}: no partner with id, partner_key or network external id "${ref}"`);
  return [...ids].sort((a, b) => a - b);
}

/** --payment: the billing event id, its external id, or its document id (invoice / refund / credit note). */
export async function resolvePaymentRef(db: Knex, ref: string, flag = '--payment'): Promise<number[]> {
  const ids = new Set<number>();
  if (/^\d{1,15}$/.test(ref)) for (const r of await db('billing_events').where('id', Number(ref)).select('id')) ids.add(num(r.id));
  for (const r of await db('billing_events').where('external_id', ref).orWhere('document_id', ref).select('id')) ids.add(num(r.id));
  if (ids.size === 0) throw new UserError(`${flag}: no billing event with id, external id or document id "${ref}"`);
  return [...ids].sort((a, b) => a - b);
}

export interface CommissionFilter {
  /** Partner id, partner_key or network external id. */
  partner?: string | undefined;
  /** Billing event id, external id or document id. */
  payment?: string | undefined;
  limit?: number | undefined;
}

/** One computed commission as the CLI and the demo show it. Keys are stable snake_case; money in minor units. */
export interface CommissionListRow {
  commission_key: string;
  kind: CommissionKind;
  clawback_of: 'direct' | 'second_tier' | null;
  partner_id: number;
  partner_key: string;
  partner_name: string | null;
  network: string | null;
  partner_external_id: string | null;
  payment_event_id: number;
  billing_system: string;
  document_id: string;
  source_event_id: number;
  source_kind: string;
  source_document_id: string;
  tier: string | null;
  rate: string;
  base_minor: number;
  base_currency: string;
  base_usd_minor: number | null;
  amount_minor: number;
  amount_currency: string;
  amount_usd_minor: number | null;
  status: CommissionStatus;
  paid_at: string;
  cleared_at: string | null;
  payout_date: string | null;
  rule_version: string | null;
  exclusion_reason: string | null;
  flags: string[];
}

/** Resolves the filter refs first; returns a builder factory (a builder is a thenable: never resolve one from a promise). */
async function commissionQuery(db: Knex, filter: CommissionFilter): Promise<() => Knex.QueryBuilder> {
  const partnerIds = filter.partner !== undefined ? await resolvePartnerRef(db, filter.partner) : null;
  const paymentIds = filter.payment !== undefined ? await resolvePaymentRef(db, filter.payment) : null;
  return () => {
  const q = db('computed_commissions as cc')
    .join('partners as p', 'p.id', 'cc.partner_id')
    .leftJoin('partner_accounts as pa', 'pa.id', 'cc.partner_account_id')
    .join('billing_events as be', 'be.id', 'cc.payment_event_id')
    .join('billing_events as se', 'se.id', 'cc.source_event_id');
  if (partnerIds) q.whereIn('cc.partner_id', partnerIds);
  if (paymentIds) q.where((w) => w.whereIn('cc.payment_event_id', paymentIds).orWhereIn('cc.source_event_id', paymentIds));
  q.orderBy([{ column: 'cc.partner_id' }, { column: 'cc.paid_at' }, { column: 'cc.commission_key' }]);
  if (filter.limit !== undefined) q.limit(filter.limit);
  return q;
  };
}

const LIST_COLS = [
  'cc.commission_key', 'cc.kind', 'cc.clawback_of', 'cc.partner_id', 'p.partner_key', 'p.name as partner_name', 'cc.network', 'pa.external_id as partner_external_id',
  'cc.payment_event_id', 'be.billing_system', 'be.document_id', 'cc.source_event_id', 'se.kind as source_kind', 'se.document_id as source_document_id', 'cc.tier',
  'cc.rate', 'cc.base_minor', 'cc.base_currency', 'cc.base_usd_minor', 'cc.amount_minor', 'cc.amount_usd_minor', 'cc.status', 'cc.paid_at', 'cc.cleared_at',
  'cc.payout_date', 'cc.rule_version', 'cc.exclusion_reason', 'cc.flags',
];

/** Every computed commission (optionally of one partner / one payment), ordered by partner, paid time, key. */
export async function listCommissions(db: Knex, filter: CommissionFilter = {}): Promise<CommissionListRow[]> {
  const rows = (await (await commissionQuery(db, filter))().select(LIST_COLS)) as Row[];
  return rows.map((r) => ({
    commission_key: str(r.commission_key),
    kind: r.kind as CommissionKind,
    clawback_of: (r.clawback_of as 'direct' | 'second_tier' | null) ?? null,
    partner_id: num(r.partner_id),
    partner_key: str(r.partner_key),
    partner_name: strOrNull(r.partner_name),
    network: strOrNull(r.network),
    partner_external_id: strOrNull(r.partner_external_id),
    payment_event_id: num(r.payment_event_id),
    billing_system: str(r.billing_system),
    document_id: str(r.document_id),
    source_event_id: num(r.source_event_id),
    source_kind: str(r.source_kind),
    source_document_id: str(r.source_document_id),
    tier: strOrNull(r.tier),
    rate: normalizeDecimal(r.rate),
    base_minor: num(r.base_minor),
    base_currency: trimCur(r.base_currency),
    base_usd_minor: numOrNull(r.base_usd_minor),
    amount_minor: num(r.amount_minor),
    amount_currency: trimCur(r.base_currency),
    amount_usd_minor: numOrNull(r.amount_usd_minor),
    status: r.status as CommissionStatus,
    paid_at: dateOf(r.paid_at).toISOString(),
    cleared_at: r.cleared_at ? dateOf(r.cleared_at).toISOString() : null,
    payout_date: dateOnly(r.payout_date),
    rule_version: strOrNull(r.rule_version),
    exclusion_reason: strOrNull(r.exclusion_reason),
    flags: json<string[]>(r.flags, []),
  }));
}

/** One stored payout statement (R9). */
export interface PayoutListRow {
  partner_id: number;
  partner_key: string;
  partner_name: string | null;
  network: string;
  payout_date: string;
  carried_in_usd_minor: number;
  new_usd_minor: number;
  balance_usd_minor: number;
  payable_usd_minor: number;
  carried_out_usd_minor: number;
  minimum_usd_minor: number | null;
  status: string;
  reasons: string[];
  projected: boolean;
  items: number;
}

export async function listPayouts(db: Knex, payoutDate: string, filter: { partner?: string | undefined } = {}): Promise<PayoutListRow[]> {
  assertPayoutDate(payoutDate);
  const q = db('payouts as po').join('partners as p', 'p.id', 'po.partner_id').where('po.payout_date', payoutDate);
  if (filter.partner !== undefined) q.whereIn('po.partner_id', await resolvePartnerRef(db, filter.partner));
  const rows = (await q
    .orderBy([{ column: 'po.partner_id' }, { column: 'po.network' }])
    .select('po.*', 'p.partner_key', 'p.name as partner_name', db.raw('(SELECT count(*) FROM payout_items pi WHERE pi.payout_id = po.id)::int AS items'))) as Row[];
  return rows.map((r) => {
    const detail = json<{ reasons?: string[]; newUsdMinor?: number; projected?: boolean }>(r.detail, {});
    return {
      partner_id: num(r.partner_id),
      partner_key: str(r.partner_key),
      partner_name: strOrNull(r.partner_name),
      network: str(r.network),
      payout_date: dateOnly(r.payout_date)!,
      carried_in_usd_minor: num(r.carried_in_usd_minor),
      new_usd_minor: num(detail.newUsdMinor ?? 0),
      balance_usd_minor: num(r.balance_usd_minor),
      payable_usd_minor: num(r.payable_usd_minor),
      carried_out_usd_minor: num(r.carried_out_usd_minor),
      minimum_usd_minor: numOrNull(r.minimum_usd_minor),
      status: str(r.status),
      reasons: detail.reasons ?? (r.blocked_reason ? str(r.blocked_reason).split(', ') : []),
      projected: detail.projected === true,
      items: num(r.items),
    };
  });
}

/**
 * Human-readable explanations of the stored rows of a partner and/or a payment: the engine's own
 * rendering (explainCommission) plus the counted sales behind the tier, named by billing document.
 */
export async function explainCommissions(db: Knex, filter: Pick<CommissionFilter, 'partner' | 'payment'>, render: (c: ComputedCommission) => string[]): Promise<string[]> {
  const rows = (await (await commissionQuery(db, filter))().select('cc.*', 'p.partner_key', 'pa.external_id as partner_external_id', 'be.billing_system', 'be.document_id')) as Row[];
  if (rows.length === 0) return ['no computed commissions match (run `commission-sync compute` first?)'];
  const saleIds = new Set<number>();
  for (const r of rows) {
    const tier = json<Explanation>(r.explanation, {})['tier'];
    const sales = tier && typeof tier === 'object' && !Array.isArray(tier) ? tier['countedSales'] : null;
    if (Array.isArray(sales)) for (const s of sales) if (s && typeof s === 'object' && !Array.isArray(s) && s['paymentEventId'] != null) saleIds.add(Number(s['paymentEventId']));
  }
  const docs = new Map<number, string>();
  const docRows = await inChunks([...saleIds].filter(Number.isSafeInteger), (part) => db('billing_events').whereIn('id', part).select('id', 'billing_system', 'document_id', 'occurred_at'));
  for (const d of docRows as Row[]) docs.set(num(d.id), `${str(d.billing_system)} ${str(d.document_id)} paid ${dateOf(d.occurred_at).toISOString().slice(0, 10)}`);

  const out: string[] = [];
  for (const r of rows) {
    const c = rowToCommission(r);
    out.push(`partner ${str(r.partner_id)} ${str(r.partner_key)}${r.network ? ` (${str(r.network)} ${strOrNull(r.partner_external_id) ?? '?'})` : ''}; payment ${str(r.billing_system)} ${str(r.document_id)}`);
    out.push(...render(c));
    const tier = c.explanation['tier'];
    if (tier && typeof tier === 'object' && !Array.isArray(tier)) {
      const sales = tier['countedSales'];
      if (Array.isArray(sales) && sales.length > 0) {
        const total = Number(tier['countedSalesTotal'] ?? sales.length);
        out.push(`  counted sales behind tier ${String(tier['id'])}${total > sales.length ? ` (first ${sales.length} of ${total})` : ''}:`);
        for (const s of sales) {
          if (!s || typeof s !== 'object' || Array.isArray(s)) continue;
          const id = Number(s['paymentEventId']);
          out.push(`    - event ${String(s['paymentEventId'])} (${docs.get(id) ?? 'unknown document'}), customer ${String(s['customerId'])}, ${String(s['usdMinor'])} USD cents`);
        }
      } else out.push(`  counted sales behind tier ${String(tier['id'])}: none`);
    }
    out.push('');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recording a payout as paid

export interface MarkPaidSummary {
  statements: number;
  commissions: number;
  usdMinor: number;
}

/**
 * Records that the payable statements of a payout date were paid out (the monthly payout review's
 * last step): the statements become `paid` and their due lines (commissions and clawbacks) become
 * `paid`, so later refunds are clawed back instead of editing them (R8) and rebuilding never touches
 * them again. Statements carried forward or blocked are left as they are. Idempotent.
 */
export async function markPayoutsPaid(db: Knex, payoutDate: string, filter: { partner?: string | undefined; network?: string | undefined } = {}): Promise<MarkPaidSummary> {
  assertPayoutDate(payoutDate);
  const partnerIds = filter.partner !== undefined ? await resolvePartnerRef(db, filter.partner) : undefined;
  return db.transaction(async (trx) => {
    const q = trx('payouts').where({ payout_date: payoutDate, status: 'payable' });
    if (partnerIds) q.whereIn('partner_id', partnerIds);
    if (filter.network !== undefined) q.where('network', filter.network);
    const statements = (await q.select('id', 'payable_usd_minor')) as Array<{ id: number; payable_usd_minor: number }>;
    if (statements.length === 0) return { statements: 0, commissions: 0, usdMinor: 0 };
    const ids = statements.map((s) => s.id);
    await trx('payouts').whereIn('id', ids).update({ status: 'paid', updated_at: new Date() });
    const keys = trx('payout_items').whereIn('payout_id', ids).select('commission_key');
    const lines = await trx('computed_commissions').whereIn('commission_key', keys).where('status', 'due').update({ status: 'paid' }).returning('id');
    return { statements: statements.length, commissions: lines.length, usdMinor: statements.reduce((a, s) => a + Number(s.payable_usd_minor), 0) };
  });
}
