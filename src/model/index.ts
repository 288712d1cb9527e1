export * from './types.ts';
export * from './partners.ts';
export * from './customers.ts';
export * from './billing.ts';
export * from './network.ts';
export { lowerEmail } from './email.ts';
