// The ordered list of migrations. A static list (not a directory scan) so the same code runs from
// TypeScript sources, the compiled dist/ and a bundled image without file-extension guessing.
import type { Knex } from 'knex';
import * as m001 from './001_canonical_model.ts';
import * as m002 from './002_push_jobs.ts';
import * as m003 from './003_rules_nullable.ts';
import * as m004 from './004_change_tracking.ts';
import * as m005 from './005_reconcile_incremental.ts';
import * as m006 from './006_compute_content_hash.ts';
import * as m007 from './007_stripe_payment_refs.ts';
import * as m008 from './008_stream_key_hash.ts';
import * as m009 from './009_lean_writes.ts';
import * as m010 from './010_compute_partner_payments.ts';
import * as m012 from './012_reconcile_totals.ts';
import * as m014 from './014_compute_totals.ts';
import * as m015 from './015_discrepancy_explanations.ts';

export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export const migrations: Migration[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009, m010, m012, m014, m015];
