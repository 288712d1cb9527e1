// The ops JSON API under /api. Readers need the viewer role; approve / ignore / trigger need operator.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/schema.ts';
import { connectionStatus } from '../../status/status.ts';
import type { Scheduler } from '../../scheduler/scheduler.ts';
import { MAIN_JOB, PUSH_JOB, syncJobName } from '../../scheduler/jobs.ts';
import { decideDiscrepancies } from '../../reconcile/discrepancies.ts';
import { executePush } from '../../push/executor.ts';
import { ApiError } from '../errors.ts';
import { defineRoute, type AnyRoute } from '../route-def.ts';
import * as q from '../queries.ts';

export interface ApiDeps {
  db: Knex;
  config: Config;
  log: Logger;
  scheduler?: Scheduler | undefined;
}

const DISCREPANCY_STATUSES = ['open', 'approved', 'resolved', 'ignored'] as const;
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
const CORRECTION_STATUSES = ['planned', 'sending', 'sent', 'confirmed', 'failed', 'skipped'] as const;

const period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected a month as yyyy-mm');
const limit = z.coerce.number().int().min(1).max(1000).default(100);
const offset = z.coerce.number().int().min(0).default(0);
const format = z.enum(['json', 'csv']).optional();
const idParam = z.object({ id: z.coerce.number().int().positive() });
/** Comma-separated list of allowed values: status=open,approved */
const csvEnum = <T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined))
    .pipe(z.array(z.enum(values)).optional());

