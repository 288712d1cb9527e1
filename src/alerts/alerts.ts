// Alert triggers and delivery. Triggers read the database and produce candidates, each with a
// stable reference (`discrepancy:<id>`, `sync_failed:<run id>`, …). Delivery records one row per
// (reference, sink) in `alerts` (dedupe_key unique), so a candidate is delivered once per sink
// however often the job runs. A failing sink is retried a few times with a short backoff, recorded
// as failed (retried on later runs up to a bound) and reported — it never throws into the caller.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { DateTime } from 'luxon';
import type { Config } from '../config/schema.ts';
import { errorMessage } from '../util/errors.ts';
import { scrubSecrets, scrubValue } from '../util/secrets.ts';
import { SEVERITIES, type Severity } from '../reconcile/types.ts';
import { listDiscrepancies, type DiscrepancyRecord } from '../reconcile/discrepancies.ts';
import { createSink, type AlertMessage, type Sink } from './sinks.ts';

export type AlertTrigger = 'discrepancy' | 'discrepancy_summary' | 'sync_failed' | 'sync_stale' | 'push_failed' | 'quarantine_growth' | 'digest';

export interface AlertCandidate extends AlertMessage {
  trigger: AlertTrigger;
  /** Stable identity of what is alerted; with the sink name it is the dedupe key. */
  ref: string;
  /** A summary stands for these refs: once it is sent to a sink, they count as sent there too. */
  covers?: string[];
}

export interface AlertDeps {
  db: Knex;
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv | undefined;
  /** Injected sinks (tests); default built from config.alerts.sinks. */
  sinks?: Sink[] | undefined;
}

export interface AlertSummary {
  candidates: number;
  sent: number;
  failed: number;
  deduped: number;
  sinkErrors: Array<{ sink: string; ref: string; error: string }>;
}

const usd = (minor: number): string => `${minor < 0 ? '-' : ''}$${(Math.abs(minor) / 100).toFixed(2)}`;
const rank = (s: string): number => SEVERITIES.indexOf(s as Severity);


function discrepancyLine(d: DiscrepancyRecord): string {
  return `#${d.id} ${d.kind} ${d.severity} ${usd(d.usdAtStakeMinor)} — ${d.network ?? '?'} ${d.period ?? ''} partner ${d.partnerName ?? d.partnerId ?? '?'}${d.computedCommissionKey ? ` (${d.computedCommissionKey})` : ''}`;
}

