import type { Knex } from 'knex';

/**
 * Runs a multi-statement DDL script one statement at a time: PGlite's extended-protocol query
 * accepts a single statement, and pg does not mind. Statements are split on a `;` ending a line,
 * so keep DDL scripts free of `;` at line ends inside literals.
 */
export async function execScript(knex: Knex, script: string): Promise<void> {
  const statements = script
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
  for (const stmt of statements) await knex.raw(stmt);
}
