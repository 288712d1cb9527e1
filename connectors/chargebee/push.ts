// Billing systems are read-only for commission-sync: corrections go to the networks, never to
// Chargebee. The connector has no `push`; this refusal exists for callers that try anyway.
import type { PushAction, PushResult } from '../../src/sync/types.ts';

export function push(_ctx: unknown, action: PushAction): Promise<PushResult> {
  return Promise.resolve({ status: 'skipped', error: `chargebee is a read-only billing source; refusing push action "${action.type}" (corrections are pushed to networks only)` });
}
