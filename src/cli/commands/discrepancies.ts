// commission-sync discrepancies list|show|approve|ignore|reopen
import type { Command } from 'commander';
import { openApp, type GlobalOptions } from '../context.ts';
import { parseFormat, renderRows, usd } from '../output.ts';
import { decideDiscrepancies, listDiscrepancies } from '../../reconcile/discrepancies.ts';
import { DISCREPANCY_KINDS, SEVERITIES, type Severity } from '../../reconcile/types.ts';
import { UserError } from '../../util/errors.ts';
import { userInfo } from 'node:os';

function parseIds(ids: string[]): number[] {
  return ids.map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n <= 0) throw new UserError(`expected discrepancy ids (positive integers), got "${s}"`);
    return n;
  });
}

const STATUSES = ['open', 'approved', 'resolved', 'ignored'] as const;
const NETWORKS = ['partnerstack', 'shareasale', 'awin'] as const;

function oneOf(flag: string, allowed: readonly string[], values: string[] | undefined): void {
  for (const v of values ?? []) if (!allowed.includes(v)) throw new UserError(`${flag}: expected one of ${allowed.join(', ')} (got "${v}")`);
}

function parseLimit(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n <= 0) throw new UserError(`--limit: expected a positive integer (got "${v}")`);
  return n;
}

const who = (): string => {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
};

export function register(program: Command): void {
  const d = program.command('discrepancies').description('list and decide on reconciliation discrepancies');

  d.command('list')
    .description('list discrepancies (default: open and approved)')
    .option('--status <status...>', 'open | approved | resolved | ignored', ['open', 'approved'])
    .option('--kind <kind...>', DISCREPANCY_KINDS.join(' | '))
    .option('--period <yyyy-mm>')
    .option('--network <network>')
    .option('--min-severity <severity>', SEVERITIES.join(' | '))
    .option('--limit <n>', 'at most n rows', '500')
    .option('--format <format>', 'table | json | csv', 'table')
    .action(async (opts: { status: string[]; kind?: string[]; period?: string; network?: string; minSeverity?: string; limit: string; format?: string }, cmd: Command) => {
      const format = parseFormat(opts.format);
      if (opts.minSeverity && !SEVERITIES.includes(opts.minSeverity as Severity)) throw new UserError(`--min-severity: expected one of ${SEVERITIES.join(', ')}`);
      oneOf('--status', STATUSES, opts.status);
      oneOf('--kind', DISCREPANCY_KINDS, opts.kind);
      oneOf('--network', NETWORKS, opts.network === undefined ? undefined : [opts.network]);
      if (opts.period !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) throw new UserError(`--period: expected yyyy-mm (got "${opts.period}")`);
      const limit = parseLimit(opts.limit);
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const list = await listDiscrepancies(app.db, { status: opts.status, kind: opts.kind, period: opts.period, network: opts.network, minSeverity: opts.minSeverity as Severity | undefined, limit });
        if (format === 'json') console.log(JSON.stringify(list, null, 2));
        else console.log(renderRows(list.map((x) => ({ id: x.id, kind: x.kind, severity: x.severity, status: x.status, network: x.network, period: x.period, partner: x.partnerName ?? x.partnerId, expected: x.expectedMinor, reported: x.reportedMinor, currency: x.currency, at_stake: format === 'csv' ? x.usdAtStakeMinor : usd(x.usdAtStakeMinor), reason: x.reason ?? (x.detail.reason as string | undefined) ?? '' })), format));
      } finally {
        await app.close();
      }
    });

  d.command('show <id>')
    .description('one discrepancy with its drill-down detail (network record, billing facts, rule explanation)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const app = await openApp(cmd.optsWithGlobals<GlobalOptions>());
      try {
        const [x] = await listDiscrepancies(app.db, { ids: parseIds([id]) });
        if (!x) throw new UserError(`no discrepancy #${id}`);
        console.log(JSON.stringify(x, null, 2));
      } finally {
        await app.close();
      }
    });

  for (const [name, decision, help] of [
    ['approve', 'approve', 'queue for push (the next `push --apply` sends their corrections)'],
    ['ignore', 'ignore', 'never report again (needs --reason)'],
    ['reopen', 'reopen', 'undo approve/ignore'],
  ] as const) {
    d.command(`${name} <ids...>`)
      .description(help)
      .option('--reason <text>', 'why (stored with the decision)')
      .action(async (ids: string[], opts: { reason?: string }, cmd: Command) => {
        const app = await openApp(cmd.optsWithGlobals<GlobalOptions>(), { maintain: true });
        try {
          const r = await decideDiscrepancies(app.db, parseIds(ids), decision, { reason: opts.reason, by: who() });
          if (r.updated.length) console.log(`${name}: ${r.updated.map((i) => `#${i}`).join(', ')}`);
          for (const s of r.skipped) console.error(`#${s.id}: not changed (${s.why})`);
          if (r.skipped.length) process.exitCode = 1;
        } finally {
          await app.close();
        }
      });
  }
}
