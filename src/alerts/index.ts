// Public surface of alerting.
export * from './sinks.ts';
export * from './alerts.ts';
