import type { IncomingHttpHeaders } from 'node:http';
import { MANIFEST_MEDIA_TYPES, isManifest, parseManifest } from '../oci';
import { parseRetryAfter } from './retry';
import { header } from './transport';

/*
 * What a registry's response says besides its body: the manifest media types we accept, the media type it served,
 * and how much more it will let us ask. Read here once, for every caller of the client.
 */

/** Every manifest media type, in every manifest request: some registries answer 404 for a type not listed. */
export const ACCEPT_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ');

/**
 * What a registry says of its rate limit in a response. Docker Hub sends `ratelimit-limit: 100;w=21600` and
 * `ratelimit-remaining: 95;w=21600` on manifest requests (it counts GETs, not HEADs); any registry may send
 * `Retry-After`.
 */
export interface RateLimit {
  /** Requests allowed per window. */
  readonly limit?: number;
  /** Requests left in the window: at 0 the next counted request is refused with 429. */
  readonly remaining?: number;
  /** The window of both, in seconds (`w=`). */
  readonly windowSeconds?: number;
  /** How long the registry asks us to wait, in milliseconds (delay-seconds or an HTTP date, converted). */
  readonly retryAfterMs?: number;
}

/**
 * What a tag or digest points at, as the registry's answer to a HEAD says it: the digest always; the media type and
 * size when the registry sent them. When the HEAD could not say the digest, the manifest was read by GET and hashed
 * (`via: 'get'`), and its bytes come along so that a caller does not pay for them twice.
 */
export type ManifestHead = {
  readonly digest: string;
  readonly rateLimit: RateLimit;
} & (
  | { readonly via: 'head'; readonly mediaType?: string; readonly size?: number }
  | { readonly via: 'get'; readonly mediaType: string; readonly size: number; readonly bytes: Buffer }
);

/** The Content-Type without its parameters; undefined when absent or empty. */
export function contentType(headers: IncomingHttpHeaders): string | undefined {
  return header(headers, 'content-type')?.split(';')[0].trim() || undefined;
}

/** A manifest's media type: the Content-Type when it is a manifest type, else what the JSON says of itself. */
export function manifestMediaType(served: string | undefined, bytes: Buffer): string {
  if (served && isManifest(served)) return served;
  try {
    return parseManifest(bytes, served === 'application/json' ? undefined : served).mediaType;
  } catch {
    return served ?? 'application/octet-stream';
  }
}

/** The number in Docker Hub's `ratelimit-remaining: 95;w=21600`, or undefined when absent or unreadable. */
export function parseRateLimitRemaining(value: string | undefined): number | undefined {
  return parseQuota(value)?.count;
}

/** The rate-limit headers of a response; fields the registry did not send are absent. */
export function rateLimitOf(headers: IncomingHttpHeaders): RateLimit {
  const limit = parseQuota(header(headers, 'ratelimit-limit'));
  const remaining = parseQuota(header(headers, 'ratelimit-remaining'));
  const windowSeconds = remaining?.windowSeconds ?? limit?.windowSeconds;
  const retryAfterMs = parseRetryAfter(headers['retry-after']);
  return {
    ...(limit ? { limit: limit.count } : {}),
    ...(remaining ? { remaining: remaining.count } : {}),
    ...(windowSeconds !== undefined ? { windowSeconds } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** `95;w=21600` → 95 requests per 21600 s; undefined when the value does not start with a count. */
function parseQuota(value: string | undefined): { count: number; windowSeconds?: number } | undefined {
  const m = value === undefined ? null : /^\s*(\d+)/.exec(value);
  if (!m) return undefined;
  const w = /;\s*w=(\d+)/.exec(value!);
  return { count: Number(m[1]), ...(w ? { windowSeconds: Number(w[1]) } : {}) };
}
