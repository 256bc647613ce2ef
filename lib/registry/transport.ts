import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Credential, CredentialProvider } from './auth';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from '../content/timeouts';
import { readAll } from '../content/verify';
import { discard, readPrefix, responseTooLarge } from './body';
import { request, undiciAgent } from './http';
import { parseChallenges, type Challenge } from './challenge';
import { RETRYABLE_STATUSES, RegistryError, parseErrorBody } from './errors';
import { RetryPolicy, isRetryableNetworkError, parseRetryAfter, type RetryOptions } from './retry';

/**
 * Byte bodies are resent on a retry or after an auth challenge. A Readable is sent exactly once: it cannot be
 * rewound, so a request with one is never retried here; the caller decides whether it can produce the stream again.
 */
export type RequestBody = Uint8Array | string | Readable;

export interface TransportRequest {
  method: string;
  /** A path on the registry (`/v2/…`) or an absolute URL (an upload location, a `Link` target). */
  url: string | URL;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** The token scopes the request needs, e.g. `repository:app:pull,push`. */
  scopes: readonly string[];
  /** Statuses the caller handles; any other status throws RegistryError. `any` hands every status back. */
  expect: readonly number[] | 'any';
}

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** Where the response came from, after redirects. */
  url: URL;
}

export interface TransportOptions {
  readonly insecure?: boolean;
  readonly credentials?: CredentialProvider;
  readonly userAgent: string;
  readonly retry?: RetryOptions;
  /** @default DEFAULT_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** @default DEFAULT_IDLE_TIMEOUT_MS */
  readonly idleTimeoutMs?: number;
  /** Told of every request a caller sends, once (not its retries, redirects, ping or token requests). */
  readonly onRequest?: (request: { method: string; url: string }) => void;
  /** Told of the final answer to every request (after retries), before it is returned or thrown. */
  readonly onResponse?: (response: {
    method: string;
    url: string;
    status: number;
    headers: IncomingHttpHeaders;
  }) => void;
}

