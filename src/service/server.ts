// The HTTP service: health, readiness, metrics, webhooks, the ops API and the dashboard, in one
// fastify instance. Open without a token: /healthz, /readyz, /webhooks/* (verified by signature,
// Basic auth or path token) and the dashboard's static files (they hold no data; every data call
// needs a token). /metrics needs a viewer token unless server.metricsPublic is true.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { pendingMigrations } from '../db/migrate.ts';
import { errorMessage } from '../util/errors.ts';
import { scrubSecrets } from '../util/secrets.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { FailureLimiter, TokenAuth, createAuthenticator } from './auth.ts';
import { ApiError, errorBody, installErrorHandling } from './errors.ts';
import { ServiceMetrics } from './metrics.ts';
import { openApiDocument, registerRoutes } from './route-def.ts';
import { apiRoutes } from './routes/api.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { resolveWebhookHandlers, type WebhookHandler, type WebhookSource } from './webhooks.ts';

export interface ServerOptions {
  db: Knex;
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  scheduler?: Scheduler | undefined;
  metrics?: ServiceMetrics;
  /** Test hooks: replace a webhook handler. */
  webhookHandlers?: Partial<Record<WebhookSource, WebhookHandler>>;
  /** Failed authentications allowed per client address and window (default 10 per minute). */
  authFailures?: { max: number; windowMs: number };
  /** General request limit per client address on /api and /metrics (default 600 per minute). */
  requestsPerMinute?: number;
}

const errRef = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const webhook = (summary: string, extraParams: unknown[] = []) => ({
  post: {
    summary,
    tags: ['webhooks'],
    security: [],
    parameters: [{ name: 'connection', in: 'path', required: true, schema: { type: 'string' } }, ...extraParams],
    requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
    responses: { 200: { description: 'Stored (and processed when the connector handles it)' }, 400: { description: 'Bad signature or payload', ...errRef }, 401: { description: 'Bad credentials or token', ...errRef }, 404: { description: 'No such enabled connection', ...errRef }, 413: { description: 'Body larger than server.bodyLimitBytes', ...errRef }, 500: { description: 'Processing failed; the provider retries', ...errRef } },
  },
});
/** Routes outside the registry, documented by hand. */
const OPEN_PATHS: Record<string, unknown> = {
  '/healthz': { get: { summary: 'Liveness', tags: ['health'], security: [], responses: { 200: { description: 'Process is up' } } } },
  '/readyz': { get: { summary: 'Readiness: database reachable and migrations current', tags: ['health'], security: [], responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready', ...errRef } } } },
  '/metrics': { get: { summary: 'Prometheus metrics (viewer token unless server.metricsPublic)', tags: ['health'], security: [{ bearer: [] }], responses: { 200: { description: 'Prometheus text format' } } } },
  '/webhooks/stripe/{connection}': webhook('Stripe webhook (Stripe-Signature verified over the raw body)'),
  '/webhooks/chargebee/{connection}': webhook('Chargebee webhook (Basic auth)'),
  '/webhooks/partnerstack/{connection}/{token}': webhook('PartnerStack webhook (secret path token)', [{ name: 'token', in: 'path', required: true, schema: { type: 'string' } }]),
};

/** Redacts the PartnerStack path token from URLs that reach the log. */
export function redactUrl(url: string): string {
  return url.replace(/^(\/webhooks\/partnerstack\/[^/?]+\/)[^/?]+/, '$1[REDACTED]');
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** src/dashboard next to this file's tree (sources) or the project's src/dashboard (dist build). */
export function dashboardDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../dashboard'), path.resolve(here, '../../../src/dashboard'), path.resolve(process.cwd(), 'src/dashboard')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html')));
}

