/*
 * The network timeouts every client of imagevault shares — registry clients and the S3 store — and how they are read
 * from the environment. One place, so the CLI (which also has --timeout) and the Lambda functions read the same
 * variables the same way. Imports nothing: the CLI's command table loads it before anything heavy.
 */

/** The two waits a caller can bound, in milliseconds; absent means the client's default. */
export interface Timeouts {
  /**
   * How long a request may wait for its answer: a registry's response headers (or to take more of an upload), an
   * S3 request as a whole. From IMAGEVAULT_TIMEOUT (or the CLI's --timeout). @default DEFAULT_REQUEST_TIMEOUT_MS
   */
  readonly requestTimeoutMs?: number;
  /**
   * The longest pause on a connection mid-body before it fails (a download then resumes or is retried). From
   * IMAGEVAULT_IDLE_TIMEOUT. @default DEFAULT_IDLE_TIMEOUT_MS
   */
  readonly idleTimeoutMs?: number;
}

/**
 * How long a request may wait for the registry: for its response headers, or to take the next bytes of an upload.
 * Five minutes (undici's own default, which this used to be implicitly) because a registry finalising a multi-GiB
 * blob on object storage answers the last PUT only after copying it, and that has been seen to take minutes.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
/**
 * The longest pause inside a response body. A healthy registry never pauses a blob for a minute, and a stalled one is
 * better abandoned and asked for the rest (downloads resume) than waited on for undici's default five minutes. Time
 * our side spends not reading (a slow destination) does not count: undici stops the clock while the body is paused.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

export const TIMEOUT_VARIABLE = 'IMAGEVAULT_TIMEOUT';
export const IDLE_TIMEOUT_VARIABLE = 'IMAGEVAULT_IDLE_TIMEOUT';

/** Thrown when a timeout setting is not a positive number of seconds; names where it came from and the value. */
export class TimeoutSettingError extends Error {
  constructor(
    /** The variable or option: `IMAGEVAULT_TIMEOUT`, `--timeout <seconds>`. */
    readonly setting: string,
    readonly value: string,
  ) {
    super(`${setting} must be a number of seconds greater than 0, got "${value}"`);
    this.name = 'TimeoutSettingError';
  }
}

/** A timeout in seconds: any positive number, fractions allowed (a test's 0.5 s, a slow link's 900). */
export function parseSeconds(value: string, setting: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new TimeoutSettingError(setting, value);
  return n;
}

/** IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (seconds); unset or empty leaves the client's default. */
export function timeoutsFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): Timeouts {
  const ms = (variable: string) => {
    const v = env[variable];
    return v === undefined || v === '' ? undefined : parseSeconds(v, variable) * 1000;
  };
  const requestTimeoutMs = ms(TIMEOUT_VARIABLE);
  const idleTimeoutMs = ms(IDLE_TIMEOUT_VARIABLE);
  return {
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
  };
}
