export * from './image-events';