export function apiRoutes(deps: ApiDeps): AnyRoute[] {
  const { db, config } = deps;
  const tz = config.timezone;
  const needScheduler = (): Scheduler => {
    if (!deps.scheduler) throw new ApiError(503, 'unavailable', 'the scheduler is not running in this process');
    return deps.scheduler;
  };
  const startJob = async (job: string, input?: Record<string, unknown>) => {
    const s = needScheduler();
    if (!s.hasJob(job)) throw new ApiError(404, 'not_found', `no job "${job}"`);
    if (s.isStopping()) throw new ApiError(503, 'unavailable', 'the service is shutting down');
    const r = await s.trigger(job, input);
    if (r.status === 'skipped') throw new ApiError(409, 'conflict', `job ${job} not started: ${r.reason}`);
    if (r.status === 'lost') throw new ApiError(409, 'conflict', `job ${job} was started by another replica at the same instant`);
    return { job, fireAt: r.fireAt.toISOString(), status: 'started' };
  };

  /** Same rules as `commission-sync discrepancies approve|ignore` (reconcile/discrepancies.ts). */
  const decide = async (id: number, decision: 'approve' | 'ignore', reason: string | undefined, by: string) => {
    const r = await decideDiscrepancies(db, [id], decision, { reason, by: `token:${by}` });
    const skipped = r.skipped[0];
    if (skipped?.why === 'not found') throw new ApiError(404, 'not_found', `no discrepancy ${id}`);
    if (skipped) throw new ApiError(409, 'conflict', `discrepancy ${id} cannot be ${decision === 'approve' ? 'approved' : 'ignored'}: ${skipped.why}`);
    deps.log.info({ discrepancy: id, by }, `discrepancy ${decision === 'approve' ? 'approved' : 'ignored'}`);
    return { id, status: decision === 'approve' ? 'approved' : 'ignored' };
  };

  return [
    defineRoute({
      method: 'GET', url: '/api/me', role: 'viewer', tag: 'meta', summary: 'Who am I (role of the presented token)',
      handler: async ({ principal }) => ({ role: principal.role, name: principal.name, timezone: tz }),
    }),
    defineRoute({
      method: 'GET', url: '/api/overview', role: 'viewer', tag: 'overview',
      summary: 'Reported vs owed vs collected (USD cents) per month and network',
      query: z.object({ from: period.optional(), to: period.optional(), network: z.string().optional(), format }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => {
        const items = await q.overview(db, tz, query);
        const totals = items.reduce((t, r) => ({ reportedUsdMinor: t.reportedUsdMinor + r.reportedUsdMinor, owedUsdMinor: t.owedUsdMinor + r.owedUsdMinor, collectedUsdMinor: t.collectedUsdMinor + r.collectedUsdMinor }), { reportedUsdMinor: 0, owedUsdMinor: 0, collectedUsdMinor: 0 });
        return { timezone: tz, items, totals };
      },
    }),
    defineRoute({
      method: 'GET', url: '/api/runs', role: 'viewer', tag: 'runs', summary: 'Sync runs (newest first), with reconciliation runs',
      query: z.object({ connection: z.string().optional(), status: z.enum(['running', 'succeeded', 'failed', 'stopped']).optional(), limit, offset, format }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => ({ items: await q.listRuns(db, query), reconciliation: await q.listReconciliationRuns(db, 20) }),
    }),
    defineRoute({
      method: 'GET', url: '/api/connections', role: 'viewer', tag: 'connections', summary: 'Connections: last run, last error, quarantine, checkpoints',
      query: z.object({ format }),
      csvItems: (r) => (r as { connections: Array<Record<string, unknown>> }).connections.map((c) => ({ ...c, lastRun: undefined, lastRunStatus: (c.lastRun as { status?: string } | null)?.status ?? null, lastError: (c.lastRun as { error?: string } | null)?.error ?? null })),
      // connectionStatus selects names, types, schedules, runs and checkpoints — never credentials.
      handler: async () => connectionStatus(db, config),
    }),
    defineRoute({
      method: 'GET', url: '/api/checkpoints', role: 'viewer', tag: 'connections', summary: 'Checkpoints per connection and stream',
      query: z.object({ connection: z.string().optional(), format }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => {
        const { checkpoints } = await connectionStatus(db, config);
        return { items: checkpoints.filter((c) => !query.connection || c.connection === query.connection) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/api/jobs', role: 'viewer', tag: 'runs', summary: 'Scheduled jobs and their recent fires across replicas',
      query: z.object({ job: z.string().optional(), limit: limit.default(50), format }),
      csvItems: (r) => (r as { fires: Array<Record<string, unknown>> }).fires,
      handler: async ({ query }) => ({ jobs: deps.scheduler?.listJobs() ?? [], fires: await q.listJobFires(db, query) }),
    }),
    defineRoute({
      method: 'GET', url: '/api/partners', role: 'viewer', tag: 'partners', summary: 'Partners with owed and reported totals',
      query: z.object({ q: z.string().max(200).optional(), limit, offset, format }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => q.listPartners(db, query),
    }),
    defineRoute({
      method: 'GET', url: '/api/partners/:id', role: 'viewer', tag: 'partners', summary: 'One partner: accounts, tier history, commissions, payouts',
      params: idParam,
      handler: async ({ params }) => {
        const p = await q.partnerDetail(db, params.id, tz);
        if (!p) throw new ApiError(404, 'not_found', `no partner ${params.id}`);
        return p;
      },
    }),
    defineRoute({
      method: 'GET', url: '/api/discrepancies', role: 'viewer', tag: 'discrepancies', summary: 'Discrepancies with filters (largest USD at stake first)',
      query: z.object({
        status: csvEnum(DISCREPANCY_STATUSES),
        kind: z.string().optional().transform((s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined)),
        severity: csvEnum(SEVERITIES),
        network: z.string().optional(),
        period: period.optional(),
        partnerId: z.coerce.number().int().positive().optional(),
        minUsdMinor: z.coerce.number().int().min(0).optional(),
        limit,
        offset,
        format,
      }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => q.listDiscrepancies(db, query),
    }),
    defineRoute({
      method: 'GET', url: '/api/discrepancies/:id', role: 'viewer', tag: 'discrepancies', summary: 'Drill-down: billing facts, network record and rule explanation',
      params: idParam,
      handler: async ({ params }) => {
        const d = await q.discrepancyDetail(db, params.id);
        if (!d) throw new ApiError(404, 'not_found', `no discrepancy ${params.id}`);
        return d;
      },
    }),
    defineRoute({
      method: 'POST', url: '/api/discrepancies/:id/approve', role: 'operator', tag: 'discrepancies', summary: 'Approve a discrepancy for push-back',
      params: idParam,
      body: z.object({ reason: z.string().trim().max(1000).optional() }).strict(),
      handler: async ({ params, body, principal }) => decide(params.id, 'approve', body.reason, principal.name),
    }),
    defineRoute({
      method: 'POST', url: '/api/discrepancies/:id/ignore', role: 'operator', tag: 'discrepancies', summary: 'Ignore a discrepancy (a reason is required)',
      params: idParam,
      body: z.object({ reason: z.string().trim().min(3, 'give a reason (at least 3 characters)').max(1000) }).strict(),
      handler: async ({ params, body, principal }) => decide(params.id, 'ignore', body.reason, principal.name),
    }),
    defineRoute({
      method: 'GET', url: '/api/corrections', role: 'viewer', tag: 'corrections', summary: 'Corrections (push-back actions) and their outcome',
      query: z.object({ status: z.enum(CORRECTION_STATUSES).optional(), network: z.string().optional(), discrepancyId: z.coerce.number().int().positive().optional(), limit, offset, format }),
      csvItems: (r) => (r as { items: Array<Record<string, unknown>> }).items,
      handler: async ({ query }) => q.listCorrections(db, query),
    }),
    defineRoute({
      method: 'GET', url: '/api/push/plan', role: 'viewer', tag: 'corrections', summary: 'Dry run: the corrections a push would send now (nothing is sent)',
      handler: async () => {
        const summary = await executePush({ db, config, log: deps.log }, { apply: false });
        return { plan: summary.plan };
      },
    }),
    defineRoute({
      method: 'POST', url: '/api/trigger/push', role: 'operator', tag: 'jobs', summary: 'Push approved corrections now (per-run caps apply; 202, runs in the background)',
      body: z.object({}).strict(),
      status: 202,
      handler: async () => startJob(PUSH_JOB),
    }),
    defineRoute({
      method: 'POST', url: '/api/trigger/sync', role: 'operator', tag: 'jobs', summary: 'Start a sync of one connection now (202; runs in the background)',
      body: z.object({ connection: z.string().min(1) }).strict(),
      status: 202,
      handler: async ({ body }) => {
        if (!config.connections.some((c) => c.name === body.connection && c.enabled)) throw new ApiError(404, 'not_found', `no enabled connection "${body.connection}"`);
        return startJob(syncJobName(body.connection));
      },
    }),
    defineRoute({
      method: 'POST', url: '/api/trigger/main-job', role: 'operator', tag: 'jobs', summary: 'Start the main job now (sync → compute → reconcile → alert → push)',
      body: z.object({}).strict(),
      status: 202,
      handler: async () => startJob(MAIN_JOB),
    }),
  ];
}
