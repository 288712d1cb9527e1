// A toy connector stream over a paged HTTP API, used to test the engine itself.
import { z } from 'zod';
import type { StreamDef } from '../../src/sync/types.ts';
import { createHttpClient } from '../../src/http/client.ts';
import { markNetworkTransactionsDeleted, upsertNetworkTransactions } from '../../src/model/network.ts';

export const itemSchema = z.looseObject({ id: z.string(), amount: z.number().int(), currency: z.string().length(3), created: z.number().int() });
type Item = z.infer<typeof itemSchema>;
type State = { after: string | null; since: string | null; [k: string]: string | null };

/** `tail`: pages say Page.skipUnchanged (a look-back tail); `stale` is the stream's StreamDef.stale; `detectsVanished: false` takes the stream's StreamDef.detectsVanished off. */
export function toyStream(baseURL: string, opts: { lookbackFrom?: Date; lookbackTo?: Date; skipUnchanged?: boolean; written?: string[]; tail?: boolean; stale?: StreamDef['stale']; detectsVanished?: false } = {}): StreamDef<Item, State> {
  const http = createHttpClient({ connection: 'toy', baseURL, retries: 0 });
  return {
    name: 'items',
    ...(opts.skipUnchanged ? { skipUnchanged: true } : {}),
    ...(opts.stale ? { stale: opts.stale } : {}),
    ...(opts.detectsVanished !== false ? { detectsVanished: true as const } : {}),
    schema: itemSchema,
    key: (r) => r.id,
    recordTime: (r) => new Date(r.created),
    initialState: () => ({ after: null, since: null }),
    async *read(ctx, state) {
      let after = state.after;
      const since = state.since ?? ctx.now.toISOString();
      for (;;) {
        const res = await http.get<{ items: unknown[]; has_more: boolean }>('/items', { params: after ? { after } : {} });
        const items = res.data.items;
        const last = items[items.length - 1] as { id?: string } | undefined;
        after = last?.id ?? after;
        const done = !res.data.has_more;
        yield {
          records: items,
          state: done ? { after: null, since: null } : { after, since },
          completedWindow: done && opts.lookbackFrom && opts.lookbackTo ? { from: opts.lookbackFrom, to: opts.lookbackTo, since: new Date(since) } : undefined,
          ...(opts.tail ? { skipUnchanged: true } : {}),
        };
        if (done) return;
      }
    },
    async write(trx, records, ctx) {
      opts.written?.push(...records.map((r) => r.id));
      await upsertNetworkTransactions(
        trx,
        records.map((r) => ({ connection: ctx.connection.name, network: 'partnerstack', externalId: r.id, amountMinor: r.amount, currency: r.currency, occurredAt: new Date(r.created) })),
      );
    },
    async onDeleted(trx, keys, ctx) {
      await markNetworkTransactionsDeleted(trx, ctx.connection.name, keys);
    },
  };
}