export async function collectAlerts(deps: AlertDeps, opts: { now?: Date } = {}): Promise<AlertCandidate[]> {
  const { db, config } = deps;
  const a = config.alerts;
  const now = opts.now ?? new Date();
  const out: AlertCandidate[] = [];

  // New discrepancies above the threshold (individually, unless a daily digest is configured).
  if (!a.digest) {
    const individual: AlertCandidate[] = [];
    const sinkNames = [...new Set([...(deps.sinks ?? []).map((x) => x.name), ...a.sinks.map((x) => x.name)])];
    for (const d of await discrepanciesToAlert(db, a, sinkNames)) {
      individual.push({ trigger: 'discrepancy', ref: `discrepancy:${d.id}`, severity: d.severity, subject: `${d.kind} ${usd(d.usdAtStakeMinor)} (${d.network ?? '?'} ${d.period ?? ''})`, text: discrepancyLine(d), payload: { discrepancyId: d.id, kind: d.kind, severity: d.severity, usdAtStakeMinor: d.usdAtStakeMinor, network: d.network, period: d.period, partnerId: d.partnerId, partnerName: d.partnerName, computedCommissionKey: d.computedCommissionKey } });
    }
    out.push(...(await floodGuard(db, individual, a.maxPerRun, sinkNames)));
  }

  // Failed or stale syncs, per enabled connection; each fact read for all connections at once.
  const conns = config.connections.filter((x) => x.enabled);
  const facts = await connectionFacts(db, conns.map((c) => c.name), a.quarantineGrowth > 0);
  for (const c of conns) {
    const last = facts.lastRun.get(c.name);
    if (last && last.status === 'failed') {
      out.push({ trigger: 'sync_failed', ref: `sync_failed:${last.id}`, severity: 'high', subject: `sync of ${c.name} failed`, text: `Run ${last.id} of ${c.name} failed: ${scrubSecrets(String(last.error ?? 'unknown error'))}`, payload: { connection: c.name, runId: Number(last.id), error: scrubSecrets(String(last.error ?? '')) } });
    }
    const okAt = facts.lastOkAt.get(c.name);
    const lastOk = okAt ? new Date(okAt) : null;
    const ageH = lastOk ? (now.getTime() - lastOk.getTime()) / 3_600_000 : Infinity;
    if (ageH > a.staleSyncHours) {
      out.push({ trigger: 'sync_stale', ref: `sync_stale:${c.name}:${lastOk?.toISOString() ?? 'never'}`, severity: 'high', subject: `no successful sync of ${c.name} for ${lastOk ? `${Math.floor(ageH)} h` : 'ever'}`, text: `${c.name}: last success ${lastOk?.toISOString() ?? 'never'}; threshold ${a.staleSyncHours} h (alerts.staleSyncHours).`, payload: { connection: c.name, lastSuccessAt: lastOk?.toISOString() ?? null, staleSyncHours: a.staleSyncHours } });
    }
    // Quarantine growth since the last alert about it.
    if (a.quarantineGrowth > 0) {
      const count = facts.quarantined.get(c.name) ?? 0;
      const prev = facts.lastGrowthAlert.get(c.name);
      const prevCount = Number((typeof prev?.payload === 'string' ? JSON.parse(prev.payload) : prev?.payload)?.count ?? 0);
      if (count - prevCount >= a.quarantineGrowth) {
        out.push({ trigger: 'quarantine_growth', ref: `quarantine:${c.name}:${count}`, severity: 'medium', subject: `quarantine of ${c.name} grew to ${count}`, text: `${c.name}: ${count} unresolved quarantined records (was ${prevCount}). See \`commission-sync status\`.`, payload: { connection: c.name, count, previous: prevCount } });
      }
    }
  }

  // Push failures (per attempt: a correction that fails again is reported again).
  for (const r of await db('corrections').where({ status: 'failed' }).orderBy('id')) {
    out.push({ trigger: 'push_failed', ref: `push_failed:${r.id}:${r.attempts}`, severity: 'high', subject: `correction ${r.action_type} on ${r.connection} failed`, text: `Correction #${r.id} (${r.action_type}, discrepancy #${r.discrepancy_id ?? '?'}) failed after ${r.attempts} attempt(s): ${scrubSecrets(String(r.error ?? ''))}`, payload: { correctionId: Number(r.id), discrepancyId: r.discrepancy_id === null ? null : Number(r.discrepancy_id), connection: r.connection, type: r.action_type, attempts: Number(r.attempts), error: scrubSecrets(String(r.error ?? '')) } });
  }
  return out;
}

interface ConnectionFacts {
  lastRun: Map<string, { id: number | string; status: string; error: string | null }>;
  lastOkAt: Map<string, Date | string>;
  quarantined: Map<string, number>;
  lastGrowthAlert: Map<string, { payload: unknown }>;
}

/**
 * What the sync alerts need per connection — the last run, the last success, unresolved quarantine
 * and the last quarantine-growth alert — in one statement each for all connections (was four
 * round trips per connection, every run).
 */
async function connectionFacts(db: Knex, names: string[], quarantine: boolean): Promise<ConnectionFacts> {
  const f: ConnectionFacts = { lastRun: new Map(), lastOkAt: new Map(), quarantined: new Map(), lastGrowthAlert: new Map() };
  if (names.length === 0) return f;
  const rows = async <T>(sql: string): Promise<T[]> => (await db.raw(sql, [names])).rows as T[];
  for (const r of await rows<{ name: string; id: number | string; status: string; error: string | null }>(`SELECT c.name, r.id, r.status, r.error FROM unnest(?::text[]) AS c(name) CROSS JOIN LATERAL (SELECT id, status, error FROM sync_runs WHERE connection = c.name ORDER BY id DESC LIMIT 1) r`)) f.lastRun.set(r.name, r);
  for (const r of await rows<{ connection: string; at: Date | string | null }>(`SELECT connection, max(finished_at) AS at FROM sync_runs WHERE connection = ANY(?::text[]) AND status = 'succeeded' GROUP BY connection`)) if (r.at) f.lastOkAt.set(r.connection, r.at);
  if (quarantine) {
    for (const r of await rows<{ connection: string; n: number | string }>(`SELECT connection, count(*) AS n FROM quarantine WHERE connection = ANY(?::text[]) AND resolved_at IS NULL GROUP BY connection`)) f.quarantined.set(r.connection, Number(r.n));
    for (const r of await rows<{ connection: string; payload: unknown }>(`SELECT DISTINCT ON (payload->>'connection') payload->>'connection' AS connection, payload FROM alerts WHERE trigger = 'quarantine_growth' AND payload->>'connection' = ANY(?::text[]) ORDER BY payload->>'connection', id DESC`)) f.lastGrowthAlert.set(r.connection, r);
  }
  return f;
}

