// Stripe billing connector: read-only source of truth for payments, refunds, disputes and
// subscription state. Credentials: apiKey, webhookSecret (comma-separated for rotation).
import type { Connector } from '../../src/sync/types.ts';
import { createStripeApi, parseStripeOptions } from './client.ts';
import { stripeStreams } from './streams.ts';

export const connector: Connector = {
  type: 'stripe',
  requiredCredentials: ['apiKey'],
  validateOptions(connection) {
    parseStripeOptions(connection);
  },
  streams(ctx) {
    return stripeStreams(createStripeApi(ctx.connection, ctx.env, ctx.log));
  },
};

export { handleStripeWebhook, reprocessStripeWebhooks } from './webhook.ts';
