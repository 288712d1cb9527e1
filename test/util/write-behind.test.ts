import { describe, expect, it } from 'vitest';
import { writeBehind } from '../../src/util/write-behind.ts';

/** A write the test finishes by hand, recording when it starts and ends. */
function gate(log: string[], name: string) {
  let finish!: (err?: Error) => void;
  const write = () => {
    log.push(`start ${name}`);
    return new Promise<void>((resolve, reject) => {
      finish = (err) => {
        log.push(`end ${name}`);
        if (err) reject(err);
        else resolve();
      };
    });
  };
  return { write, finish: (err?: Error) => finish(err) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('writeBehind', () => {
  it('behind: returns once a write has started, starts the next only after it ends, in order', async () => {
    const log: string[] = [];
    const w = writeBehind(true);
    const a = gate(log, 'a');
    const b = gate(log, 'b');
    await w.add(a.write); // returns while a runs
    log.push('caller works');
    const addB = w.add(b.write);
    await tick();
    expect(log).toEqual(['start a', 'caller works']); // b waits for a
    a.finish();
    await addB;
    expect(log).toEqual(['start a', 'caller works', 'end a', 'start b']);
    const done = w.done();
    b.finish();
    await done;
    expect(log.at(-1)).toBe('end b');
  });

  it('not behind: each add returns after its write has ended', async () => {
    const log: string[] = [];
    const w = writeBehind(false);
    const a = gate(log, 'a');
    const added = w.add(a.write);
    await tick();
    let returned = false;
    void added.then(() => (returned = true));
    await tick();
    expect(returned).toBe(false);
    a.finish();
    await added;
    expect(log).toEqual(['start a', 'end a']);
  });

  it("a failed write fails the next add (which starts nothing) or done; settled waits and ignores it", async () => {
    const log: string[] = [];
    const w = writeBehind(true);
    const a = gate(log, 'a');
    const b = gate(log, 'b');
    await w.add(a.write);
    const addB = w.add(b.write);
    a.finish(new Error('a failed'));
    await expect(addB).rejects.toThrow('a failed');
    expect(log).toEqual(['start a', 'end a']);
    await expect(w.done()).rejects.toThrow('a failed');
    await expect(w.settled()).resolves.toBeUndefined();
  });

  it('settled waits for the write in flight', async () => {
    const log: string[] = [];
    const w = writeBehind(true);
    const a = gate(log, 'a');
    await w.add(a.write);
    const settled = w.settled().then(() => log.push('settled'));
    await tick();
    expect(log).toEqual(['start a']);
    a.finish(new Error('x'));
    await settled;
    expect(log).toEqual(['start a', 'end a', 'settled']);
  });
});
