export * from './storage';
export * from './objectstore';
export * from './directory';
export * from './verify';
export * from './layout';
export * from './vault';
export * from './concurrency';
export * from './store-url';
