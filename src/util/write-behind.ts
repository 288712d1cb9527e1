// Writes that run behind the work producing them: one at a time and in order, each going on while
// the caller prepares the next (PostgreSQL's compute and full reconcile: the server writes batch
// i-1 while this process computes batch i). Used by src/rules/store.ts and src/reconcile/run.ts.

export interface WriteBehind {
  /**
   * Waits for the previous write (throwing its error), then starts `write`. Behind: returns once it
   * has started; otherwise once it has ended.
   */
  add(write: () => Promise<void>): Promise<void>;
  /** Waits for the last write, throwing its error. */
  done(): Promise<void>;
  /**
   * Waits for the last write to end, ignoring its outcome: for a `finally`, so that nothing writes
   * after the caller has failed and returned.
   */
  settled(): Promise<void>;
}

export function writeBehind(behind: boolean): WriteBehind {
  let last: Promise<void> | undefined;
  return {
    async add(write) {
      if (last) await last;
      last = write();
      last.catch(() => undefined); // awaited by the next add, done or settled
      if (!behind) await last;
    },
    async done() {
      if (last) await last;
    },
    async settled() {
      await last?.catch(() => undefined);
    },
  };
}
