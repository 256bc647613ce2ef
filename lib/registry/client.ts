import type { Readable } from 'node:stream';
import { version } from '../../package.json';
import type { ReferrerLister, Target } from '../content/storage';
import {
  DOCKER_HUB_API,
  Digest,
  InvalidManifestError,
  InvalidReferenceError,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  isManifest,
  UnsupportedMediaTypeError,
  validateRepository,
  verifyBytes,
  type Descriptor,
} from '../oci';
import { dockerConfigCredentials, isDockerHub, type CredentialProvider } from './auth';
import { readAll } from '../content/verify';
import { discard, responseTooLarge } from './body';
import { isDigest, manifestPath, type RepositoryContext } from './context';
import { RegistryError } from './errors';
import {
  ACCEPT_MANIFESTS,
  contentType,
  manifestMediaType,
  rateLimitOf,
  type ManifestHead,
  type RateLimit,
} from './metadata';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, paginate } from './pagination';
import { addToReferrersTag, listReferrers, referrerOf } from './referrers';
import { ResumingBody, parseContentRange, type BodyPart } from './resume';
import type { RetryOptions } from './retry';
import {
  CATALOG_SCOPE,
  Transport,
  header,
  repositoryScope,
  type TransportRequest,
  type TransportResponse,
} from './transport';
import { cancelUpload, uploadBlob } from './upload';

export interface RegistryClientOptions {
  /**
   * Allow plain HTTP and unverified TLS for hosts that are not loopback. Loopback hosts may always fall back to
   * plain HTTP. Credentials are never sent over plain HTTP to a non-loopback host, insecure or not.
   * @default false
   */
  readonly insecure?: boolean;
  /**
   * Where credentials come from, asked once per client.
   * @default dockerConfigCredentials() — $DOCKER_CONFIG/config.json or ~/.docker/config.json, with credential helpers
   */
  readonly credentials?: CredentialProvider;
  /** @default `imagevault/<package version>` */
  readonly userAgent?: string;
  /**
   * Attempts and backoff for requests, and for downloads that break off mid-body (each resumption is an attempt).
   * @default 5 attempts, 200 ms base backoff with full jitter, waits capped at 30 s
   */
  readonly retry?: RetryOptions;
  /**
   * How long to wait for a response's headers, or for the registry to take more of an upload, in milliseconds.
   * @default DEFAULT_REQUEST_TIMEOUT_MS (5 minutes)
   */
  readonly requestTimeoutMs?: number;
  /**
   * The longest pause inside a response body, in milliseconds; a body that stalls this long fails, and a download
   * resumes from where it stopped (see `retry`).
   * @default DEFAULT_IDLE_TIMEOUT_MS (60 s)
   */
  readonly idleTimeoutMs?: number;
  /**
   * When set, blobs are uploaded in PATCH chunks of this many bytes (each chunk is held in memory, and retried on
   * its own); otherwise the body streams in one PUT, which is faster but cannot be retried.
   * @default undefined (monolithic upload)
   */
  readonly chunkSize?: number;
  /**
   * Entries per page for tag and catalog listings (`n`), 1 to 1000. Not sent to the referrers API, whose spec has
   * no such parameter (its pages follow the Link header only).
   * @default 1000 (ECR rejects more)
   */
  readonly pageSize?: number;
  /**
   * Where the client says what a caller should know but that is not an error: that a registry has no referrers
   * API and its referrers are read from the tag schema instead (said once per client).
   * @default one line on stderr
   */
  readonly warn?: (line: string) => void;
  /**
   * Told of every request the client sends, once each: not of its retries, redirects, or the ping and token
   * requests of auth. What a caller counts to know what it cost a registry that limits requests (Docker Hub).
   * @default none
   */
  readonly onRequest?: (request: { method: string; url: string }) => void;
  /**
   * Told of the final answer to each request (after retries, before it is returned or thrown): its status and what
   * it says of the rate limit. How a caller paces itself on any request, not only head() (a tag listing's pages, a
   * manifest GET), without reading headers itself.
   * @default none
   */
  readonly onResponse?: (response: {
    method: string;
    url: string;
    status: number;
    rateLimit: RateLimit;
  }) => void;
}