export async function buildServer(opts: ServerOptions): Promise<{ app: FastifyInstance; metrics: ServiceMetrics }> {
  const { db, config } = opts;
  const env = opts.env ?? process.env;
  const log = opts.log.child({ component: 'http' });
  const metrics = opts.metrics ?? new ServiceMetrics(db);
  const tokens = TokenAuth.fromConfig(config, env);
  if (tokens.size === 0) log.warn('server.tokens is empty: the ops API and dashboard will refuse every request');
  const limiter = new FailureLimiter(opts.authFailures?.max ?? 10, opts.authFailures?.windowMs ?? 60_000);
  const auth = createAuthenticator(tokens, limiter);

  const app = Fastify({
    bodyLimit: config.server.bodyLimitBytes,
    // Our own access log below: URL redacted, no headers (so never an Authorization header).
    logger: false,
    return503OnClosing: true,
    trustProxy: config.server.trustProxy,
    forceCloseConnections: 'idle',
  });
  app.addHook('onResponse', async (req, reply) => {
    const line = { method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (reply.statusCode >= 500) log.error(line, 'request');
    else log.debug(line, 'request');
  });
  installErrorHandling(app, log);

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // The service often runs on plain HTTP behind a TLS-terminating proxy; HSTS belongs there.
    hsts: false,
  });

  // ---- open: health ----
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    let database = 'ok';
    let pending: string[] = [];
    try {
      await db.raw('select 1');
      pending = await pendingMigrations(db);
    } catch (err) {
      database = `unreachable: ${scrubSecrets(errorMessage(err)).slice(0, 200)}`;
    }
    if (database !== 'ok' || pending.length > 0) {
      return reply.status(503).send(errorBody('not_ready', database !== 'ok' ? 'database unreachable' : `${pending.length} migration(s) pending`, { database, pendingMigrations: pending }));
    }
    return { status: 'ready', database, pendingMigrations: [] };
  });

  // ---- open but verified: webhooks ----
  const { handlers, origin } = await resolveWebhookHandlers(opts.webhookHandlers);
  log.info({ handlers: origin }, 'webhook handlers');
  await app.register(async (scope) => webhookRoutes(scope, { db, config, log, env, handlers, metrics }));

  // ---- token-protected: metrics and the ops API (general rate limit in this scope only) ----
  const routes = apiRoutes({ db, config, log, scheduler: opts.scheduler });
  await app.register(async (scope) => {
    await scope.register(rateLimit, {
      max: opts.requestsPerMinute ?? 600,
      timeWindow: 60_000,
      errorResponseBuilder: (_req, ctx) => {
        const e = new ApiError(429, 'rate_limited', `rate limit exceeded; retry in ${Math.ceil(ctx.ttl / 1000)} s`);
        return e;
      },
    });
    scope.get('/metrics', async (req, reply) => {
      if (!config.server.metricsPublic) auth.authenticate(req, 'viewer');
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    });
    scope.get('/api/openapi.json', async (req) => {
      auth.authenticate(req, 'viewer');
      return openApiDocument(routes, OPEN_PATHS);
    });
    registerRoutes(scope, routes, auth);
  });

  // ---- dashboard (static, no data) ----
  const dir = dashboardDir();
  if (dir) {
    const files = new Map<string, { body: Buffer; type: string }>();
    for (const f of readdirSync(dir)) {
      const ext = path.extname(f);
      if (CONTENT_TYPES[ext]) files.set(f, { body: readFileSync(path.join(dir, f)), type: CONTENT_TYPES[ext] });
    }
    const index = files.get('index.html')!;
    const sendIndex = async (_req: unknown, reply: import('fastify').FastifyReply) => reply.type(index.type).header('cache-control', 'no-cache').send(index.body);
    app.get('/', async (_req, reply) => reply.redirect('/dashboard/'));
    app.get('/dashboard', async (_req, reply) => reply.redirect('/dashboard/'));
    app.get('/dashboard/', sendIndex);
    app.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
      const f = files.get(req.params.file);
      if (!f) throw new ApiError(404, 'not_found', 'no such dashboard file');
      return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
    });
  } else {
    log.warn('dashboard assets (src/dashboard) not found: the dashboard is not served');
  }

  return { app, metrics };
}
