// Public surface of the correction planner and push executor.
export * from './actions.ts';
export * from './planner.ts';
export * from './executor.ts';
