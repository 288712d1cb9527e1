// Public surface of the rules engine.
export * from './types.ts';
export * from './money.ts';
export * from './email.ts';
export * from './dates.ts';
export * from './program.ts';
export * from './program-loader.ts';
export * from './qualify.ts';
export * from './tiers.ts';
export * from './adjustments.ts';
export * from './lines.ts';
export * from './engine.ts';
export * from './payouts.ts';
export * from './explain.ts';
