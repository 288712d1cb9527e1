// commission-sync commissions [--partner <id>] [--payment <id>] [--format table|json|csv]
// Lists stored computed commissions. JSON rows are listCommissions()'s rows as they are (stable
// snake_case keys, money in minor units with its currency) so other tools can embed them.
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { listCommissions, type CommissionListRow } from '../../rules/store.ts';
import { UserError } from '../../util/errors.ts';

export { listCommissions, type CommissionListRow, type CommissionFilter } from '../../rules/store.ts';

/** Columns of the CSV export (every field but flags, which is joined with '|'). */
export const COMMISSION_CSV_COLUMNS = [
  'commission_key', 'kind', 'clawback_of', 'partner_id', 'partner_key', 'network', 'partner_external_id', 'payment_event_id', 'billing_system', 'document_id',
  'source_event_id', 'source_kind', 'source_document_id', 'tier', 'rate', 'base_minor', 'base_currency', 'base_usd_minor', 'amount_minor', 'amount_currency',
  'amount_usd_minor', 'status', 'paid_at', 'cleared_at', 'payout_date', 'rule_version', 'exclusion_reason', 'flags',
] as const;

const minor = (n: number | null, currency: string): string => (n === null ? '' : `${n} ${currency}`);

export function renderCommissions(rows: CommissionListRow[], format: 'table' | 'json' | 'csv'): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv') return renderRows(rows.map((r) => ({ ...r, flags: r.flags.join('|') })), 'csv', [...COMMISSION_CSV_COLUMNS]);
  return renderRows(
    rows.map((r) => ({
      partner: `${r.partner_key} (${r.network ?? 'no network'} ${r.partner_external_id ?? ''})`.replace(' )', ')'),
      payment: `${r.billing_system} ${r.document_id}${r.kind === 'clawback' ? ` ← ${r.source_document_id}` : ''}`,
      kind: r.kind,
      tier: r.tier ?? '',
      rate: r.rate,
      base: minor(r.base_minor, r.base_currency),
      amount: minor(r.amount_minor, r.amount_currency),
      usd: usd(r.amount_usd_minor),
      status: r.status,
      cleared: r.cleared_at?.slice(0, 10) ?? '',
      payout: r.payout_date ?? '',
      reason: r.exclusion_reason ?? '',
    })),
    'table',
  );
}

export function register(program: Command): void {
  program
    .command('commissions')
    .description('list computed commissions (direct, second_tier, clawback) with tier, rate, base, amount, status and dates')
    .option('--partner <id>', 'partner id, partner_key or network external id')
    .option('--payment <id>', 'billing event id, external id or document id')
    .option('--limit <n>', 'at most n rows')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { partner?: string; payment?: string; limit?: string; format?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      let limit: number | undefined;
      if (opts.limit !== undefined) {
        limit = Number(opts.limit);
        if (!Number.isSafeInteger(limit) || limit < 1) throw new UserError(`--limit: expected a positive integer (got "${opts.limit}")`);
      }
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const rows = await listCommissions(app.db, { partner: opts.partner, payment: opts.payment, limit });
        console.log(renderCommissions(rows, format));
      } finally {
        await app.close();
      }
    });
}