/** Across runs a failing delivery is retried until it has had this many attempts in total. */
const lifetimeAttempts = (a: Config['alerts']): number => a.maxAttempts * 3;

/**
 * The alert threshold as a SQL condition on `discrepancies d`: severity at or above
 * alerts.minSeverity, or (when set) USD at stake at or above alerts.minUsdMinor.
 */
function aboveThresholdSql(a: Config['alerts']): { sql: string; bindings: Knex.RawBinding[] } {
  return {
    sql: '(d.severity = ANY(?::text[]) OR (?::bigint > 0 AND d.usd_at_stake_minor >= ?::bigint))',
    bindings: [SEVERITIES.slice(rank(a.minSeverity)) as string[], a.minUsdMinor, a.minUsdMinor],
  };
}

/** Loads discrepancies by id in bounded chunks, largest USD at stake first (as listDiscrepancies orders). */
async function discrepanciesByIds(db: Knex, ids: number[]): Promise<DiscrepancyRecord[]> {
  const out: DiscrepancyRecord[] = [];
  for (let i = 0; i < ids.length; i += 2000) out.push(...(await listDiscrepancies(db, { ids: ids.slice(i, i + 2000) })));
  return out.sort((x, y) => y.usdAtStakeMinor - x.usdAtStakeMinor || x.id - y.id);
}

/**
 * Open discrepancies above the threshold that some sink has not had yet (no `alerts` row for it that
 * was sent or has used up its attempts): the new ones, and deliveries to retry. Chosen in SQL, so a
 * run reads what it may send rather than every open discrepancy of the history (tens of thousands
 * at 100k payments, each with its detail) only to find them already delivered. No sink, nothing.
 */
async function discrepanciesToAlert(db: Knex, a: Config['alerts'], sinkNames: string[]): Promise<DiscrepancyRecord[]> {
  if (sinkNames.length === 0) return [];
  const above = aboveThresholdSql(a);
  const res = await db.raw(
    `SELECT d.id FROM discrepancies d
      WHERE d.status = 'open' AND ${above.sql}
        AND EXISTS (SELECT 1 FROM unnest(?::text[]) AS s(name)
                     WHERE NOT EXISTS (SELECT 1 FROM alerts al
                                        WHERE al.dedupe_key = 'discrepancy:' || d.id || '|' || s.name
                                          AND (al.status = 'sent' OR al.attempts >= ?)))`,
    [...above.bindings, sinkNames, lifetimeAttempts(a)],
  );
  return discrepanciesByIds(db, (res.rows as Array<{ id: number | string }>).map((r) => Number(r.id)));
}

/**
 * More new discrepancy alerts than `max` (typically the first run over a backlog) become one summary
 * that covers them all, so ops get one message pointing at the dashboard rather than hundreds.
 */
