import { version } from '../../package.json';
import type { Timeouts } from '../content/timeouts';
import { readAll } from '../content/verify';
import {
  DOCKER_HUB_API,
  Digest,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  Reference,
  isManifest,
  parseManifest,
  platformString,
} from '../oci';
import {
  RegistryError,
  dockerConfigCredentials,
  isDockerHub,
  parseRateLimitRemaining,
  type CredentialProvider,
} from '../registry';
import { responseTooLarge } from '../registry/body';
import { DEFAULT_PAGE_SIZE, paginate } from '../registry/pagination';
import type { RetryOptions } from '../registry/retry';
import {
  Transport,
  header,
  repositoryScope,
  type TransportRequest,
  type TransportResponse,
} from '../registry/transport';

/*
 * What the newer-versions check asks upstream registries: a repository's tags (`GET /v2/<name>/tags/list?n=1000`,
 * page by page along `Link: <…>; rel="next"`, through the registry client's pagination) and a candidate tag's
 * index (one GET) for its platforms. Over the registry transport, so token auth, retries and 429 backoff with
 * Retry-After are the client's; every response's `ratelimit-remaining` is read, since the transport does not say it.
 */

const ACCEPT_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ');
/** An image config is small JSON; only os, architecture and variant are read from it. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** A transport that counts listing pages and remembers the lowest `ratelimit-remaining` it was told. */
class ObservingTransport extends Transport {
  rateLimitRemaining?: number;

  constructor(
    registry: string,
    host: string,
    options: ConstructorParameters<typeof Transport>[2],
    private readonly counts: TagListerRequests,
  ) {
    super(registry, host, options);
  }

  override async send(req: TransportRequest): Promise<TransportResponse> {
    // The first page and every `Link` target after it.
    if (new URL(req.url, 'http://registry.invalid').pathname.endsWith('/tags/list')) this.counts.tagPages++;
    const res = await super.send(req);
    const left = parseRateLimitRemaining(header(res.headers, 'ratelimit-remaining'));
    if (left !== undefined) this.rateLimitRemaining = Math.min(left, this.rateLimitRemaining ?? left);
    return res;
  }
}

export interface TagListerOptions {
  /** @default dockerConfigCredentials() */
  readonly credentials?: CredentialProvider;
  /** @default false (plain HTTP only to loopback registries) */
  readonly insecure?: boolean;
  readonly retry?: RetryOptions;
  readonly timeouts?: Timeouts;
  /** Tags per listing request, 1 to 1000. @default 1000 (ECR rejects more) */
  readonly pageSize?: number;
}

/** The registry requests of a check, by kind. */
export interface TagListerRequests {
  /** `tags/list` pages. */
  tagPages: number;
  /** Manifest GETs (a pull on Docker Hub) and the config GETs of single-platform candidates. */
  get: number;
}

/** Lists tags and reads candidates' platforms, one transport per registry; close() when done. */
export class TagLister {
  private readonly transports = new Map<string, ObservingTransport>();
  readonly requests: TagListerRequests = { tagPages: 0, get: 0 };

  constructor(private readonly options: TagListerOptions = {}) {}

  /** Every tag of `registry/repository`, in the registry's order. */
  async tags(repository: string): Promise<{ tags: string[]; pages: number }> {
    const ref = Reference.parse(`${repository}:latest`);
    const before = this.requests.tagPages;
    const tags: string[] = [];
    for await (const tag of paginate(
      this.transport(ref.registry),
      {
        url: `/v2/${ref.repository}/tags/list`,
        query: { n: String(this.options.pageSize ?? DEFAULT_PAGE_SIZE) },
        scopes: [repositoryScope(ref.repository, ['pull'])],
      },
      (json) => {
        const v = (json as { tags?: unknown } | null)?.tags;
        return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
      },
    ))
      tags.push(tag);
    return { tags, pages: this.requests.tagPages - before };
  }

  /** The platforms a tag offers: its index's entries (attestations left out), or a single image's config. */
  async platforms(repository: string, tag: string): Promise<{ digest: string; platforms: string[] }> {
    const ref = Reference.parse(`${repository}:${tag}`);
    const transport = this.transport(ref.registry);
    const scopes = [repositoryScope(ref.repository, ['pull'])];
    this.requests.get++;
    const res = await transport.send({
      method: 'GET',
      url: `/v2/${ref.repository}/manifests/${tag}`,
      headers: { accept: ACCEPT_MANIFESTS },
      scopes,
      expect: [200],
    });
    const bytes = await readAll(res.body, MAX_MANIFEST_BYTES, responseTooLarge('GET', res.url));
    const digest = Digest.of(bytes).toString();
    const type = header(res.headers, 'content-type')?.split(';')[0].trim();
    const node = parseManifest(bytes, type && isManifest(type) ? type : undefined);
    if (node.kind === 'index') {
      const platforms = node.index.manifests
        .filter((m) => m.platform && m.platform.os !== 'unknown')
        .map((m) => platformString(m.platform));
      return { digest, platforms: [...new Set(platforms)].sort() };
    }
    // A single image says its platform in its config only.
    this.requests.get++;
    const config = await transport.send({
      method: 'GET',
      url: `/v2/${ref.repository}/blobs/${node.manifest.config.digest}`,
      scopes,
      expect: [200],
    });
    const raw = await readAll(config.body, MAX_CONFIG_BYTES, responseTooLarge('GET', config.url));
    let parsed: { os?: unknown; architecture?: unknown; variant?: unknown };
    try {
      parsed = JSON.parse(raw.toString('utf8')) as typeof parsed;
    } catch (e) {
      throw new RegistryError({
        method: 'GET',
        url: config.url,
        detail: 'image config is not JSON',
        cause: e,
      });
    }
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const os = str(parsed.os);
    const architecture = str(parsed.architecture);
    return {
      digest,
      platforms:
        os && architecture ? [platformString({ os, architecture, variant: str(parsed.variant) })] : [],
    };
  }

  /** The lowest `ratelimit-remaining` a registry sent in this check, if it sent one. */
  rateLimitRemaining(registry: string): number | undefined {
    return this.transports.get(registry)?.rateLimitRemaining;
  }

  private transport(registry: string): ObservingTransport {
    let t = this.transports.get(registry);
    if (!t) {
      t = new ObservingTransport(
        registry,
        isDockerHub(registry) ? DOCKER_HUB_API : registry,
        {
          insecure: this.options.insecure,
          credentials: this.options.credentials ?? dockerConfigCredentials(),
          userAgent: `imagevault/${version}`,
          retry: this.options.retry,
          ...this.options.timeouts,
        },
        this.requests,
      );
      this.transports.set(registry, t);
    }
    return t;
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.close()));
  }
}
