export * from './alert';
export * from './text';
