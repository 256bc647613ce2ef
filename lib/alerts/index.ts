export * from './alert';
export * from './text';
export * from './newer-versions-alert';
