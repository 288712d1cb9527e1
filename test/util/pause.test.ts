import { describe, expect, it } from 'vitest';
import { pauseEvery } from '../../src/util/pause.ts';

describe('pauseEvery', () => {
  it('yields only once the interval has passed, and counts the next interval from the turn', async () => {
    let clock = 1_000;
    const pause = pauseEvery(10, () => clock);
    clock = 1_009;
    expect(pause()).toBeUndefined();
    clock = 1_010;
    const turn = pause();
    expect(turn).toBeInstanceOf(Promise);
    clock = 1_012; // the event loop ran a little before the turn came back
    await turn;
    clock = 1_021;
    expect(pause()).toBeUndefined(); // 9 ms since the turn ended, not 11 since it was asked for
    clock = 1_022;
    expect(pause()).toBeInstanceOf(Promise);
  });

  it("lets I/O callbacks that are due run during the loop's turn", async () => {
    let clock = 0;
    const pause = pauseEvery(5, () => clock);
    let ran = false;
    setImmediate(() => (ran = true));
    clock = 5;
    await pause();
    expect(ran).toBe(true);
  });
});
