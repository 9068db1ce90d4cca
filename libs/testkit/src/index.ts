export * from './wait';
export * from './processes';
export * from './observations';
export * from './world';
export * from './fleet';
export * from './private-rabbitmq';
export * from './private-postgres';
export * from './staged-events';
