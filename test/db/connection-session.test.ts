// Session settings the pool applies to every PostgreSQL connection it opens.
import { describe, expect, it } from 'vitest';
import { openDb } from '../../src/db/connection.ts';

const url = process.env.TEST_DATABASE_URL;

describe.skipIf(!url)('PostgreSQL pool sessions', () => {
  it('run with JIT off on every pooled connection', async () => {
    const db = await openDb({ url: url!, poolMax: 3 });
    try {
      // three concurrent holds force three distinct connections out of the pool
      const settings = await Promise.all([0, 1, 2].map(() => db.transaction(async (trx) => {
        const r = (await trx.raw('SELECT pg_backend_pid() AS pid, current_setting(\'jit\') AS jit, pg_sleep(0.05)')).rows[0] as { pid: number; jit: string };
        return r;
      })));
      expect(new Set(settings.map((s) => s.pid)).size).toBe(3);
      expect(settings.map((s) => s.jit)).toEqual(['off', 'off', 'off']);
    } finally {
      await db.destroy();
    }
  });
});
