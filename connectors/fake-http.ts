// Shared by the five fake servers: listen on loopback (port 0 = any free port) and close
// promptly, even with keep-alive sockets open.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** http://127.0.0.1:<port> */
  origin: string;
  close(): Promise<void>;
}

export async function listenOnLoopback(server: Server, port = 0): Promise<Listening> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

// ---- indexes for the fakes: page in O(page), not O(collection) ----------------------------------

/** First index in [lo, hi) where `pred` holds, for a predicate that is false…false, true…true over the range. */
export function lowerBound<T>(arr: readonly T[], pred: (x: T) => boolean, lo = 0, hi = arr.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(arr[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A Map whose `version` changes on every set/delete/clear, so indexes built over its values know when
 * to rebuild. Code that edits a stored object in place calls `touch()`.
 */
export class VersionedMap<K, V> extends Map<K, V> {
  version = 0;
  override set(key: K, value: V): this {
    this.version++;
    return super.set(key, value);
  }
  override delete(key: K): boolean {
    this.version++;
    return super.delete(key);
  }
  override clear(): void {
    this.version++;
    super.clear();
  }
  touch(): void {
    this.version++;
  }
}

/** A small cache of derived lists (filtered views) that empties itself when its source's version changes. */
export class ViewCache<V> {
  private version = -1;
  private readonly views = new Map<string, V>();
  private readonly max: number;
  constructor(max = 64) {
    this.max = max;
  }
  get(version: number, key: string, build: () => V): V {
    if (version !== this.version) {
      this.views.clear();
      this.version = version;
    }
    let v = this.views.get(key);
    if (v === undefined) {
      if (this.views.size >= this.max) this.views.clear();
      v = build();
      this.views.set(key, v);
    }
    return v;
  }
}
