// The Awin `transactions` stream. Each run plans up to three passes, in windows of ≤31 days and
// always with `timezone`:
//   1. dateType=transaction from the last run's end (minus overlapHours) to now — new sales;
//   2. dateType=validation — approvals/declines of older sales;
//   3. dateType=amendment — amended amounts.
// 2 and 3 select by the date of the change, so they are change feeds. Cadence (src/sync/lookback.ts):
// a *sweep* — first run, `--sweep`, or the last sweep ≥ sync.lookback.everyHours ago — re-reads them
// over the last lookbackDays (the deep re-read, in case a change was dated before our last read);
// runs in between read them from their own last completed end (`changesThrough`) minus tailHours.
// `lastSweepAt` and `changesThrough` are in the checkpoint; states without them sweep.
// The plan and the window position are in the checkpoint, so a stopped run resumes mid-pass.
// Awin reports deletions as status 'deleted', so no vanish-based deletion (completedWindow) is used:
// validation/amendment passes select by a different date than the record time.
import { DateTime } from 'luxon';
import type { Knex } from 'knex';
import type { Json, Page, StreamDef, SyncContext } from '../../src/sync/types.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { sweepDue, tailMs } from '../../src/sync/lookback.ts';
import { attributeFromSales, upsertNetworkCommissions, upsertPartnerAccounts } from '../../src/model/index.ts';
import type { AccountRef } from '../../src/model/partners.ts';
import { chunk } from '../../src/util/chunk.ts';
import { createAwinClient, type AwinClient } from './client.ts';
import { awinTransactionSchema, parseAwinOptions, type AwinOptions, type AwinTransaction } from './schemas.ts';
import { parseAwinTime, toAwinDate, toNetworkCommission } from './mapping.ts';
import { applyIdentityMap, readIdentityCsv } from './identity.ts';
import { staleSales } from '../stale.ts';

export interface AwinRuntime {
  opts: AwinOptions;
  client: AwinClient;
}

export function awinRuntime(ctx: Pick<SyncContext, 'connection' | 'env' | 'log'>): AwinRuntime {
  const opts = parseAwinOptions(ctx.connection);
  const client = createAwinClient({
    connection: ctx.connection.name,
    baseURL: ctx.connection.baseUrl,
    token: resolveSecret(ctx.connection, 'token', ctx.env)!,
    rateLimit: ctx.connection.rateLimit ?? { requests: opts.requestsPerMinute, intervalMs: 60_000 },
    limitWaitMs: opts.limitWaitMs,
    retries: opts.retries,
    minBackoffMs: opts.minBackoffMs,
    timeoutMs: ctx.connection.timeoutMs,
    logger: ctx.log,
  });
  return { opts, client };
}

type DateType = 'transaction' | 'validation' | 'amendment';

export interface AwinState {
  [k: string]: Json;
  v: 1;
  /** End of the last completed transaction-date pass (ISO instant). */
  txCursor: string | null;
  /** End of the last completed validation/amendment passes (ISO instant); absent in older states. */
  changesThrough: string | null;
  /** Run clock (epoch ms) of the last completed sweep; absent in older states = a sweep is due. */
  lastSweepAt: number | null;
  /** `sweepAt`: the run clock when this run's change passes are a sweep, else null (absent in older runs). */
  run: { steps: Array<{ dateType: DateType; from: string; to: string }>; step: number; windowStart: string; sweepAt: number | null } | null;
}

export async function ensureAwinAccounts(trx: Knex, connection: string, records: AwinTransaction[]): Promise<Map<string, AccountRef>> {
  const out = new Map<string, AccountRef>();
  const ids = [...new Set(records.map((r) => String(r.publisherId)))];
  for (const part of chunk(ids, 1000)) {
    const found = await trx('partner_accounts').where({ connection }).whereIn('external_id', part).select<{ id: number; partner_id: number; external_id: string }[]>('id', 'partner_id', 'external_id');
    for (const f of found) out.set(f.external_id, { accountId: f.id, partnerId: f.partner_id });
  }
  const missing = new Map<string, AwinTransaction>();
  for (const r of records) if (!out.has(String(r.publisherId)) && !missing.has(String(r.publisherId))) missing.set(String(r.publisherId), r);
  if (missing.size > 0) {
    const created = await upsertPartnerAccounts(trx, [...missing.values()].map((r) => ({ connection, network: 'awin' as const, externalId: String(r.publisherId), name: r.siteName ?? null })));
    for (const [k, v] of created) out.set(k, v);
  }
  return out;
}

/** Loads the configured identity map (options and CSV) into identity_links. */
export async function loadIdentityMap(db: Knex, ctx: Pick<SyncContext, 'connection' | 'log'>, opts: AwinOptions): Promise<void> {
  const entries = [...opts.identityMap];
  if (opts.identityMapFile) entries.push(...readIdentityCsv(opts.identityMapFile, `connections.${ctx.connection.name}.options.identityMapFile`));
  if (entries.length === 0) return;
  const r = await applyIdentityMap(db, entries, opts.identityMapFile ? 'csv' : 'config');
  ctx.log.info({ links: r.links, moved: r.moved }, 'ShareASale → Awin identity map applied');
}

