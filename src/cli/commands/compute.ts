// commission-sync compute [--as-of <instant>] [--full]: runs the program rules over the canonical
// tables and stores computed_commissions (idempotent), then prints counts and USD totals by kind and
// status. Incremental by default (only the partners the changes since the last run can affect, see
// src/rules/incremental.ts); --full recomputes every partner.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { computeAndStore, DEFAULT_BATCH_EVENTS } from '../../rules/store.ts';
import { UserError } from '../../util/errors.ts';

const INSTANT_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d))?$/;

/** An ISO instant with a zone ("2025-03-01T12:00:00Z", "+02:00") or a date (UTC midnight). */
export function parseInstant(value: string, flag = '--as-of'): Date {
  const v = value.trim();
  if (!INSTANT_RE.test(v)) throw new UserError(`${flag}: expected an ISO instant with a time zone (2025-03-01T12:00:00Z) or a date yyyy-mm-dd (got "${value}")`);
  // The calendar date must exist (Date would roll 2025-02-30 over to March).
  const [y, m, dd] = v.slice(0, 10).split('-').map(Number) as [number, number, number];
  const check = new Date(Date.UTC(y, m - 1, dd));
  if (check.getUTCMonth() !== m - 1 || check.getUTCDate() !== dd) throw new UserError(`${flag}: not a real date (got "${value}")`);
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(d.getTime())) throw new UserError(`${flag}: not a valid instant (got "${value}")`);
  return d;
}

export function register(program: Command): void {
  program
    .command('compute')
    .description('apply the program rules: compute direct, second-tier and clawback commissions and store them')
    .option('--as-of <instant>', 'compute as of this instant (ISO with zone, or yyyy-mm-dd = UTC midnight); default now')
    .option('--batch-size <n>', 'partners per batch', '500')
    .option('--batch-events <n>', 'billing events per batch (a partner with more is computed alone); bounds memory', String(DEFAULT_BATCH_EVENTS))
    .option('--full', 'recompute every partner (default: only the partners affected by changes since the last run)')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { asOf?: string; batchSize: string; batchEvents: string; format?: string; full?: boolean }, cmd: Command) => {
      const format = parseFormat(opts.format);
      const asOf = opts.asOf !== undefined ? parseInstant(opts.asOf) : new Date();
      const batchSize = Number(opts.batchSize);
      if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new UserError(`--batch-size: expected a positive integer (got "${opts.batchSize}")`);
      const batchEvents = Number(opts.batchEvents);
      if (!Number.isSafeInteger(batchEvents) || batchEvents < 1) throw new UserError(`--batch-events: expected a positive integer (got "${opts.batchEvents}")`);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
      try {
        const s = await computeAndStore(app.db, app.config, asOf, { batchSize, batchEvents, log: app.log, full: opts.full === true });
        if (format === 'json') {
          console.log(JSON.stringify(s, null, 2));
          return;
        }
        const rows = s.byKindStatus.map((k) => ({ kind: k.kind, status: k.status, rows: k.rows, amount_usd_minor: k.amountUsdMinor }));
        if (format === 'csv') {
          console.log(renderRows(rows, 'csv', ['kind', 'status', 'rows', 'amount_usd_minor']));
          return;
        }
        console.log(`Computed as of ${s.asOf} (program ${s.program}: ${s.versions.join(', ')})`);
        console.log(s.mode === 'full' ? `Full recompute (${s.fullReason ?? ''}): every partner` : `Incremental: partners affected by changes up to change ${s.changeSeq}; ${s.advanced} reserve rows became due`);
        console.log(`${s.partners} partners recomputed in ${s.batches} batches (${s.partnersWithCustomers} with attributed customers), ${s.payments} payments; ${s.computed} rows computed, ${s.written} written, ${s.deleted} stale rows deleted`);
        if (s.appendOnlyPartners) console.log(`${s.appendOnlyPartners} of them only had new payments after their history: only those payments' rows computed`);
        if (s.fxRatesLoaded) console.log(`${s.fxRatesLoaded} FX rates loaded from ${app.config.fxRatesFile ?? ''}`);
        console.log(renderRows(rows.map((r) => ({ kind: r.kind, status: r.status, rows: r.rows, amount: usd(r.amount_usd_minor) })), 'table'));
        console.log(`Total ${s.totals.rows} rows, ${usd(s.totals.amountUsdMinor)} (due ${usd(s.totals.dueUsdMinor)}, reserve ${usd(s.totals.reserveUsdMinor)}, paid ${usd(s.totals.paidUsdMinor)})`);
        if (s.unmatchedEvents.length) {
          console.log(`${s.unmatchedEvents.length} refunds/disputes point at no known payment:`);
          console.log(renderRows(s.unmatchedEvents.slice(0, 50).map((u) => ({ event: u.eventId, reason: u.reason })), 'table'));
        }
      } finally {
        await app.close();
      }
    });
}
