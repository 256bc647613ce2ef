export * from './alert';
export * from './text';
export * from './newer-versions-alert';
export * from './in-use-deleted-alert';
