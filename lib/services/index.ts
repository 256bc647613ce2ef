export * from './registries';
export * from './snapshot';
export * from './restore';
export * from './export';
export * from './verify';
