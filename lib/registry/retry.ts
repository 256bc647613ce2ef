import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  /**
   * Attempts per request, the first included. 1 disables retries.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * The backoff before the second attempt; it doubles per attempt, and the actual wait is drawn uniformly from
   * zero up to it ("full jitter"), so clients that failed together do not retry together.
   * @default 200
   */
  readonly baseDelayMs?: number;
  /**
   * The longest wait between attempts, for the backoff and for a server's `Retry-After` alike: a registry that asks
   * for minutes is better answered with an error the caller can schedule around than with a hung copy.
   * @default 30000
   */
  readonly maxDelayMs?: number;
}

/** Five attempts ride out a registry or load balancer restart (tens of seconds with the backoff) without hanging. */
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_BASE_DELAY_MS = 200;
export const DEFAULT_MAX_DELAY_MS = 30_000;

/** Connection-level failures that say nothing about the request itself, so an identical request may succeed. */
const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

export class RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;

  constructor(options: RetryOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  }

  /** The wait after failed attempt `attempt` (1-based): the server's Retry-After if it gave one, else backoff. */
  delay(attempt: number, retryAfterMs?: number): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.maxDelayMs);
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.random() * ceiling;
  }

  /** Sleeps the delay; with a signal, rejects (AbortError) as soon as the caller gives up. */
  wait(attempt: number, retryAfterMs?: number, signal?: AbortSignal): Promise<void> {
    return sleep(this.delay(attempt, retryAfterMs), undefined, signal ? { signal } : undefined);
  }
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when unusable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A response body that broke off: besides the connection failures above, a body cut short of its Content-Length
 * (undici's content-length mismatch) and a stream closed without an error. The request was fine and the bytes
 * received so far are still good, so the rest can be asked for again.
 */
const RETRYABLE_BODY_ERROR_CODES: ReadonlySet<string> = new Set([
  ...RETRYABLE_ERROR_CODES,
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isRetryableNetworkError(e: unknown): boolean {
  return hasCode(e, RETRYABLE_ERROR_CODES);
}

/** True when a response body failed in a way another request for the rest may not (see above). */
export function isRetryableBodyError(e: unknown): boolean {
  return hasCode(e, RETRYABLE_BODY_ERROR_CODES);
}

function hasCode(e: unknown, codes: ReadonlySet<string>): boolean {
  // Bounded: a cause chain is short, but a cycle must not hang a retry decision.
  let err = e as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; err && depth < 8; err = err.cause as typeof err, depth++) {
    if (typeof err.code === 'string' && codes.has(err.code)) return true;
  }
  return false;
}