export function transactionsStream(ctx: SyncContext, rt?: AwinRuntime): StreamDef<AwinTransaction, AwinState> {
  const opts = rt?.opts ?? parseAwinOptions(ctx.connection);
  const zone = opts.timezone;
  return {
    name: 'transactions',
    schema: awinTransactionSchema,
    key: (r) => String(r.id),
    recordTime: (r) => parseAwinTime(r.transactionDate, zone),
    initialState: () => ({ v: 1, txCursor: null, changesThrough: null, lastSweepAt: null, run: null }),
    async *read(c, state): AsyncIterable<Page<AwinState>> {
      const { client } = rt ?? awinRuntime(c);
      await loadIdentityMap(c.db, c, opts);
      // Older states lack the cadence fields: null means "sweep".
      const changesThrough = state.changesThrough ?? null;
      const lastSweepAt = state.lastSweepAt ?? null;
      let run = state.run;
      if (!run) {
        const now = DateTime.fromJSDate(c.now, { zone });
        const start = opts.startDate ? DateTime.fromISO(opts.startDate, { zone }).startOf('day') : now.minus({ days: 90 }).startOf('day');
        let txFrom = state.txCursor ? DateTime.fromISO(state.txCursor, { zone }).minus({ hours: opts.overlapHours }) : start;
        if (txFrom < start) txFrom = start;
        // A clock behind the checkpoint (a run on an earlier --now, a simulated present): read a
        // short window ending now rather than ask for an end date before the start date (HTTP 400).
        if (txFrom >= now) txFrom = now.minus({ hours: Math.max(opts.overlapHours, 1) });
        const steps: NonNullable<AwinState['run']>['steps'] = [{ dateType: 'transaction', from: txFrom.toISO()!, to: now.toISO()! }];
        let sweepAt: number | null = null;
        if (opts.lookbackDays > 0) {
          // Never start after the last run's end: after a pause longer than the look-back, the
          // approvals/declines/amendments made in between would otherwise never be read.
          let lb = now.minus({ days: opts.lookbackDays });
          const lastEnd = changesThrough ?? state.txCursor;
          if (lastEnd) {
            const last = DateTime.fromISO(lastEnd, { zone });
            if (last < lb) lb = last;
          }
          let from = lb;
          if (changesThrough && !sweepDue(c, lastSweepAt)) {
            // Tail: the change feed from its own last end − tailHours (no further back than a sweep).
            const tail = DateTime.fromISO(changesThrough, { zone }).minus({ milliseconds: tailMs(c) });
            if (tail > from) from = tail;
            // A clock behind the last run: never ask for a start after the end (HTTP 400).
            if (from >= now) from = lb;
          } else {
            sweepAt = c.now.getTime();
          }
          steps.push({ dateType: 'validation', from: from.toISO()!, to: now.toISO()! }, { dateType: 'amendment', from: from.toISO()!, to: now.toISO()! });
        }
        run = { steps, step: 0, windowStart: steps[0]!.from, sweepAt };
      } else {
        c.log.info({ step: run.steps[run.step]?.dateType, windowStart: run.windowStart }, 'resuming Awin run');
      }
      // A tail run (look-back on, no sweep due) does not re-map unchanged records (Page.skipUnchanged,
      // stale()); a sweep re-maps all.
      const tail = run.sweepAt === null && opts.lookbackDays > 0;
      for (;;) {
        const step = run.steps[run.step]!;
        const wStart = DateTime.fromISO(run.windowStart, { zone });
        const stepEnd = DateTime.fromISO(step.to, { zone });
        let wEnd = wStart.plus({ days: opts.windowDays });
        if (wEnd > stepEnd) wEnd = stepEnd;
        const records = await client.listTransactions(opts.advertiserId, {
          startDate: toAwinDate(wStart.toJSDate(), zone),
          endDate: toAwinDate(wEnd.toJSDate(), zone),
          timezone: zone,
          dateType: step.dateType,
        });
        c.log.debug({ dateType: step.dateType, from: wStart.toISO(), to: wEnd.toISO(), records: records.length }, 'Awin window');
        if (wEnd < stepEnd) {
          run = { ...run, windowStart: wEnd.toISO()! };
          yield { records, state: { v: 1, txCursor: state.txCursor, changesThrough, lastSweepAt, run }, skipUnchanged: tail };
          continue;
        }
        if (run.step + 1 < run.steps.length) {
          run = { ...run, step: run.step + 1, windowStart: run.steps[run.step + 1]!.from };
          yield { records, state: { v: 1, txCursor: state.txCursor, changesThrough, lastSweepAt, run }, skipUnchanged: tail };
          continue;
        }
        const changeEnd = run.steps.find((x) => x.dateType !== 'transaction')?.to ?? changesThrough;
        yield { records, state: { v: 1, txCursor: run.steps[0]!.to, changesThrough: changeEnd, lastSweepAt: run.sweepAt ?? lastSweepAt, run: null }, skipUnchanged: tail };
        return;
      }
    },
    async write(trx, records, c) {
      const accounts = await ensureAwinAccounts(trx, c.connection.name, records);
      const rows = records.map((r) => toNetworkCommission(r, { connection: c.connection.name, timezone: zone, partnerAccountId: accounts.get(String(r.publisherId))?.accountId ?? null }));
      const ids = await upsertNetworkCommissions(trx, rows);
      // R1: the sale's orderRef names the billing document, hence the customer it attributes.
      await attributeFromSales(trx, rows);
      return { inserted: ids.size };
    },
    stale: (trx, keys, c) => staleSales(trx, c.connection.name, keys),
  };
}
