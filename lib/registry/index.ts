export * from './errors';
export * from './auth';
export * from './challenge';
export { RegistryClient, Repository, type RegistryClientOptions } from './client';
export { referrersTag } from './referrers';
export { parseRateLimitRemaining, rateLimitOf, type ManifestHead, type RateLimit } from './metadata';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination';
export { redactSecrets } from './redact';
export { ResumingBody, type Resumption } from './resume';
export { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './transport';
export {
  DEFAULT_BASE_DELAY_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_DELAY_MS,
  type RetryOptions,
} from './retry';
export { ecrRegistryHost, isEcrRegistry } from './ecr-host';
export { Registries } from './pool';
