import { STATUS_CODES } from 'node:http';
import { redactSecrets } from './redact';
import { isRetryableNetworkError } from './retry';

/** One entry of the distribution spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorDetail {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface RegistryErrorInit {
  /** The HTTP method, or for work that is not an HTTP request, the operation (a credential helper command). */
  method: string;
  /** Where the request went. Credentials and the query string are removed before it is stored. */
  url: string | URL;
  status?: number;
  errors?: RegistryErrorDetail[];
  /** Said after the status and codes when the codes alone do not explain the failure. */
  detail?: string;
  cause?: unknown;
}

/**
 * Statuses worth another attempt: rate limiting and the gateway errors that a load balancer in front of a
 * registry returns while a backend restarts.
 */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/** Spec codes that describe a passing condition rather than a bad request (go-containerregistry's list). */
const TEMPORARY_CODES: ReadonlySet<string> = new Set([
  'BLOB_UPLOAD_INVALID',
  'TOOMANYREQUESTS',
  'UNKNOWN',
  'UNAVAILABLE',
]);

/**
 * Base error of the registry client: a request to a registry (or to its token service, or a credential helper
 * run on its behalf) failed. Thrown for every unexpected HTTP status, with the spec's error codes when the
 * registry sent them, and for connection failures (no `status`, `cause` set).
 */
export class RegistryError extends Error {
  readonly status?: number;
  readonly errors: RegistryErrorDetail[];
  readonly method: string;
  readonly url: string;

  constructor(init: RegistryErrorInit) {
    const url = redactUrl(init.url);
    // Error bodies and helper output are the other side's words: they may echo a credential back.
    super(redactSecrets(formatMessage(init, url)), { cause: init.cause });
    this.name = 'RegistryError';
    this.status = init.status;
    this.errors = init.errors ?? [];
    this.method = init.method;
    this.url = url;
  }

  /** The first spec error code, e.g. `MANIFEST_UNKNOWN`. */
  code(): string | undefined {
    return this.errors[0]?.code;
  }

  /** True when the same request may succeed later: rate limits, gateway errors, dropped connections. */
  get temporary(): boolean {
    if (this.status === undefined) return isRetryableNetworkError(this.cause);
    if (RETRYABLE_STATUSES.has(this.status)) return true;
    return this.errors.length > 0 && this.errors.every((e) => TEMPORARY_CODES.has(e.code));
  }
}

/**
 * Thrown by a credential provider when docker's config.json cannot be read or a credential helper fails.
 * `method` is the helper command and `url` the server it was asked about.
 */
export class CredentialError extends RegistryError {
  constructor(init: Omit<RegistryErrorInit, 'status' | 'errors'>) {
    super(init);
    this.name = 'CredentialError';
  }

  /** A helper that failed once fails the same way again: a missing binary, a locked keychain, bad JSON. */
  override get temporary(): boolean {
    return false;
  }
}

function formatMessage(init: RegistryErrorInit, url: string): string {
  const parts: string[] = [];
  if (init.status !== undefined) {
    const codes = (init.errors ?? []).map((e) => (e.message ? `${e.code}: ${e.message}` : e.code));
    parts.push(
      codes.length > 0
        ? `${init.status} ${codes.join('; ')}`
        : `${init.status} ${STATUS_CODES[init.status] ?? ''}`.trim(),
    );
  }
  if (init.detail) parts.push(init.detail);
  if (parts.length === 0) parts.push(causeText(init.cause));
  return `${init.method} ${url}: ${parts.join(': ')}`;
}

/**
 * What a low-level failure says: its message, else its code (a DNS or socket error), else the errors it aggregates
 * (a connection attempt to every address of a host). Duck-typed: errors from Node's internals may come from another
 * realm (a test runner's sandbox), where `instanceof Error` is false.
 */
export function causeText(cause: unknown): string {
  const e = cause as { message?: unknown; code?: unknown; name?: unknown; errors?: unknown } | undefined;
  if (e === undefined || e === null) return 'failed';
  if (Array.isArray(e.errors) && e.errors.length > 0 && !e.message) return e.errors.map(causeText).join('; ');
  if (typeof e.message === 'string' && e.message) return e.message;
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : String(cause);
}

/**
 * A URL fit for messages and logs: no user info, and no query string, because redirect targets carry signatures
 * (S3 `X-Amz-Signature`, CDN tokens) and upload locations carry opaque state in it.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return url.toString();
  }
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** Parses a spec error body; anything else yields no codes (the status still says what happened). */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  try {
    const json = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter(
        (e): e is Record<string, unknown> =>
          typeof e === 'object' && e !== null && typeof e.code === 'string',
      )
      .map((e) => ({
        code: e.code as string,
        ...(typeof e.message === 'string' && e.message ? { message: e.message } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}