// The defaults, with their reasons, are shared with the S3 store (lib/content/timeouts.ts).
export { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from '../content/timeouts';

/** Blob GETs are redirected once to storage (S3, a CDN); a few more allow for a regional hop, a loop does not. */
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Distribution token spec: a token without `expires_in` lasts 60 seconds. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Renew a token this long before it expires, so it does not lapse between our check and the registry's. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** Token responses are small JSON; cap what we read from a misconfigured realm. */
const TOKEN_BODY_LIMIT = 1024 * 1024;
/** Sent as `client_id` in OAuth2 refresh-token requests, which the token spec requires. */
const OAUTH_CLIENT_ID = 'imagevault';

interface CachedToken {
  token: string;
  expiresAt: number;
}

export function repositoryScope(repository: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

export const CATALOG_SCOPE = 'registry:catalog:*';

/** 127.0.0.0/8, localhost and ::1: traffic that never leaves the machine. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The HTTP layer of one registry, in go-containerregistry's order: ping (scheme and auth challenge) → user agent
 * → auth (basic or bearer, tokens cached per scope) → retry. Shared by every Repository of a RegistryClient.
 *
 * Scheme: https always. Loopback hosts, and any host when `insecure`, may also speak plain http. With `insecure`
 * the first request pings `https://host/v2/` and falls back to `http://` when that fails to connect or handshake; a
 * loopback host is pinged over http first and over https when no registry answered that (see ping()). The answer is
 * kept for the life of the transport (as go-containerregistry does), so a local TLS registry still gets TLS.
 */
export class Transport {
  private readonly agent: Dispatcher;
  private readonly retry: RetryPolicy;
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private origin?: Promise<URL>;
  private challenge?: Challenge;
  private credential?: Promise<Credential | undefined>;
  private credentialExpiresAt = Infinity;

  constructor(
    readonly registry: string,
    private readonly host: string,
    private readonly options: TransportOptions,
  ) {
    this.retry = new RetryPolicy(options.retry);
    this.agent = new (undiciAgent())({
      connect: { rejectUnauthorized: !options.insecure },
      headersTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    });
  }

  /** The retry policy of this registry, for callers that retry work of their own (a body that broke off). */
  get retryPolicy(): RetryPolicy {
    return this.retry;
  }

  /** Sends a registry request with auth and retries; throws RegistryError unless the status is in `expect`. */
  async send(req: TransportRequest): Promise<TransportResponse> {
    this.options.onRequest?.({ method: req.method, url: req.url.toString() });
    const base = await this.base();
    const url = new URL(req.url, base);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    // Like go-containerregistry, authorize only the registry's own host: a Link or upload Location pointing
    // elsewhere must not receive our token or password.
    return this.exchange(req, url, url.origin === base.origin, this.options.onResponse);
  }

  /** Releases pooled connections. */
  close(): Promise<void> {
    return this.agent.close();
  }

  /** One request with its retries and auth challenge; `observe` hears the final answer (a caller's requests only). */
  private async exchange(
    req: TransportRequest,
    url: URL,
    authorize: boolean,
    observe?: TransportOptions['onResponse'],
  ): Promise<TransportResponse> {
    const replayable = !(req.body instanceof Readable);
    let challenged = false;
    for (let attempt = 1; ; attempt++) {
      const authorization = authorize ? await this.authorization(req.scopes, url) : undefined;
      let res: TransportResponse;
      try {
        res = await this.roundTrip(req.method, url, this.headers(req.headers, authorization), req.body);
      } catch (e) {
        if (replayable && attempt < this.retry.maxAttempts && isRetryableNetworkError(e)) {
          await this.retry.wait(attempt);
          continue;
        }
        throw e instanceof RegistryError ? e : new RegistryError({ method: req.method, url, cause: e });
      }
      if (authorize && res.status === 401 && !challenged && replayable) {
        // Anonymous first: the first 401 tells us how to authenticate; a second one is a real refusal.
        challenged = true;
        this.learnChallenge(res.headers);
        this.tokens.delete(scopeKey(req.scopes));
        discard(res.body);
        attempt--;
        continue;
      }
      if (RETRYABLE_STATUSES.has(res.status) && replayable && attempt < this.retry.maxAttempts) {
        discard(res.body);
        await this.retry.wait(attempt, parseRetryAfter(res.headers['retry-after']));
        continue;
      }
      const { status, headers } = res;
      observe?.({ method: req.method, url: req.url.toString(), status, headers });
      if (req.expect !== 'any' && !req.expect.includes(res.status))
        throw await errorFromResponse(req.method, res);
      return res;
    }
  }

  private headers(
    extra: Record<string, string> | undefined,
    authorization: string | undefined,
  ): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.options.userAgent, ...extra };
    if (authorization) h.authorization = authorization;
    return h;
  }

  /**
   * One HTTP exchange, following redirects for GET and HEAD. Authorization goes only to the origin it was made
   * for: blob redirects point at presigned storage URLs, which must not receive (and would reject) our token.
   */
  private async roundTrip(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: RequestBody | undefined,
  ): Promise<TransportResponse> {
    let current = url;
    let h = headers;
    for (let hop = 0; ; hop++) {
      // A connection whose answer was just read is handed back to the pool a moment later, after the code that read
      // it has already moved on: without this turn of the event loop, each request that follows another (the ping,
      // the tag's HEAD, the manifest, …) opened a connection of its own — a TLS handshake each, on a remote registry.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const res = await request(current, {
        method: method as Dispatcher.HttpMethod,
        headers: h,
        body: body ?? null,
        dispatcher: this.agent,
        // The HTTP client closes the connection after every HEAD, in case a server sends a body with it; registries
        // answer HEADs without one, and a snapshot's HEADs (the tag's digest, read again after the copy) would each
        // pay a new connection (a TLS handshake, on a remote registry). A server that does send one anyway loses
        // that connection, not the next answer (test/unit/registry/client.test.ts).
        ...(method === 'HEAD' && { reset: false }),
      });
      const location = header(res.headers, 'location');
      const follow =
        (method === 'GET' || method === 'HEAD') && REDIRECT_STATUSES.has(res.statusCode) && location;
      if (!follow) return { status: res.statusCode, headers: res.headers, body: res.body, url: current };
      discard(res.body);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError({ method, url, detail: `more than ${MAX_REDIRECTS} redirects` });
      }
      const next = new URL(location, current);
      if (next.origin !== current.origin) {
        h = Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'authorization'));
      }
      current = next;
    }
  }

  private base(): Promise<URL> {
    this.origin ??= this.ping().catch((e: unknown) => {
      this.origin = undefined; // a registry that was down may be up for the next request
      throw e;
    });
    return this.origin;
  }

  /**
   * Finds the scheme and learns the auth challenge from `GET /v2/`, so later requests can authorize up front.
   *
   * A loopback host is asked over plain HTTP first: traffic there never leaves the machine, so plain HTTP is allowed
   * for it anyway, and a local test or mirror registry almost always speaks it — trying TLS first cost every command a
   * failed handshake. The ping carries no credentials. Only an answer that comes from a registry (the distribution
   * API version header, or 200/401) settles on HTTP; anything else (a TLS server's 400 to a plain request, a reset)
   * tries HTTPS, so a local TLS registry still gets TLS. Non-loopback hosts with `insecure` keep HTTPS first.
   */
  private async ping(): Promise<URL> {
    const https = new URL(`https://${this.host}/`);
    if (!this.options.insecure && !isLoopback(https.hostname)) return this.pingWithRetries(https);
    if (isLoopback(https.hostname)) {
      const http = new URL(`http://${this.host}/`);
      const plain = await this.pingOnce(http).catch(() => undefined);
      if (plain && isRegistryAnswer(plain)) return this.learnPing(plain, http);
      if (plain) discard(plain.body);
      try {
        return this.learnPing(await this.pingOnce(https), https);
      } catch {
        return this.pingWithRetries(http);
      }
    }
    let res: TransportResponse;
    try {
      res = await this.pingOnce(https);
    } catch {
      // No TLS there (or nothing listening): plain HTTP is allowed for this host.
      return this.pingWithRetries(new URL(`http://${this.host}/`));
    }
    return this.learnPing(res, https);
  }

  private pingOnce(base: URL): Promise<TransportResponse> {
    return this.roundTrip('GET', new URL('/v2/', base), this.headers(undefined, undefined), undefined);
  }

  /** Any status settles the scheme; a 5xx or a reset is retried like any other request. */
  private async pingWithRetries(base: URL): Promise<URL> {
    const req: TransportRequest = { method: 'GET', url: '/v2/', scopes: [], expect: 'any' };
    return this.learnPing(await this.exchange(req, new URL('/v2/', base), false), base);
  }

  private learnPing(res: TransportResponse, base: URL): URL {
    if (res.status === 401) this.learnChallenge(res.headers);
    discard(res.body);
    return base;
  }

  private learnChallenge(headers: IncomingHttpHeaders): void {
    const challenges = parseChallenges(headers['www-authenticate']);
    const usable =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (usable) this.challenge = usable;
  }

  private getCredential(): Promise<Credential | undefined> {
    if (this.credential && Date.now() >= this.credentialExpiresAt) this.credential = undefined;
    if (!this.credential) {
      const provider = this.options.credentials;
      const pending = provider ? provider(this.registry) : Promise.resolve(undefined);
      this.credential = pending;
      this.credentialExpiresAt = Infinity;
      pending.then(
        (c) => {
          if (this.credential === pending) this.credentialExpiresAt = c?.expiresAt ?? Infinity;
        },
        () => {
          if (this.credential === pending) this.credential = undefined; // a failed lookup is not kept
        },
      );
    }
    return this.credential;
  }

  private async authorization(scopes: readonly string[], url: URL): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const cred = await this.getCredential();
    if (challenge.scheme === 'basic') {
      if (!cred?.username && !cred?.password) return undefined;
      this.assertMaySendSecrets('GET', url);
      return basic(cred);
    }
    if (cred?.registryToken) {
      this.assertMaySendSecrets('GET', url);
      return `Bearer ${cred.registryToken}`;
    }
    return `Bearer ${await this.token(challenge, scopes, cred)}`;
  }

  private async token(
    challenge: Challenge,
    scopes: readonly string[],
    cred: Credential | undefined,
  ): Promise<string> {
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached) {
      const t = await cached;
      if (t.expiresAt > Date.now()) return t.token;
    }
    const pending = this.fetchToken(challenge, scopes, cred);
    this.tokens.set(key, pending);
    pending.catch(() => this.tokens.get(key) === pending && this.tokens.delete(key));
    return (await pending).token;
  }

  /**
   * Asks the token service named by the bearer challenge for a token (distribution token spec): GET with Basic
   * credentials, or an OAuth2 POST exchanging an identity (refresh) token.
   */
  private async fetchToken(
    challenge: Challenge,
    scopes: readonly string[],
    cred: Credential | undefined,
  ): Promise<CachedToken> {
    const { realm, service } = challenge.params;
    if (!realm) {
      throw new RegistryError({
        method: 'GET',
        url: `https://${this.host}/v2/`,
        detail: 'bearer challenge has no realm',
      });
    }
    const url = new URL(realm);
    let req: TransportRequest;
    if (cred?.identityToken) {
      this.assertMaySendSecrets('POST', url);
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: cred.identityToken,
        client_id: OAUTH_CLIENT_ID,
      });
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      req = {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        scopes: [],
        expect: [200],
      };
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.username || cred?.password) {
        this.assertMaySendSecrets('GET', url);
        headers.authorization = basic(cred);
      }
      req = { method: 'GET', url, headers, scopes: [], expect: [200] };
    }
    const res = await this.exchange(req, url, false);
    return parseTokenResponse(
      await readAll(res.body, TOKEN_BODY_LIMIT, responseTooLarge(req.method, url)),
      req.method,
      url,
    );
  }

  private assertMaySendSecrets(method: string, url: URL): void {
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      throw new RegistryError({
        method,
        url,
        detail: 'refusing to send credentials over plain HTTP to a non-loopback host',
      });
    }
  }
}

