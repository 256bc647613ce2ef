import type { Timeouts } from '../content/timeouts';
import { readAll } from '../content/verify';
import { Reference, parseManifest, platformString, isManifest } from '../oci';
import {
  RegistryClient,
  RegistryError,
  dockerConfigCredentials,
  type CredentialProvider,
  type RetryOptions,
} from '../registry';

/*
 * What the newer-versions check asks upstream registries: a repository's tags (`GET /v2/<name>/tags/list?n=1000`,
 * page by page along `Link: <…>; rel="next"`) and a candidate tag's index (one GET) for its platforms. Through the
 * registry client, so token auth, retries and 429 backoff with Retry-After are the client's; its onRequest counts
 * what the check cost, and its onResponse tells the lowest `ratelimit-remaining` a registry sent.
 */

/** An image config is small JSON; only os, architecture and variant are read from it. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

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

/** The first page and every `Link` target after it; the Link targets carry their cursor in the query. */
const isTagListing = (url: string) => new URL(url, 'http://registry.invalid').pathname.endsWith('/tags/list');

/** Lists tags and reads candidates' platforms, one registry client per registry; close() when done. */
export class TagLister {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly lowest = new Map<string, number>();
  readonly requests: TagListerRequests = { tagPages: 0, get: 0 };

  constructor(private readonly options: TagListerOptions = {}) {}

  /** Every tag of `registry/repository`, in the registry's order. */
  async tags(repository: string): Promise<{ tags: string[]; pages: number }> {
    const ref = Reference.parse(`${repository}:latest`);
    const before = this.requests.tagPages;
    const tags: string[] = [];
    for await (const tag of this.client(ref.registry).repository(ref.repository).tags()) tags.push(tag);
    return { tags, pages: this.requests.tagPages - before };
  }

  /** The platforms a tag offers: its index's entries (attestations left out), or a single image's config. */
  async platforms(repository: string, tag: string): Promise<{ digest: string; platforms: string[] }> {
    const ref = Reference.parse(`${repository}:${tag}`);
    const repo = this.client(ref.registry).repository(ref.repository);
    const { descriptor, bytes } = await repo.fetchManifest(tag);
    const { digest, mediaType } = descriptor;
    const node = parseManifest(bytes, isManifest(mediaType) ? mediaType : undefined);
    if (node.kind === 'index') {
      const platforms = node.index.manifests
        .filter((m) => m.platform && m.platform.os !== 'unknown')
        .map((m) => platformString(m.platform));
      return { digest, platforms: [...new Set(platforms)].sort() };
    }
    // A single image says its platform in its config only.
    const config = node.manifest.config;
    const url = `${ref.registry}/v2/${ref.repository}/blobs/${config.digest}`;
    const raw = await readAll(
      await repo.fetch(config),
      MAX_CONFIG_BYTES,
      (limit) =>
        new RegistryError({ method: 'GET', url, detail: `response body is over the ${limit}-byte limit` }),
    );
    let parsed: { os?: unknown; architecture?: unknown; variant?: unknown };
    try {
      parsed = JSON.parse(raw.toString('utf8')) as typeof parsed;
    } catch (e) {
      throw new RegistryError({ method: 'GET', url, detail: 'image config is not JSON', cause: e });
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
    return this.lowest.get(registry);
  }

  private client(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      const { credentials, insecure, retry, timeouts, pageSize } = this.options;
      c = new RegistryClient(registry, {
        credentials: credentials ?? dockerConfigCredentials(),
        insecure,
        retry,
        ...timeouts,
        pageSize,
        onRequest: ({ method, url }) => {
          if (isTagListing(url)) this.requests.tagPages++;
          else if (method === 'GET') this.requests.get++;
        },
        // Answers the client returned, as before: a refusal is already the caller's reason to stop (deferReason).
        onResponse: ({ status, rateLimit: { remaining } }) => {
          if (status < 200 || status > 299 || remaining === undefined) return;
          this.lowest.set(registry, Math.min(remaining, this.lowest.get(registry) ?? remaining));
        },
      });
      this.clients.set(registry, c);
    }
    return c;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