async function floodGuard(db: Knex, candidates: AlertCandidate[], max: number, sinkNames: string[]): Promise<AlertCandidate[]> {
  // Already alerted (one by one or inside an earlier summary) on any sink.
  const alerted = new Set<string>();
  for (let i = 0; i < candidates.length; i += 200) {
    const keys = candidates.slice(i, i + 200).flatMap((c) => sinkNames.map((n) => `${c.ref}|${n}`));
    if (keys.length === 0) continue;
    const rows = (await db('alerts').whereIn('dedupe_key', keys).select('dedupe_key')) as Array<{ dedupe_key: string }>;
    for (const r of rows) alerted.add(r.dedupe_key.slice(0, r.dedupe_key.lastIndexOf('|')));
  }
  const fresh = candidates.filter((c) => !alerted.has(c.ref));
  if (fresh.length <= max) return candidates;
  const byKind = new Map<string, { n: number; usd: number }>();
  let total = 0;
  for (const c of fresh) {
    const p = c.payload as { kind?: string; usdAtStakeMinor?: number };
    const k = byKind.get(p.kind ?? '?') ?? { n: 0, usd: 0 };
    byKind.set(p.kind ?? '?', { n: k.n + 1, usd: k.usd + (p.usdAtStakeMinor ?? 0) });
    total += p.usdAtStakeMinor ?? 0;
  }
  const top = [...fresh].sort((x, y) => ((y.payload as { usdAtStakeMinor?: number }).usdAtStakeMinor ?? 0) - ((x.payload as { usdAtStakeMinor?: number }).usdAtStakeMinor ?? 0)).slice(0, 10);
  const lines = [...byKind.entries()].sort().map(([kind, v]) => `${kind}: ${v.n} (${usd(v.usd)})`);
  const worst = fresh.reduce<string>((w, c) => (rank(c.severity) > rank(w) ? c.severity : w), 'info');
  const refs = fresh.map((c) => c.ref).sort();
  const summary: AlertCandidate = {
    trigger: 'discrepancy_summary',
    ref: `discrepancies:${refs[0]}..${refs[refs.length - 1]}:${refs.length}`,
    severity: worst,
    subject: `${fresh.length} new discrepancies, ${usd(total)} at stake`,
    text: `${fresh.length} new discrepancies above the alert threshold (more than alerts.maxPerRun = ${max}, so one summary):\n${lines.join('\n')}\nLargest:\n${top.map((c) => `- ${c.text}`).join('\n')}\nReview them in the dashboard or with \`commission-sync discrepancies list\`.`,
    payload: { count: fresh.length, usdAtStakeMinor: total, byKind: Object.fromEntries([...byKind.entries()].map(([k, v]) => [k, { count: v.n, usdAtStakeMinor: v.usd }])) },
    covers: fresh.map((c) => c.ref),
  };
  return [...candidates.filter((c) => alerted.has(c.ref)), summary];
}

