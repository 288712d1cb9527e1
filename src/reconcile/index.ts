// Public surface of reconciliation.
export * from './types.ts';
export * from './match.ts';
export * from './classify.ts';
export * from './run.ts';
export * from './discrepancies.ts';
