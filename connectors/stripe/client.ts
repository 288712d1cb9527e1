// The official Stripe SDK, pointed at the configured base URL (a fake server in tests/demo), with
// our own 429 backoff: the SDK retries connection errors, 409 and 5xx itself (maxNetworkRetries)
// but not 429 and it ignores Retry-After, so every call goes through `call()`.
import Stripe from 'stripe';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import { resolveSecret } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { formatZodIssues } from '../../src/util/zod-format.ts';
import { parseRetryAfterMs, withBackoff } from '../billing/common.ts';

const lookback = z.number().int().nonnegative().nullable();

export const stripeOptionsSchema = z.looseObject({
  /** Earliest `created` (ISO date) read on a first run; default: everything. */
  startDate: z.iso.date().or(z.iso.datetime()).optional(),
  /**
   * Look-back per stream in days: a sweep (every sync.lookback.everyHours) re-reads objects created
   * this long before the last high-water mark, picking up late changes (an invoice paid later, a
   * refund that failed, a dispute decided). null = the whole list (subscriptions). Runs between
   * sweeps read a tail plus the Events API change feed (see streams.ts).
   */
  lookbackDays: z
    .looseObject({
      customers: lookback.default(30),
      subscriptions: lookback.default(null),
      invoices: lookback.default(35),
      refunds: lookback.default(35),
      disputes: lookback.default(120),
    })
    .prefault({}),
  pageSize: z.number().int().min(1).max(100).default(100),
  /** Concurrent per-invoice look-ups (invoice payments, balance transactions). */
  concurrency: z.number().int().min(1).max(16).default(4),
  maxNetworkRetries: z.number().int().min(0).max(10).default(2),
  rateLimitRetries: z.number().int().min(0).max(20).default(6),
  backoffBaseMs: z.number().int().positive().default(1000),
  backoffMaxMs: z.number().int().positive().default(30_000),
  /** Webhook signature tolerance in seconds (Stripe's default 300). */
  webhookToleranceSeconds: z.number().int().positive().default(300),
  apiVersion: z.string().optional(),
});
export type StripeOptions = z.infer<typeof stripeOptionsSchema>;

export function parseStripeOptions(connection: ConnectionConfig): StripeOptions {
  const parsed = stripeOptionsSchema.safeParse(connection.options ?? {});
  if (!parsed.success) throw new ConfigError(`Invalid options for connection "${connection.name}":\n${formatZodIssues(parsed.error, `connections.${connection.name}.options.`)}`);
  return parsed.data;
}

export interface StripeApi {
  stripe: Stripe;
  options: StripeOptions;
  /** Runs one SDK call with our 429 backoff. */
  call<T>(fn: (s: Stripe) => Promise<T>): Promise<T>;
}

export function stripeStatusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: number; type?: string } | null;
  if (e?.statusCode) return e.statusCode;
  if (e?.type === 'StripeRateLimitError') return 429;
  return undefined;
}

export function createStripeApi(connection: ConnectionConfig, env: NodeJS.ProcessEnv, log?: Logger): StripeApi {
  const options = parseStripeOptions(connection);
  const apiKey = resolveSecret(connection, 'apiKey', env)!;
  const config: Stripe.StripeConfig = { maxNetworkRetries: options.maxNetworkRetries, timeout: connection.timeoutMs, telemetry: false, appInfo: { name: 'commission-sync' } };
  if (options.apiVersion) (config as { apiVersion?: string }).apiVersion = options.apiVersion;
  if (connection.baseUrl) {
    const u = new URL(connection.baseUrl);
    config.host = u.hostname;
    config.protocol = u.protocol === 'http:' ? 'http' : 'https';
    config.port = u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443;
  }
  const stripe = new Stripe(apiKey, config);
  return {
    stripe,
    options,
    call: (fn) =>
      withBackoff(
        () => fn(stripe),
        (err) => {
          const status = stripeStatusOf(err);
          const headers = (err as { headers?: Record<string, string> }).headers;
          // A body cut off in transit ("Invalid JSON received from the Stripe API") is as transient as a 429.
          const truncated = status === undefined && /Invalid JSON received/i.test(String((err as Error)?.message ?? ''));
          return { retry: status === 429 || truncated, status, retryAfterMs: parseRetryAfterMs(headers?.['retry-after']) };
        },
        {
          retries: options.rateLimitRetries,
          baseMs: options.backoffBaseMs,
          maxMs: options.backoffMaxMs,
          onRetry: (i) => log?.warn({ connection: connection.name, ...i }, 'stripe rate limited; backing off'),
        },
      ),
  };
}

/** Runs `fn` over items with at most `n` in flight, keeping order. */
export async function mapLimit<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}
