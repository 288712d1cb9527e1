// Awin advertiser API connector: transactions (windows ≤31 days + validation/amendment look-back),
// batch validation push (approve/decline/amend) with job polling, ShareASale → Awin identity map.
import type { Connector, PushAction, PushResult, SyncContext } from '../../src/sync/types.ts';
import { parseAwinOptions } from './schemas.ts';
import { transactionsStream } from './streams.ts';
import { awinPushStatus, pushAwin, pushAwinBatch, type AwinBatchReport } from './push.ts';

export const connector: Connector & {
  /** Many actions in ≤40,000-item batch requests; one result per idempotency key. */
  pushBatch(ctx: SyncContext, actions: PushAction[]): Promise<AwinBatchReport>;
  /** Read-only status of a previously pushed action (null when never submitted). */
  pushStatus(ctx: SyncContext, action: PushAction): Promise<PushResult | null>;
} = {
  type: 'awin',
  requiredCredentials: ['token'],
  validateOptions: (connection) => {
    parseAwinOptions(connection);
  },
  streams: (ctx) => [transactionsStream(ctx)],
  push: (ctx, action) => pushAwin(ctx, action),
  pushBatch: (ctx, actions) => pushAwinBatch(ctx, actions),
  pushStatus: (ctx, action) => awinPushStatus(ctx, action),
};

export { applyIdentityMap, readIdentityCsv } from './identity.ts';