/** Each PATCH chunk is a Buffer; far above 1 GiB a single request is better served by the monolithic upload. */
const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;

/**
 * A client for one registry (OCI distribution spec v1.1). It holds the connection pool, the scheme it found,
 * and the auth tokens, so create one per registry and share it.
 */
export class RegistryClient {
  readonly registry: string;
  private readonly transport: Transport;
  private readonly pageSize: number;
  private readonly chunkSize?: number;
  private readonly warnOnce: (key: string, line: string) => void;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    validateOptions(registry, options);
    this.registry = registry;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.chunkSize = options.chunkSize;
    const warn = options.warn ?? ((line: string) => process.stderr.write(`imagevault: ${line}\n`));
    const said = new Set<string>();
    this.warnOnce = (key, line) => {
      if (said.has(key)) return;
      said.add(key);
      warn(line);
    };
    // Docker Hub's name is docker.io, but the distribution API lives on registry-1.docker.io.
    const host = isDockerHub(registry) ? DOCKER_HUB_API : registry;
    const { onResponse } = options;
    this.transport = new Transport(registry, host, {
      insecure: options.insecure,
      credentials: options.credentials ?? dockerConfigCredentials(),
      userAgent: options.userAgent ?? `imagevault/${version}`,
      retry: options.retry,
      requestTimeoutMs: options.requestTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      onRequest: options.onRequest,
      onResponse:
        onResponse && (({ headers, ...r }) => onResponse({ ...r, rateLimit: rateLimitOf(headers) })),
    });
  }

  repository(name: string): Repository {
    validateRepository(name);
    return new Repository(this.transport, this.registry, name, {
      pageSize: this.pageSize,
      chunkSize: this.chunkSize,
      warnOnce: this.warnOnce,
    });
  }

  /** Every repository name (`GET /v2/_catalog`), page by page. Registries may restrict this to admins. */
  catalog(): AsyncIterable<string> {
    return paginate(
      this.transport,
      { url: '/v2/_catalog', query: { n: String(this.pageSize) }, scopes: [CATALOG_SCOPE] },
      (json) => stringList(json, 'repositories'),
    );
  }

  /** Closes pooled connections; the client is unusable afterwards. */
  close(): Promise<void> {
    return this.transport.close();
  }
}

