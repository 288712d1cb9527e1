// PartnerStack connector: pulls groups, partnerships, customers, transactions and rewards from the
// vendor API v2 and executes correction actions (see push.ts). Defaults: README.md.
import { readFileSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import type { ConnectionConfig } from '../../src/config/schema.ts';
import type { Connector, SyncContext } from '../../src/sync/types.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { formatZodIssues } from '../../src/util/zod-format.ts';
import { createPartnerStackClient, type PartnerStackClient } from './client.ts';
import { optionsSchema, type PartnerStackOptions } from './schemas.ts';
import { buildStreams } from './streams.ts';
import { createPush } from './push.ts';

export function parseOptions(connection: ConnectionConfig): PartnerStackOptions {
  const r = optionsSchema.safeParse(connection.options ?? {});
  if (!r.success) throw new ConfigError(`Invalid options for connection "${connection.name}":\n${formatZodIssues(r.error, `connections.${connection.name}.options`)}`);
  return r.data;
}

/** Reads `partner_key,recruiter_partner_key` rows (a header row is optional). */
export function readRecruiterCsv(connection: ConnectionConfig, file: string): Map<string, string> {
  const field = `connections.${connection.name}.options.recruiterCsv`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${field}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let rows: string[][];
  try {
    rows = parseCsv(text, { skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new ConfigError(`${field}: ${file} is not valid CSV: ${(err as Error).message}`);
  }
  const out = new Map<string, string>();
  rows.forEach((row, i) => {
    const [partner, recruiter] = row;
    if (i === 0 && partner === 'partner_key') return;
    if (!partner || !recruiter) throw new ConfigError(`${field}: ${file} line ${i + 1}: expected partner_key,recruiter_partner_key`);
    out.set(partner, recruiter);
  });
  return out;
}

function deps(connection: ConnectionConfig) {
  const options = parseOptions(connection);
  const recruiterCsv = options.recruiterCsv ? readRecruiterCsv(connection, options.recruiterCsv) : undefined;
  const clients = new WeakMap<object, PartnerStackClient>();
  const client = (ctx: SyncContext): PartnerStackClient => {
    // One HTTP client (and rate limiter) per connection object and environment.
    let c = clients.get(ctx.connection);
    if (!c) {
      c = createPartnerStackClient({ connection: ctx.connection, env: ctx.env, log: ctx.log, retry: options.retry });
      clients.set(ctx.connection, c);
    }
    return c;
  };
  return { options, recruiterCsv, client };
}

export const connector: Connector = {
  type: 'partnerstack',
  requiredCredentials: ['publicKey', 'secretKey'],
  validateOptions(connection) {
    const o = parseOptions(connection);
    if (o.recruiterCsv) readRecruiterCsv(connection, o.recruiterCsv);
  },
  streams(ctx) {
    return buildStreams(deps(ctx.connection));
  },
  push(ctx, action) {
    return createPush(deps(ctx.connection))(ctx, action);
  },
};
