export * from './errors';
export * from './digest';
export * from './reference';
export * from './mediatype';
export * from './descriptor';
export * from './manifest';
export * from './attestation';
