export * from './errors';
export * from './types';
export * from './canonical';
export * from './log';
export * from './referrers';
export * from './identity';
export * from './scan';
export * from './build';
