// Webhook routes. Registered in their own encapsulated context whose only body parser keeps the raw
// bytes (signatures are computed over them), bounded by server.bodyLimitBytes.
//   POST /webhooks/stripe/:connection
//   POST /webhooks/chargebee/:connection
//   POST /webhooks/partnerstack/:connection/:token   (PartnerStack signs nothing: secret path token)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.ts';
import { resolveSecret } from '../../config/load.ts';
import { ConfigError, errorMessage } from '../../util/errors.ts';
import { scrubSecrets } from '../../util/secrets.ts';
import { ApiError } from '../errors.ts';
import type { ServiceMetrics } from '../metrics.ts';
import { WebhookRejected, verifyPathToken, type WebhookHandler, type WebhookSource } from '../webhooks.ts';

export interface WebhookDeps {
  db: Knex;
  config: Config;
  log: Logger;
  env: NodeJS.ProcessEnv;
  handlers: Record<WebhookSource, WebhookHandler>;
  metrics?: ServiceMetrics | undefined;
}

export async function webhookRoutes(app: FastifyInstance, deps: WebhookDeps): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.config.server.bodyLimitBytes }, (_req, body, done) => done(null, body));

  const handle = async (source: WebhookSource, req: FastifyRequest, connectionName: string, pathToken?: string) => {
    const connection = deps.config.connections.find((c) => c.name === connectionName && c.type === source && c.enabled);
    if (!connection) throw new ApiError(404, 'not_found', `no enabled ${source} connection "${connectionName}"`);
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (rawBody.length === 0) throw new ApiError(400, 'invalid_payload', 'empty webhook body');
    const log = deps.log.child({ webhook: source, connection: connection.name });
    try {
      if (source === 'partnerstack') {
        // The route owns the path-token check whichever handler processes the event.
        const expected = resolveSecret(connection, 'webhookToken', deps.env)!;
        verifyPathToken(pathToken, expected);
      }
      const reply = await deps.handlers[source]({ db: deps.db, config: deps.config, connection, log, env: deps.env }, { rawBody, headers: req.headers, pathToken });
      const b = reply.body;
      if (reply.status >= 400) {
        const message = typeof b.error === 'string' ? b.error : `webhook not accepted (${reply.status})`;
        const outcome = reply.status >= 500 ? 'failed' : 'rejected';
        deps.metrics?.webhooks.inc({ source, outcome });
        if (outcome === 'rejected') log.warn({ reason: scrubSecrets(message) }, 'webhook rejected');
        else log.error({ err: scrubSecrets(message) }, 'webhook processing failed; the provider will redeliver');
        const code = typeof b.code === 'string' ? b.code : reply.status === 401 ? 'unauthorized' : reply.status >= 500 ? 'webhook_failed' : 'webhook_rejected';
        const details = Object.fromEntries(Object.entries(b).filter(([k]) => k !== 'error' && k !== 'code'));
        throw new ApiError(reply.status, code, message, Object.keys(details).length ? details : undefined);
      }
      const outcome = b.duplicate === true ? 'duplicate' : b.processed === true ? 'processed' : b.ignored === true ? 'ignored' : 'received';
      deps.metrics?.webhooks.inc({ source, outcome });
      log.info({ eventId: b.eventId, outcome }, 'webhook accepted');
      return b;
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof ConfigError) {
        deps.metrics?.webhooks.inc({ source, outcome: 'not_configured' });
        log.error({ err: scrubSecrets(err.message) }, 'webhook credentials are not configured');
        throw new ApiError(503, 'webhook_not_configured', `the ${source} webhook of connection ${connection.name} is not configured on this server`);
      }
      const rejected = asRejection(err);
      if (rejected) {
        deps.metrics?.webhooks.inc({ source, outcome: 'rejected' });
        log.warn({ reason: rejected.message }, 'webhook rejected');
        throw new ApiError(rejected.statusCode, rejected.code, rejected.message);
      }
      deps.metrics?.webhooks.inc({ source, outcome: 'failed' });
      log.error({ err: scrubSecrets(errorMessage(err)) }, 'webhook processing failed');
      // 500 makes the provider retry later; the delivery is not lost.
      throw new ApiError(500, 'webhook_failed', 'webhook processing failed; the provider will retry');
    }
  };

  app.post<{ Params: { connection: string } }>('/webhooks/stripe/:connection', async (req) => handle('stripe', req, req.params.connection));
  app.post<{ Params: { connection: string } }>('/webhooks/chargebee/:connection', async (req) => handle('chargebee', req, req.params.connection));
  app.post<{ Params: { connection: string; token: string } }>('/webhooks/partnerstack/:connection/:token', async (req) => handle('partnerstack', req, req.params.connection, req.params.token));
}

/** Our WebhookRejected, or a connector's verification error (statusCode 400/401 or a recognizable name). */
function asRejection(err: unknown): { statusCode: number; code: string; message: string } | undefined {
  if (err instanceof WebhookRejected) return err;
  if (!(err instanceof Error)) return undefined;
  const status = (err as { statusCode?: unknown; status?: unknown }).statusCode ?? (err as { status?: unknown }).status;
  if (status === 400 || status === 401 || status === 403) return { statusCode: status === 403 ? 401 : status, code: status === 400 ? 'signature_invalid' : 'unauthorized', message: scrubSecrets(err.message) };
  if (/signature|verif|unauthori[sz]ed|basic auth|timestamp/i.test(err.name + ' ' + err.message)) return { statusCode: 400, code: 'signature_invalid', message: scrubSecrets(err.message) };
  return undefined;
}
