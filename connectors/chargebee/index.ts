// Chargebee billing connector: read-only source of truth for payments, refunds (credit notes),
// chargebacks, reversals and subscription state. Credentials: apiKey, webhookUsername,
// webhookPassword; option `site` (or baseUrl).
import type { Connector } from '../../src/sync/types.ts';
import { createChargebeeApi, parseChargebeeOptions } from './client.ts';
import { chargebeeStreams } from './streams.ts';

export const connector: Connector = {
  type: 'chargebee',
  requiredCredentials: ['apiKey'],
  validateOptions(connection) {
    parseChargebeeOptions(connection);
  },
  streams(ctx) {
    return chargebeeStreams(createChargebeeApi(ctx.connection, ctx.env, ctx.log));
  },
};

export { handleChargebeeWebhook, reprocessChargebeeWebhooks } from './webhook.ts';
