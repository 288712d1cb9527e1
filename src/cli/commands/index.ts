// Every CLI command registers itself here. Only commands that work are listed.
import type { Command } from 'commander';
import * as migrate from './migrate.ts';
import * as status from './status.ts';
import * as sync from './sync.ts';
import * as serve from './serve.ts';
import * as importCmd from './import.ts';
import * as reconcile from './reconcile.ts';
import * as discrepancies from './discrepancies.ts';
import * as push from './push.ts';
import * as run from './run.ts';
import * as compute from './compute.ts';
import * as commissions from './commissions.ts';
import * as payouts from './payouts.ts';
import * as explain from './explain.ts';
import * as demo from './demo.ts';

export const commands: Array<{ register(program: Command): void }> = [migrate, status, sync, serve, importCmd, reconcile, discrepancies, push, run, compute, commissions, payouts, explain, demo];
