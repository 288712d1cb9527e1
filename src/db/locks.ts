// Advisory lock keys. Each is taken with hashtext(current_schema()) as its second key, so databases
// (or test schemas) sharing a server never wait on each other.

/**
 * Reconcile's write phase takes it exclusively, compute's batch transactions shared. A compute batch
 * that changes or deletes a computed commission also updates the discrepancies naming it (migration
 * 015's trigger), which the reconcile's write phase writes too; taking this lock first orders the
 * two instead of letting them deadlock on row locks. Compute batches do not wait on each other.
 */
export const DISCREPANCY_WRITE_LOCK = 740_211_905;
