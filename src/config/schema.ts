// The one configuration schema. Values come from a YAML/JSON file in config/, overlaid by
// environment variables (see load.ts); secrets are never in the file — only the *names* of the
// environment variables that hold them.
import { z } from 'zod';

export const CONNECTION_TYPES = ['partnerstack', 'shareasale', 'awin', 'stripe', 'chargebee'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];
export const NETWORKS = ['partnerstack', 'shareasale', 'awin'] as const;
export type Network = (typeof NETWORKS)[number];
export const BILLING_SYSTEMS = ['stripe', 'chargebee'] as const;
export type BillingSystem = (typeof BILLING_SYSTEMS)[number];

const envVarName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected the NAME of an environment variable (A-Z, 0-9, _), not a secret value');

const cronExpr = z
  .string()
  .regex(/^(\S+\s+){4,5}\S+$/, 'expected a cron expression with 5 or 6 fields, e.g. "0 * * * *"');

export const rateLimitSchema = z.object({
  requests: z.number().int().positive(),
  intervalMs: z.number().int().positive(),
});

export const connectionSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected lower-case letters, digits, - or _'),
  type: z.enum(CONNECTION_TYPES),
  enabled: z.boolean().default(true),
  baseUrl: z.url().optional(),
  /** Map of credential field → name of the environment variable holding it (or NAME_FILE). */
  credentials: z.record(z.string(), envVarName).default({}),
  schedule: cronExpr.optional(),
  rateLimit: rateLimitSchema.optional(),
  timeoutMs: z.number().int().positive().default(30_000),
  /** Type-specific options, validated by the connector itself (errors name connections.N.options.…). */
  options: z.record(z.string(), z.unknown()).default({}),
});
export type ConnectionConfig = z.infer<typeof connectionSchema>;

export const alertSinkSchema = z.discriminatedUnion('type', [
  z.object({ name: z.string(), type: z.literal('log') }),
  z.object({ name: z.string(), type: z.literal('slack'), webhookUrlEnv: envVarName }),
  z.object({ name: z.string(), type: z.literal('webhook'), url: z.url(), secretEnv: envVarName }),
  z.object({
    name: z.string(),
    type: z.literal('email'),
    host: z.string(),
    port: z.number().int().positive().default(587),
    secure: z.boolean().default(false),
    userEnv: envVarName.optional(),
    passwordEnv: envVarName.optional(),
    from: z.string(),
    to: z.array(z.string()).min(1),
  }),
]);

