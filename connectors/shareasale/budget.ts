// ShareASale monthly request credits. Every HTTP attempt spends one credit (reference §3: "1 credit per
// request"; credits per request type may vary — not documented, so 1 is assumed). Usage is counted in
// `api_usage` (connection, period yyyy-mm) and corrected upward from `apitokencount` when it reports more.
// A sync stops cleanly (StopSync, resumable from its checkpoint) before it would dip into the reserve;
// pushes may spend the reserve but never the last credit of the quota.
import { DateTime } from 'luxon';
import type { Knex } from 'knex';
import { StopSync } from '../../src/sync/engine.ts';

export interface CreditBudgetOptions {
  db: Knex;
  connection: string;
  monthlyQuota: number;
  reserve: number;
  /** Monthly periods follow this zone (ShareASale's reset instant is not documented). */
  timezone: string;
  now?: () => Date;
}

export interface CreditBudget {
  period(): string;
  used(): Promise<number>;
  /** For sync requests: throws StopSync when fewer than `n` credits remain above the reserve. */
  ensureForSync(n?: number): Promise<void>;
  /** For pushes: true when `n` credits remain in the quota (the reserve may be spent). */
  availableForPush(n?: number): Promise<boolean>;
  /** Adds `n` spent credits. */
  spend(n: number): Promise<void>;
  /** Raises the local count to what ShareASale reports (never lowers it). */
  observe(reportedUsed: number, reportedQuota?: number): Promise<void>;
  /** Quota in force (configured, or lower if ShareASale reported a lower one). */
  quota(): number;
}

export function createCreditBudget(o: CreditBudgetOptions): CreditBudget {
  let quota = o.monthlyQuota;
  const period = (): string => DateTime.fromJSDate(o.now?.() ?? new Date(), { zone: o.timezone }).toFormat('yyyy-MM');
  const used = async (): Promise<number> => {
    const row = await o.db('api_usage').where({ connection: o.connection, period: period() }).first<{ used: number } | undefined>('used');
    return row ? Number(row.used) : 0;
  };
  const upsert = async (delta: number, floor?: number): Promise<void> => {
    const p = period();
    await o.db('api_usage')
      .insert({ connection: o.connection, period: p, used: Math.max(delta, floor ?? 0), quota, updated_at: new Date() })
      .onConflict(['connection', 'period'])
      .merge({
        used: floor !== undefined ? o.db.raw('GREATEST(api_usage.used, ?)', [floor]) : o.db.raw('api_usage.used + ?', [delta]),
        quota,
        updated_at: new Date(),
      });
  };
  return {
    period,
    used,
    quota: () => quota,
    async ensureForSync(n = 1) {
      const u = await used();
      const limit = quota - o.reserve;
      if (u + n > limit) {
        throw new StopSync(
          `ShareASale credit budget: ${u} of ${quota} monthly request credits used in ${period()} (reserve ${o.reserve} kept for pushes); ` +
            'stopping before the budget is exhausted. The next run resumes from the checkpoint once credits are available (next month, or raise options.credits.monthlyQuota if the account has more).',
        );
      }
    },
    async availableForPush(n = 1) {
      return (await used()) + n <= quota;
    },
    async spend(n) {
      if (n > 0) await upsert(n);
    },
    async observe(reportedUsed, reportedQuota) {
      if (reportedQuota !== undefined && reportedQuota > 0 && reportedQuota < quota) quota = reportedQuota;
      if (Number.isFinite(reportedUsed) && reportedUsed >= 0) await upsert(0, Math.floor(reportedUsed));
    },
  };
}

/**
 * Reads an `apitokencount` reply. Its shape is not documented: a delimited table with a header, or a
 * bare number. Columns whose name mentions used/count/requests give usage; limit/quota/allowed/total
 * give the quota; remaining/available with a quota give usage by difference. Undefined when unreadable.
 */
export function parseTokenCount(body: string): { used?: number; quota?: number } | undefined {
  const text = body.trim();
  if (/^\d+$/.test(text)) return { used: Number(text) };
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) return undefined;
  const delim = lines[0]!.includes('|') ? '|' : lines[0]!.includes('\t') ? '\t' : ',';
  const head = lines[0]!.split(delim).map((h) => h.trim().toLowerCase());
  const vals = lines[1]!.split(delim).map((v) => v.trim().replace(/,/g, ''));
  const num = (re: RegExp): number | undefined => {
    const i = head.findIndex((h) => re.test(h));
    const v = i >= 0 ? vals[i] : undefined;
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const quota = num(/limit|quota|allowed|total|max/);
  const remaining = num(/remain|available|left/);
  let used = num(/used|count|requests|made/);
  if (used === undefined && remaining !== undefined && quota !== undefined) used = quota - remaining;
  if (used === undefined && quota === undefined) return undefined;
  return { ...(used !== undefined ? { used } : {}), ...(quota !== undefined ? { quota } : {}) };
}