/** The daily digest for `date` (yyyy-mm-dd in config.timezone): discrepancies first seen that day above the threshold. */
export async function digestFor(deps: AlertDeps, date: string): Promise<AlertCandidate | null> {
  const { db, config } = deps;
  const start = DateTime.fromISO(date, { zone: config.timezone });
  if (!start.isValid) throw new Error(`digest date "${date}" is not yyyy-mm-dd`);
  // The day's discrepancies above the threshold, chosen in SQL (not every open one of the history).
  const above = aboveThresholdSql(config.alerts);
  const res = await db.raw(
    `SELECT d.id FROM discrepancies d
      WHERE d.status IN ('open', 'approved') AND d.first_seen_at >= ? AND d.first_seen_at < ? AND ${above.sql}`,
    [start.toJSDate(), start.plus({ days: 1 }).toJSDate(), ...above.bindings],
  );
  const rows = await discrepanciesByIds(db, (res.rows as Array<{ id: number | string }>).map((r) => Number(r.id)));
  if (rows.length === 0) return null;
  const total = rows.reduce((s, d) => s + d.usdAtStakeMinor, 0);
  const byKind: Record<string, number> = {};
  for (const d of rows) byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
  return {
    trigger: 'digest',
    ref: `digest:${date}`,
    severity: rows.reduce<string>((m, d) => (rank(d.severity) > rank(m) ? d.severity : m), 'info'),
    subject: `daily digest ${date}: ${rows.length} new discrepancies, ${usd(total)} at stake`,
    text: [`${rows.length} new discrepancies on ${date} (${usd(total)} at stake):`, ...rows.slice(0, 50).map(discrepancyLine), ...(rows.length > 50 ? [`… and ${rows.length - 50} more`] : [])].join('\n'),
    payload: { date, count: rows.length, usdAtStakeMinor: total, byKind, ids: rows.map((d) => d.id) },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function sinksFromConfig(deps: AlertDeps): Sink[] {
  return deps.sinks ?? deps.config.alerts.sinks.map((s) => createSink(s, { env: deps.env ?? process.env, log: deps.log }));
}

/** Delivers candidates to every sink once (dedupe per reference and sink). Never throws. */
export async function deliverAlerts(deps: AlertDeps, candidates: AlertCandidate[]): Promise<AlertSummary> {
  const { db, config, log } = deps;
  const summary: AlertSummary = { candidates: candidates.length, sent: 0, failed: 0, deduped: 0, sinkErrors: [] };
  let sinks: Sink[];
  try {
    sinks = sinksFromConfig(deps);
  } catch (err) {
    summary.sinkErrors.push({ sink: '*', ref: '*', error: scrubSecrets(errorMessage(err)) });
    return summary;
  }
  const perTry = config.alerts.maxAttempts;
  const lifetime = lifetimeAttempts(config.alerts);
  for (const c of candidates) {
    for (const sink of sinks) {
      const key = `${c.ref}|${sink.name}`;
      try {
        const existing = await db('alerts').where({ dedupe_key: key }).first('id', 'status', 'attempts');
        if (existing && (existing.status === 'sent' || Number(existing.attempts) >= lifetime)) {
          summary.deduped++;
          continue;
        }
        let id = existing ? Number(existing.id) : undefined;
        if (id === undefined) {
          const ins = await db('alerts')
            .insert({ dedupe_key: key, trigger: c.trigger, sink: sink.name, subject: c.subject, payload: JSON.stringify(scrubValue(c.payload)), status: 'pending' })
            .onConflict('dedupe_key')
            .ignore()
            .returning('id');
          const row = (ins as Array<{ id: number }>)[0];
          if (!row) {
            summary.deduped++; // another replica took it
            continue;
          }
          id = Number(row.id);
        }
        let attempts = 0;
        let lastError: string | undefined;
        for (; attempts < perTry; ) {
          attempts++;
          try {
            await sink.send(c);
            lastError = undefined;
            break;
          } catch (err) {
            lastError = scrubSecrets(errorMessage(err));
            if (attempts < perTry) await sleep(config.alerts.retryDelayMs * 2 ** (attempts - 1));
          }
        }
        if (lastError === undefined) {
          await db('alerts').where({ id }).update({ status: 'sent', attempts: db.raw('attempts + ?', [attempts]), error: null, sent_at: new Date() });
          summary.sent++;
          // The discrepancies a summary stood for are not alerted one by one later.
          for (let i = 0; i < (c.covers ?? []).length; i += 500) {
            const part = c.covers!.slice(i, i + 500).map((ref) => ({ dedupe_key: `${ref}|${sink.name}`, trigger: 'discrepancy_summary_item', sink: sink.name, subject: `covered by ${c.ref}`, payload: JSON.stringify({ summary: c.ref }), status: 'sent', sent_at: new Date() }));
            await db('alerts').insert(part).onConflict('dedupe_key').ignore();
          }
        } else {
          await db('alerts').where({ id }).update({ status: 'failed', attempts: db.raw('attempts + ?', [attempts]), error: lastError });
          summary.failed++;
          summary.sinkErrors.push({ sink: sink.name, ref: c.ref, error: lastError });
          log.warn({ sink: sink.name, ref: c.ref, attempts, error: lastError }, 'alert sink failed');
        }
      } catch (err) {
        summary.failed++;
        summary.sinkErrors.push({ sink: sink.name, ref: c.ref, error: scrubSecrets(errorMessage(err)) });
      }
    }
  }
  return summary;
}

/** Collect and deliver; with alerts.digest also the digest of the previous day (sent once). */
export async function runAlerts(deps: AlertDeps, opts: { now?: Date } = {}): Promise<AlertSummary> {
  try {
    const now = opts.now ?? new Date();
    const candidates = await collectAlerts(deps, { now });
    if (deps.config.alerts.digest) {
      const yesterday = DateTime.fromJSDate(now, { zone: deps.config.timezone }).minus({ days: 1 }).toISODate()!;
      const d = await digestFor(deps, yesterday);
      if (d) candidates.push(d);
    }
    return await deliverAlerts(deps, candidates);
  } catch (err) {
    deps.log.error({ error: scrubSecrets(errorMessage(err)) }, 'alerting failed');
    return { candidates: 0, sent: 0, failed: 0, deduped: 0, sinkErrors: [{ sink: '*', ref: '*', error: scrubSecrets(errorMessage(err)) }] };
  }
}


/** The scheduled digest job (schedules.alertDigest): yesterday's digest, or `date`'s; sent once per sink. */
export async function sendDigest(deps: AlertDeps, opts: { date?: string; now?: Date } = {}): Promise<AlertSummary> {
  try {
    const date = opts.date ?? DateTime.fromJSDate(opts.now ?? new Date(), { zone: deps.config.timezone }).minus({ days: 1 }).toISODate()!;
    const d = await digestFor(deps, date);
    return await deliverAlerts(deps, d ? [d] : []);
  } catch (err) {
    deps.log.error({ error: scrubSecrets(errorMessage(err)) }, 'alert digest failed');
    return { candidates: 0, sent: 0, failed: 0, deduped: 0, sinkErrors: [{ sink: '*', ref: 'digest', error: scrubSecrets(errorMessage(err)) }] };
  }
}