function parseTokenResponse(bytes: Buffer, method: string, url: URL): CachedToken {
  let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    json = JSON.parse(bytes.toString('utf8')) as typeof json;
  } catch (e) {
    throw new RegistryError({ method, url, detail: 'token response is not JSON', cause: e });
  }
  const token = typeof json.token === 'string' && json.token ? json.token : json.access_token;
  if (typeof token !== 'string' || !token) {
    throw new RegistryError({ method, url, detail: 'token response has neither token nor access_token' });
  }
  const lifetimeMs =
    (typeof json.expires_in === 'number' && json.expires_in > 0
      ? json.expires_in
      : DEFAULT_TOKEN_LIFETIME_S) * 1000;
  const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, lifetimeMs / 2);
  return { token, expiresAt: Date.now() + lifetimeMs - margin };
}

function basic(cred: Credential): string {
  return `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}`;
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

/** A `/v2/` answer from a registry, not from some other server on the port (a TLS server refusing plain HTTP). */
function isRegistryAnswer(res: TransportResponse): boolean {
  return (
    header(res.headers, 'docker-distribution-api-version') !== undefined ||
    res.status === 200 ||
    res.status === 401
  );
}

/** The first value of a response header. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads the spec's error body (bounded) and builds the RegistryError for an unexpected status. */
export async function errorFromResponse(method: string, res: TransportResponse): Promise<RegistryError> {
  const text = method === 'HEAD' ? '' : await readPrefix(res.body);
  if (method === 'HEAD') discard(res.body);
  const errors = parseErrorBody(text);
  const detail = errors.length === 0 ? summarize(text) : undefined;
  return new RegistryError({ method, url: res.url, status: res.status, errors, detail });
}

/** A one-line excerpt of a non-spec error body (a proxy's HTML page, a token service's JSON). */
function summarize(text: string): string | undefined {
  const line = text.replace(/\s+/g, ' ').trim();
  if (!line) return undefined;
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
