export { Registries } from '../registry';
export * from './snapshot';
export * from './snapshot-image';
export * from './restore';
export * from './export';
export * from './verify';
