// Lets a long CPU-bound loop give the event loop a turn now and then, so I/O already under way goes
// on beside it (the compute's statements for one batch are sent as each one ends while the next
// batch is computed).
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Returns a promise to await when the loop should let the event loop run, else undefined. */
export type Pause = () => Promise<void> | undefined;

/**
 * How long a loop runs between turns when a write goes on beside it: short against a statement's
 * ~100 ms on the server, long against a turn's cost.
 */
export const TURN_MS = 10;

/**
 * A Pause that yields once at least `everyMs` of the loop's time has passed since the last turn.
 * Most calls return undefined (a clock read), so a loop can call it every iteration.
 */
export function pauseEvery(everyMs: number = TURN_MS, now: () => number = () => performance.now()): Pause {
  let last = now();
  return () => {
    if (now() - last < everyMs) return undefined;
    return nextTurn().then(() => {
      last = now();
    });
  };
}