export const configSchema = z
  .object({
    database: z
      .object({
        /** postgres://… uses PostgreSQL; unset uses embedded PGlite in dataDir. Prefer DATABASE_URL. */
        url: z.string().optional(),
        dataDir: z.string().default('.data/pglite'),
        poolMax: z.number().int().positive().default(10),
      })
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** auto: pretty on a TTY, JSON otherwise. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
      })
      .prefault({}),
    /** Time zone for schedules, report periods and payout calendars. */
    timezone: z.string().default('UTC'),
    program: z
      .object({
        dir: z.string().default('config/programs'),
        name: z.string().default('kartra'),
      })
      .prefault({}),
    connections: z.array(connectionSchema).default([]),
    sync: z
      .object({
        /**
         * Pages are committed together (one transaction: rows, raw records, keys, checkpoint) once they
         * hold this many records, or once the first of them has waited `batchMaxMs`. Fewer, larger
         * transactions are most of the ingest speed; the time bound keeps a slow, rate-limited API
         * (or a credit-budgeted one) from holding much read-but-uncommitted work.
         */
        batchRecords: z.number().int().positive().max(50_000).default(2_000),
        batchMaxMs: z.number().int().nonnegative().default(1_000),
        /** Connections of one kind (billing, then networks) synced at the same time. 1 = one after another. */
        concurrency: z.number().int().min(1).max(8).default(3),
        /** Streams that allow it skip re-writing records whose raw content is unchanged (false: re-map everything read). */
        skipUnchanged: z.boolean().default(true),
        /**
         * Look-back re-reads (src/sync/lookback.ts). Networks change old records without saying so
         * (approvals, voids, deletions), so window streams re-read their connector's look-back window
         * (`lookbackDays`) and diff it — a *sweep*. Sweeping on every run makes each frequent run pay
         * for weeks of history; instead a stream sweeps at most every `everyHours` (0 = every run; the
         * `--sweep` flag forces one), and runs in between re-read only the last `tailHours` before the
         * end of their last completed pass, plus whatever change feed the API has.
         */
        lookback: z
          .object({
            everyHours: z.number().min(0).max(24 * 31).default(24),
            tailHours: z.number().min(0).max(24 * 31).default(48),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Where the FX fallback table (R3) lives: CSV currency,date,usd_per_unit. */
    fxRatesFile: z.string().optional(),
    schedules: z
      .object({
        mainJob: cronExpr.optional(),
        alertDigest: cronExpr.optional(),
        /** A running scheduled fire whose heartbeat is older than this is taken as abandoned (dead replica). */
        leaseSeconds: z.number().int().min(2).default(60),
        /** On SIGTERM, how long running jobs get to finish before they are aborted. */
        shutdownGraceSeconds: z.number().int().min(0).default(30),
      })
      .prefault({}),
    alerts: z
      .object({
        sinks: z.array(alertSinkSchema).default([{ name: 'log', type: 'log' }]),
        minSeverity: z.enum(['info', 'low', 'medium', 'high', 'critical']).default('medium'),
        minUsdMinor: z.number().int().nonnegative().default(0),
        staleSyncHours: z.number().positive().default(26),
        quarantineGrowth: z.number().int().nonnegative().default(1),
        digest: z.boolean().default(false),
        /** Delivery attempts per alert and sink within one dispatch (small, bounded; never blocks the run). */
        maxAttempts: z.number().int().positive().max(10).default(3),
        retryDelayMs: z.number().int().nonnegative().default(250),
        /** More new discrepancy alerts than this in one run become ONE summary alert (a first run over a backlog must not flood Slack). */
        maxPerRun: z.number().int().positive().default(25),
      })
      .prefault({}),
    reconcile: z
      .object({
        /** Per-network tolerance for amount_mismatch: absolute minor units and relative fraction. */
        tolerance: z
          .record(z.string(), z.object({ absMinor: z.number().int().nonnegative(), relative: z.number().nonnegative() }))
          .default({}),
        matchWindowHours: z.number().positive().default(48),
        /** Tolerance for networks without an entry in `tolerance` (1 minor unit absorbs rounding). */
        defaultTolerance: z.object({ absMinor: z.number().int().nonnegative(), relative: z.number().nonnegative() }).default({ absMinor: 1, relative: 0 }),
        /** A payment younger than this is not yet reported missing: networks record sales with a delay. */
        graceHours: z.number().nonnegative().default(48),
        /** R1: click → sign-up longer than this is flagged attribution_window_exceeded (info only). */
        attributionWindowDays: z.number().positive().default(30),
        /** USD at stake (minor units) from which a discrepancy is critical / high / medium; below is low. */
        severity: z
          .object({
            criticalUsdMinor: z.number().int().nonnegative().default(100_000),
            highUsdMinor: z.number().int().nonnegative().default(10_000),
            mediumUsdMinor: z.number().int().nonnegative().default(1_000),
          })
          .prefault({}),
      })
      .prefault({}),
    push: z
      .object({
        autoPushKinds: z.array(z.string()).default([]),
        maxActionsPerRun: z.number().int().positive().default(200),
        maxUsdMinorPerRun: z.number().int().positive().default(500_000),
        /** A failed action is retried by later runs (same idempotency key) up to this many attempts. */
        maxAttempts: z.number().int().positive().default(3),
      })
      .prefault({}),
    server: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Bearer tokens: env var name → role. */
        tokens: z.array(z.object({ env: envVarName, role: z.enum(['viewer', 'operator']) })).default([]),
        bodyLimitBytes: z.number().int().positive().default(1_048_576),
        /** /metrics without a token (for a scraper on a private network). Default: viewer token required. */
        metricsPublic: z.boolean().default(false),
        /** Behind a reverse proxy: trust X-Forwarded-For (true, or the proxies' addresses/CIDRs comma-separated) so limits apply per client. */
        trustProxy: z.union([z.boolean(), z.string()]).default(false),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.connections.forEach((c, i) => {
      if (seen.has(c.name)) {
        ctx.addIssue({ code: 'custom', path: ['connections', i, 'name'], message: `duplicate connection name "${c.name}"` });
      }
      seen.add(c.name);
    });
  });

export type Config = z.infer<typeof configSchema>;
