// Forks a benchmark child process (a .ts module run by Node's type stripping) and talks to it over
// IPC: request → the next reply; the child's exit code is checked.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Child {
  proc: ChildProcess;
  /** Sends a message and resolves with the child's next reply (rejects on an { type: 'error' } reply or exit). */
  request<T>(msg: unknown): Promise<T>;
  /** Resolves when the child exits (rejects on a non-zero code). */
  exited: Promise<void>;
}

export function forkChild(file: string, role: string, opts: { heapMb?: number | undefined; execArgv?: string[] } = {}): Child {
  const proc = fork(path.join(here, file), [], {
    env: { ...process.env, BENCH_CHILD: role },
    execArgv: [...process.execArgv, ...(opts.heapMb ? [`--max-old-space-size=${opts.heapMb}`] : []), ...(opts.execArgv ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: Array<{ resolve(v: unknown): void; reject(e: Error): void }> = [];
  proc.on('message', (m: { type?: string; error?: string }) => {
    const w = waiting.shift();
    if (!w) return;
    if (m.type === 'error') w.reject(new Error(`${role} process: ${m.error}`));
    else w.resolve(m);
  });
  const exited = new Promise<void>((resolve, reject) => {
    proc.on('exit', (code, signal) => {
      const err = new Error(`${role} process exited (${signal ?? code})`);
      for (const w of waiting.splice(0)) w.reject(err);
      if (code === 0) resolve();
      else reject(err);
    });
  });
  exited.catch(() => undefined);
  return {
    proc,
    exited,
    request<T>(msg: unknown): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        waiting.push({ resolve: resolve as (v: unknown) => void, reject });
        proc.send(msg as object);
      });
    },
  };
}
