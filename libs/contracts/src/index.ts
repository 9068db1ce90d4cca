export * from './names';
export * from './primitives';
export * from './jobs';
export * from './control';
export * from './observations';
export * from './state-events';
export * from './decode';
export * from './secret-params';
