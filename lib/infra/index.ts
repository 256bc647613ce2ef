export * from './app-config';
export * from './image-vault';
export * from './stacks';
export * from './validation';
export * from './vault-bucket';
export * from './vault-replica';