function validateOptions(registry: string, options: RegistryClientOptions): void {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/.test(registry)) {
    throw new InvalidReferenceError(
      `invalid registry "${registry}": expected host[:port] without scheme or path`,
    );
  }
  const problems: string[] = [];
  const { chunkSize, pageSize, retry } = options;
  if (
    chunkSize !== undefined &&
    !(Number.isInteger(chunkSize) && chunkSize > 0 && chunkSize <= MAX_CHUNK_SIZE)
  ) {
    problems.push(`chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
  if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize > 0 && pageSize <= MAX_PAGE_SIZE)) {
    problems.push(`pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${pageSize}`);
  }
  if (retry?.maxAttempts !== undefined && !(Number.isInteger(retry.maxAttempts) && retry.maxAttempts >= 1)) {
    problems.push(`retry.maxAttempts must be an integer of at least 1, got ${retry.maxAttempts}`);
  }
  for (const key of ['baseDelayMs', 'maxDelayMs'] as const) {
    const v = retry?.[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0))
      problems.push(`retry.${key} must be a number of at least 0, got ${v}`);
  }
  for (const key of ['requestTimeoutMs', 'idleTimeoutMs'] as const) {
    const v = options[key];
    // Positive: undici reads 0 as "no timeout", which is not what a caller computing a short one meant.
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      problems.push(`${key} must be a number greater than 0, got ${v}`);
  }
  if (problems.length > 0)
    throw new TypeError(`invalid RegistryClient options for ${registry}: ${problems.join('; ')}`);
}

/**
 * One repository of a registry, as a Target (the copy engine's view) and a ReferrerLister. Blobs stream in both
 * directions; only manifests and listings, which the spec bounds, are held in memory.
 */
export class Repository implements Target, ReferrerLister {
  private readonly context: RepositoryContext;
  private readonly pullScopes: readonly string[];
  private readonly pushScopes: readonly string[];

  /** Use RegistryClient.repository(), which shares the client's connections and tokens. */
  constructor(
    private readonly transport: Transport,
    readonly registry: string,
    readonly name: string,
    private readonly options: {
      pageSize: number;
      chunkSize?: number;
      warnOnce?: (key: string, line: string) => void;
    },
  ) {
    this.pullScopes = [repositoryScope(name, ['pull'])];
    this.pushScopes = [repositoryScope(name, ['pull', 'push'])];
    const { pullScopes, pushScopes } = this;
    this.context = { transport, registry, name, pullScopes, pushScopes };
  }

  /**
   * What a tag or digest points at, with the response's metadata (media type, size, rate-limit headers), for one
   * `HEAD /manifests/<ref>`. Only when the HEAD cannot say the digest is the manifest read by GET and hashed: the
   * registry sent no Docker-Content-Digest, or it has no HEAD on manifests (404 or 405 without an error body: a HEAD
   * answer has none, so the GET's error says MANIFEST_UNKNOWN or whatever it is).
   */
  async head(reference: string): Promise<ManifestHead> {
    let res;
    try {
      res = await this.send({
        method: 'HEAD',
        url: this.manifestPath(reference),
        headers: { accept: ACCEPT_MANIFESTS },
        scopes: this.pullScopes,
        expect: [200],
      });
    } catch (e) {
      if (e instanceof RegistryError && (e.status === 404 || e.status === 405) && e.errors.length === 0) {
        return this.headByGet(reference, {});
      }
      throw e;
    }
    discard(res.body);
    const rateLimit = rateLimitOf(res.headers);
    const digest = isDigest(reference) ? reference : header(res.headers, 'docker-content-digest');
    if (!digest || !Digest.isValid(digest)) return this.headByGet(reference, rateLimit);
    const mediaType = contentType(res.headers);
    const size = Number(header(res.headers, 'content-length'));
    return {
      digest,
      ...(mediaType ? { mediaType } : {}),
      ...(Number.isInteger(size) ? { size } : {}),
      via: 'head',
      rateLimit,
    };
  }

  /** The GET a HEAD could not spare; its rate-limit headers are the newer, the HEAD's fill what it left out. */
  private async headByGet(reference: string, headed: RateLimit): Promise<ManifestHead> {
    const { descriptor, bytes, headers } = await this.getManifest(reference);
    return { ...descriptor, via: 'get', bytes, rateLimit: { ...headed, ...rateLimitOf(headers) } };
  }

  /**
   * The descriptor a tag or digest points at (see head()). A HEAD that names no manifest media type or no size
   * costs a GET, whose body is hashed.
   */
  async resolve(reference: string): Promise<Descriptor> {
    const head = await this.head(reference);
    const { digest, mediaType, size } = head;
    if (head.via === 'head' && mediaType && isManifest(mediaType) && size !== undefined) {
      return { mediaType, digest, size };
    }
    const descriptor =
      head.via === 'get'
        ? { mediaType: head.mediaType, digest, size: head.size }
        : (await this.fetchManifest(reference)).descriptor;
    // Anything else would be copied as a blob and fail far from here, saying nothing of why.
    if (!isManifest(descriptor.mediaType)) {
      const ref = `${this.registry}/${this.name}${isDigest(reference) ? '@' : ':'}${reference}`;
      throw new UnsupportedMediaTypeError(descriptor.mediaType, `${ref}: `);
    }
    return descriptor;
  }

  /**
   * The manifest's exact bytes. By digest, they are verified against it; by tag, against Docker-Content-Digest
   * when the registry sends one (a tag names no content we could check otherwise).
   */
  async fetchManifest(reference: string): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const { descriptor, bytes } = await this.getManifest(reference);
    return { descriptor, bytes };
  }

  private async getManifest(
    reference: string,
  ): Promise<{ descriptor: Descriptor; bytes: Buffer; headers: TransportResponse['headers'] }> {
    const res = await this.send({
      method: 'GET',
      url: this.manifestPath(reference),
      headers: { accept: ACCEPT_MANIFESTS },
      scopes: this.pullScopes,
      expect: [200],
    });
    const bytes = await readAll(res.body, MAX_MANIFEST_BYTES, responseTooLarge('GET', res.url));
    const context = `GET ${res.url.origin}${res.url.pathname}: `;
    const claimed = isDigest(reference) ? reference : header(res.headers, 'docker-content-digest');
    let digest: string;
    // A digest asked for is always checked (an unsupported algorithm throws); a header only when we can check it.
    if (claimed && (isDigest(reference) || Digest.isValid(claimed))) {
      verifyBytes(bytes, claimed, undefined, context);
      digest = claimed;
    } else {
      digest = Digest.of(bytes).toString();
    }
    const mediaType = manifestMediaType(contentType(res.headers), bytes);
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, headers: res.headers };
  }

  /**
   * The content's body stream, unverified (the caller verifies). Blob redirects to storage are followed. A body that
   * breaks off (reset, premature close, short, stalled past the idle timeout) is resumed with `Range: bytes=N-`, or
   * read again from the start where the registry ignores the Range, within the retry policy: see ResumingBody.
   */
  async fetch(desc: Descriptor): Promise<Readable> {
    return new ResumingBody(
      await this.openContent(desc, 0),
      desc.size,
      (offset) => this.openContent(desc, offset),
      this.transport.retryPolicy,
    );
  }

  /**
   * A GET of the content from `offset` on. A 206 is used only when its Content-Range starts at or before the offset
   * and names the content's size (or none); anything else — a 200, a range elsewhere, another size — is read from
   * the start (ResumingBody drops what it already passed on).
   */
  private async openContent(desc: Descriptor, offset: number): Promise<BodyPart> {
    const ranged = offset > 0;
    const res = await this.send({
      method: 'GET',
      url: this.contentPath(desc),
      headers: { ...this.acceptFor(desc), ...(ranged ? { range: `bytes=${offset}-` } : {}) },
      scopes: this.pullScopes,
      expect: ranged ? [200, 206] : [200],
    });
    if (res.status === 206) {
      const range = parseContentRange(header(res.headers, 'content-range'));
      if (!range || range.first > offset || (range.size !== undefined && range.size !== desc.size)) {
        discard(res.body);
        return this.openContent(desc, 0);
      }
      return { body: res.body, start: range.first, url: res.url };
    }
    return { body: res.body, start: 0, url: res.url };
  }

  /** Bytes `start` to `end` inclusive (to the end when `end` is omitted), as HTTP Range and fs streams count. */
  async fetchRange(desc: Descriptor, start: number, end?: number): Promise<Readable> {
    const res = await this.send({
      method: 'GET',
      url: this.contentPath(desc),
      headers: { ...this.acceptFor(desc), range: `bytes=${start}-${end ?? ''}` },
      scopes: this.pullScopes,
      expect: [200, 206],
    });
    if (res.status !== 206) {
      discard(res.body);
      throw new RegistryError({
        method: 'GET',
        url: res.url,
        status: res.status,
        detail: 'registry ignored the Range header',
      });
    }
    return res.body;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const res = await this.send({
      method: 'HEAD',
      url: this.contentPath(desc),
      headers: this.acceptFor(desc),
      scopes: this.pullScopes,
      expect: [200, 404],
    });
    discard(res.body);
    return res.status === 200;
  }

  /**
   * Uploads content. Manifests are read (they are small), verified and PUT by digest; blobs stream to the registry,
   * which verifies the digest. Content that does not match `desc` rejects with DigestMismatchError and leaves
   * nothing under that digest.
   */
  async push(desc: Descriptor, content: Readable): Promise<void> {
    if (isManifest(desc.mediaType)) {
      const tooLarge = (limit: number) =>
        new InvalidManifestError(`manifest ${desc.digest} is over the ${limit}-byte limit`);
      const bytes = await readAll(content, MAX_MANIFEST_BYTES, tooLarge);
      verifyBytes(bytes, desc.digest, desc.size, `push ${this.registry}/${this.name}: `);
      await this.putManifest(desc.digest, bytes, desc.mediaType);
      return;
    }
    await uploadBlob(this.context, desc, content, this.options.chunkSize);
  }

  /** PUTs manifest bytes under a tag or digest, exactly as given. */
  async pushManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<void> {
    if (isDigest(reference)) verifyBytes(bytes, reference, undefined, `push ${this.registry}/${this.name}: `);
    await this.putManifest(reference, bytes, mediaType);
  }

  /**
   * Cross-repository blob mount. True when the registry linked the blob; false when it would rather have it
   * uploaded (202), in which case the upload it opened is cancelled.
   */
  async mount(desc: Descriptor, fromRepository: string): Promise<boolean> {
    validateRepository(fromRepository);
    const res = await this.send({
      method: 'POST',
      url: `/v2/${this.name}/blobs/uploads/`,
      query: { mount: desc.digest, from: fromRepository },
      scopes: [...this.pushScopes, repositoryScope(fromRepository, ['pull'])],
      expect: [201, 202],
    });
    discard(res.body);
    if (res.status === 201) return true;
    const location = header(res.headers, 'location');
    if (location) await cancelUpload(this.context, new URL(location, res.url));
    return false;
  }

  /** Points `tag` at a manifest already in the repository, re-PUTting its exact bytes. */
  async tag(desc: Descriptor, tag: string): Promise<void> {
    const { bytes } = await this.fetchManifest(desc.digest);
    await this.pushManifest(tag, bytes, desc.mediaType);
  }

  tags(): AsyncIterable<string> {
    return paginate(
      this.transport,
      {
        url: `/v2/${this.name}/tags/list`,
        query: { n: String(this.options.pageSize) },
        scopes: this.pullScopes,
      },
      (json) => stringList(json, 'tags'),
    );
  }

  /**
   * The manifests whose subject is `desc`, from the referrers API or the referrers tag schema (see listReferrers).
   */
  referrers(desc: Descriptor): Promise<Descriptor[]> {
    return listReferrers(this.context, desc, this.options.warnOnce);
  }

  private async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<void> {
    const res = await this.send({
      method: 'PUT',
      url: this.manifestPath(reference),
      headers: { 'content-type': mediaType },
      body: bytes,
      scopes: this.pushScopes,
      expect: [201],
    });
    discard(res.body);
    const referrer = referrerOf(bytes, mediaType);
    // A registry with the referrers API says so with OCI-Subject; without it, the pusher keeps the fallback tag.
    if (referrer && !header(res.headers, 'oci-subject'))
      await addToReferrersTag(this.context, referrer.subject, referrer.entry);
  }

  private send(req: TransportRequest): Promise<TransportResponse> {
    return this.transport.send(req);
  }

  private manifestPath(reference: string): string {
    return manifestPath(this.name, reference);
  }

  private contentPath(desc: Descriptor): string {
    return isManifest(desc.mediaType)
      ? this.manifestPath(desc.digest)
      : `/v2/${this.name}/blobs/${desc.digest}`;
  }

  private acceptFor(desc: Descriptor): Record<string, string> {
    if (!isManifest(desc.mediaType)) return {};
    return { accept: [...new Set([desc.mediaType, ...MANIFEST_MEDIA_TYPES])].join(', ') };
  }
}

function stringList(json: unknown, field: string): string[] {
  const v = (json as Record<string, unknown> | null)?.[field];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
