// A throw-away database for one bench run: a PGlite directory under the temp dir, or a private
// schema on the PostgreSQL server (search_path set through the URL, so every process that opens
// `url` works in it). `drop()` removes it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDb } from '../src/db/connection.ts';
import type { PipelineRequest } from './pipeline-process.ts';

export interface FreshDb {
  ref: Pick<PipelineRequest, 'url' | 'dataDir' | 'adminUrl' | 'schema'>;
  /** What the CLI's --db takes for this database. */
  cli: string;
  drop(): Promise<void>;
}

export async function freshDb(kind: 'pglite' | 'postgres', pgUrl: string, prefix: string): Promise<FreshDb> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), `cs-${prefix}-`));
    return { ref: { dataDir: dir }, cli: dir, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = await openDb({ url: pgUrl, poolMax: 1 });
  await admin.raw(`CREATE SCHEMA "${schema}"`);
  await admin.destroy();
  const u = new URL(pgUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    ref: { url: u.toString(), adminUrl: pgUrl, schema },
    cli: u.toString(),
    drop: async () => {
      const a = await openDb({ url: pgUrl, poolMax: 1 });
      await a.raw(`DROP SCHEMA "${schema}" CASCADE`);
      await a.destroy();
    },
  };
}
