// Alert sinks: Slack incoming webhook, generic JSON webhook (HMAC-SHA256 of the exact body bytes in
// X-Commission-Sync-Signature), email over SMTP (nodemailer), and the log. Secrets (webhook URL,
// signing secret, SMTP password) are read from the environment at send time through
// resolveEnvSecret, which registers them for scrubbing, so a missing one fails that sink only.
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { alertSinkSchema } from '../config/schema.ts';
import { resolveEnvSecret } from '../config/load.ts';
import { registerSecret } from '../util/secrets.ts';
import type { Json } from '../sync/types.ts';

export type SinkConfig = z.infer<typeof alertSinkSchema>;

export interface AlertMessage {
  trigger: string;
  subject: string;
  text: string;
  severity: string;
  payload: { [key: string]: Json };
}

export interface Sink {
  name: string;
  type: string;
  send(msg: AlertMessage): Promise<void>;
}

export const SIGNATURE_HEADER = 'x-commission-sync-signature';
export const TIMESTAMP_HEADER = 'x-commission-sync-timestamp';

/** `sha256=<hex>` over `<timestamp>.<body>`: receivers recompute it and reject stale timestamps. */
export function signBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

async function postJson(name: string, url: string, body: string, headers: Record<string, string> = {}): Promise<void> {
  // Loaded on first send: a run without an HTTP sink does not load the HTTP client for it.
  const { createHttpClient } = await import('../http/client.ts');
  // Retries are the dispatcher's (bounded, per alert); the client makes one attempt.
  const client = createHttpClient({ connection: `alerts.${name}`, baseURL: url, retries: 0, timeoutMs: 10_000 });
  await client.post('', body, { headers: { 'content-type': 'application/json', ...headers }, transformRequest: [(d: unknown) => d] });
}

export function createSink(cfg: SinkConfig, deps: { env: NodeJS.ProcessEnv; log: Logger }): Sink {
  const path = (field: string): string => `alerts.sinks.${cfg.name}.${field}`;
  switch (cfg.type) {
    case 'log':
      return {
        name: cfg.name,
        type: 'log',
        send: async (m) => {
          deps.log.warn({ alert: { trigger: m.trigger, severity: m.severity, payload: m.payload } }, `ALERT ${m.subject}`);
        },
      };
    case 'slack':
      return {
        name: cfg.name,
        type: 'slack',
        send: async (m) => {
          const url = resolveEnvSecret(cfg.webhookUrlEnv, deps.env, path('webhookUrlEnv'))!;
          // The path of a Slack webhook URL is the credential: keep it out of error messages too.
          try {
            registerSecret(new URL(url).pathname);
          } catch {
            /* not a URL: the request fails below */
          }
          await postJson(cfg.name, url, JSON.stringify({ text: `*${m.subject}*\n${m.text}` }));
        },
      };
    case 'webhook':
      return {
        name: cfg.name,
        type: 'webhook',
        send: async (m) => {
          const secret = resolveEnvSecret(cfg.secretEnv, deps.env, path('secretEnv'))!;
          const timestamp = String(Math.floor(Date.now() / 1000));
          const body = JSON.stringify({ trigger: m.trigger, severity: m.severity, subject: m.subject, text: m.text, payload: m.payload, sentAt: new Date().toISOString() });
          await postJson(cfg.name, cfg.url, body, { [SIGNATURE_HEADER]: signBody(secret, timestamp, body), [TIMESTAMP_HEADER]: timestamp });
        },
      };
    case 'email':
      return {
        name: cfg.name,
        type: 'email',
        send: async (m) => {
          const user = cfg.userEnv ? resolveEnvSecret(cfg.userEnv, deps.env, path('userEnv')) : undefined;
          const pass = cfg.passwordEnv ? resolveEnvSecret(cfg.passwordEnv, deps.env, path('passwordEnv')) : undefined;
          // Loaded on first send: most runs have no e-mail sink.
          const { default: nodemailer } = await import('nodemailer');
          const transport = nodemailer.createTransport({ host: cfg.host, port: cfg.port, secure: cfg.secure, ...(user ? { auth: { user, pass } } : {}), connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 15_000 });
          try {
            await transport.sendMail({ from: cfg.from, to: cfg.to, subject: `[commission-sync] ${m.subject}`, text: `${m.text}\n\n${JSON.stringify(m.payload, null, 2)}` });
          } finally {
            transport.close();
          }
        },
      };
  }
}
