// Asynchronous push jobs (Awin batch validation). Each pushed action is recorded under its idempotency
// key BEFORE the batch is sent and gets the network's job id as soon as the batch is accepted — before
// polling — so a re-run polls the recorded job instead of sending the action again.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '002_push_jobs';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE push_jobs (
      connection        text NOT NULL,
      idempotency_key   text NOT NULL,
      network           text NOT NULL,
      action_type       text NOT NULL,
      item              jsonb NOT NULL,
      job_id            text,
      status            text NOT NULL CHECK (status IN ('submitting','submitted','confirmed','failed')),
      error             text,
      result            jsonb,
      created_at        timestamptz NOT NULL DEFAULT now(),
      submitted_at      timestamptz,
      completed_at      timestamptz,
      updated_at        timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (connection, idempotency_key)
    );
    CREATE INDEX push_jobs_job_idx ON push_jobs (connection, job_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `DROP TABLE IF EXISTS push_jobs;`);
}
