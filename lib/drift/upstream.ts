import type { Timeouts } from '../content/timeouts';
import type { Vault } from '../content/vault';
import { Reference, isManifest, parseManifest, platformString } from '../oci';
import {
  RegistryClient,
  RegistryError,
  dockerConfigCredentials,
  type CredentialProvider,
  type RetryOptions,
} from '../registry';
import { RegistrySource, VaultFirstSource } from './source';
import { createdBy, diffLayers, diffLines, layerInfos, parseImageConfig, type LayerChange } from './diff';
import { BASE_EXTENSION, type BaseRecord } from './types';
import { UpstreamLog, type UpstreamObservation } from './upstream-state';

/*
 * Upstream drift: is the tag an image was built FROM still the content it was built on? Checked on a schedule for
 * every distinct upstream base reference in use, as cheaply as the registries allow: Docker Hub counts manifest
 * GETs (not HEADs) against its pull rate limit, so an unchanged tag costs exactly one HEAD, and a moved tag one
 * HEAD and one GET of its index. Images are compared per platform: a republished tag whose only change is a
 * platform none of our images uses updates the state silently.
 */

/** The platform key of a tag that is a single manifest rather than an index: it applies to every platform. */
export const ANY_PLATFORM = '*';

/** An image in the vault built on an upstream base, for one platform. */
export interface BaseUser {
  repository: string;
  /** The image's (top-level) digest in the vault. */
  digest: string;
  platform: string;
  /** The base's index digest when known, else its platform manifest digest: what the tag pointed at. */
  baseDigest: string;
  /** The base's platform manifest the image was built on. */
  baseManifest: string;
}

export interface AffectedImage {
  repository: string;
  digest: string;
  /** The tags whose latest push in the vault is this digest (empty: only older pushes, or never tagged). */
  tags: string[];
  /** The platforms of the image built on a base that is no longer the tag's. */
  platforms: string[];
}

export interface PlatformMove {
  platform: string;
  oldManifest: string;
  /** Undefined when the tag no longer offers this platform at all. */
  newManifest?: string;
}

/** The tag moved under images built on it: the finding behind an `upstream-moved` alert. */
export interface UpstreamMoved {
  reference: string;
  oldDigest: string;
  newDigest: string;
  platforms: PlatformMove[];
  affected: AffectedImage[];
  /** Per moved platform: the base's layers and history, old vs new (absent where either side can't be read). */
  diff?: UpstreamDiff[];
  detectedAt: string;
}

/** What changed in the base on one platform: layer positions by diff_id, and `created_by` lines (diffLines). */
export interface UpstreamDiff {
  platform: string;
  layers: LayerChange[];
  history: string[];
}

export type UpstreamResult =
  | {
      status: 'current';
      reference: string;
      digest: string;
      /** True when the tag's digest changed but only on platforms no image of ours uses. */
      otherPlatformsChanged: boolean;
    }
  | {
      status: 'moved';
      reference: string;
      digest: string;
      /** One per old upstream digest that images are still built on. */
      moves: (UpstreamMoved & { alert: 'sent' | 'already-sent' | 'not-sent' })[];
    }
  | { status: 'deferred'; reference: string; reason: string }
  | { status: 'failed'; reference: string; error: string };

export interface UpstreamCheckReport {
  checkedAt: string;
  results: UpstreamResult[];
  /** Requests made to upstream registries, by kind. */
  requests: { head: number; get: number };
}

export interface UpstreamWatcherOptions {
  /** Where images, their base records and the watcher's own state live. */
  readonly vault: Vault;
  /**
   * Credentials for private upstreams, asked once per registry per run. The CLI passes docker's config; a Lambda
   * a Secrets Manager lookup.
   * @default dockerConfigCredentials()
   */
  readonly credentials?: CredentialProvider;
  /** @default false (plain HTTP only to loopback registries) */
  readonly insecure?: boolean;
  /** The registry client's retry policy; 429s wait for Retry-After (capped by maxDelayMs). @default the client's */
  readonly retry?: RetryOptions;
  /** The registry clients' request and idle timeouts. @default the clients' */
  readonly timeouts?: Timeouts;
  /**
   * Called once per new old → new transition that has affected images; the transition is recorded as alerted
   * after it resolves (a failure is retried by the next check). Without it, nothing is marked as alerted.
   */
  readonly notify?: (moved: UpstreamMoved) => Promise<void>;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * The registry clients of one check, one per upstream registry, counting every request they send: the check's
 * report says what it cost registries that limit requests.
 */
class UpstreamClients {
  private readonly clients = new Map<string, RegistryClient>();
  readonly requests = { head: 0, get: 0 };

  constructor(private readonly options: UpstreamWatcherOptions) {}

  repository(ref: Reference) {
    return this.get(ref.registry).repository(ref.repository);
  }

  get(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      const { credentials, insecure, retry, timeouts } = this.options;
      c = new RegistryClient(registry, {
        credentials: credentials ?? dockerConfigCredentials(),
        insecure,
        retry,
        ...timeouts,
        onRequest: ({ method }) => {
          if (method === 'HEAD') this.requests.head++;
          else if (method === 'GET') this.requests.get++;
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

/** Platform → manifest digest of an index; `*` → the digest itself for a single manifest. */
function platformsOf(bytes: Buffer, mediaType: string | undefined, digest: string): Record<string, string> {
  const node = parseManifest(bytes, mediaType && isManifest(mediaType) ? mediaType : undefined);
  if (node.kind === 'manifest') return { [ANY_PLATFORM]: digest };
  const out: Record<string, string> = {};
  for (const m of node.index.manifests) {
    // Attestation manifests (BuildKit's unknown/unknown) and non-image entries are not platforms anyone runs.
    if (!m.platform || m.platform.os === 'unknown') continue;
    const p = platformString(m.platform);
    out[p] ??= m.digest;
  }
  return out;
}

/**
 * Every upstream base reference in use (`extensions.base`, every level of every chain), with the images built on
 * it. In use means a tag's latest push: an image a tag has moved away from (the app rebuilt on the new base) or
 * that was only ever pushed by digest is history, and must not keep a drift open forever.
 */
export async function baseUsers(vault: Vault): Promise<Map<string, BaseUser[]>> {
  const out = new Map<string, BaseUser[]>();
  for (const repository of await vault.repositories()) {
    const current = new Set<string>();
    for (const tag of await vault.tags(repository)) {
      const last = await vault.latest(repository, tag);
      if (last?.action === 'push') current.add(last.descriptor.digest); // a deleted tag is not in use
    }
    for (const record of await vault.images(repository)) {
      if (!current.has(record.descriptor.digest)) continue;
      const base = record.extensions[BASE_EXTENSION] as BaseRecord | undefined;
      for (const p of base?.platforms ?? []) {
        for (const b of p.chain ?? []) {
          if (!b.reference) continue;
          let ref: Reference;
          try {
            ref = Reference.parse(b.reference);
          } catch {
            continue; // a record we cannot read names nothing we could check
          }
          if (!ref.tag) continue; // pinned by digest: cannot drift
          const key = ref.withTag(ref.tag).toString();
          const users = out.get(key) ?? [];
          users.push({
            repository,
            digest: record.descriptor.digest,
            platform: p.platform,
            baseDigest: b.indexDigest ?? b.manifestDigest,
            baseManifest: b.manifestDigest,
          });
          out.set(key, users);
        }
      }
    }
  }
  return out;
}

/** Checks upstream base tags against what the vault's images were built on. */
export class UpstreamWatcher {
  private readonly state: UpstreamLog;
  private readonly now: () => Date;

  constructor(private readonly options: UpstreamWatcherOptions) {
    this.state = new UpstreamLog(options.vault.store);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * One pass over `references` (default: every upstream base in use), in sorted order. A registry that says its
   * rate limit is used up (`ratelimit-remaining: 0`), or still answers 429 after the client's backoff, is not
   * asked again this run: its remaining references are reported as deferred.
   */
  async check(options: { references?: readonly string[] } = {}): Promise<UpstreamCheckReport> {
    const checkedAt = this.now().toISOString();
    const users = await baseUsers(this.options.vault);
    const references = options.references
      ? [...new Set(options.references.map(normalise))]
      : [...users.keys()];
    references.sort();
    const clients = new UpstreamClients(this.options);
    const exhausted = new Map<string, string>();
    const results: UpstreamResult[] = [];
    try {
      for (const reference of references) {
        const ref = Reference.parse(reference);
        const stop = exhausted.get(ref.registry);
        if (stop) {
          results.push({ status: 'deferred', reference, reason: stop });
          continue;
        }
        try {
          results.push(await this.checkOne(ref, users.get(reference) ?? [], clients, exhausted));
        } catch (e) {
          const reason = deferReason(e);
          if (reason) {
            exhausted.set(ref.registry, reason);
            results.push({ status: 'deferred', reference, reason });
          } else {
            results.push({ status: 'failed', reference, error: (e as Error).message });
          }
        }
      }
    } finally {
      await clients.close();
    }
    return { checkedAt, results, requests: { ...clients.requests } };
  }

  private async checkOne(
    ref: Reference,
    users: BaseUser[],
    clients: UpstreamClients,
    exhausted: Map<string, string>,
  ): Promise<UpstreamResult> {
    const reference = ref.toString();
    const last = await this.state.latest(reference);
    const repo = clients.repository(ref);
    const head = await repo.head(ref.tag!);
    if (head.rateLimit.remaining === 0) {
      exhausted.set(
        ref.registry,
        `${ref.registry} rate limit used up (ratelimit-remaining: 0); checked again on the next run`,
      );
    }
    const digest = head.digest;
    const observedAt = this.now().toISOString();

    // What the tag's digest means per platform: remembered, or not needed (every image is built on exactly this
    // digest), or fetched once.
    let platforms = last?.digest === digest ? last.platforms : undefined;
    const needed = users.some((u) => u.baseDigest !== digest);
    if (!platforms && needed) {
      // The GET that learnt the digest already holds the bytes; otherwise the manifest is read once, by digest.
      const { bytes, descriptor } =
        head.via === 'get' ? { bytes: head.bytes, descriptor: head } : await repo.fetchManifest(digest);
      platforms = platformsOf(bytes, descriptor.mediaType, digest);
    }
    if (last?.digest !== digest || (platforms && !last.platforms)) {
      const obs: UpstreamObservation = {
        reference,
        digest,
        ...(head.mediaType ? { mediaType: head.mediaType } : {}),
        ...(platforms ? { platforms } : {}),
        observedAt,
        via: head.via,
      };
      await this.state.record(obs);
    }

    const stale = platforms ? users.filter((u) => !builtOnCurrent(u, digest, platforms)) : [];
    if (stale.length === 0) {
      return {
        status: 'current',
        reference,
        digest,
        otherPlatformsChanged: users.some((u) => u.baseDigest !== digest),
      };
    }
    const moves: (UpstreamMoved & { alert: 'sent' | 'already-sent' | 'not-sent' })[] = [];
    for (const [oldDigest, group] of groupBy(stale, (u) => u.baseDigest)) {
      const moved: UpstreamMoved = {
        reference,
        oldDigest,
        newDigest: digest,
        platforms: platformMoves(group, platforms!),
        affected: await this.affected(group),
        detectedAt: observedAt,
      };
      // The diff costs a manifest and a config GET per side and platform: only for a transition not yet alerted,
      // and only once — it is kept, and read back on the next check while the drift persists.
      if (!(await this.state.alerted(reference, oldDigest, digest))) {
        let diff = await this.state.keptDiff<UpstreamDiff[]>(reference, oldDigest, digest);
        if (!diff) {
          diff = await this.diffFor(ref, moved.platforms, clients);
          await this.state.keepDiff(reference, oldDigest, digest, diff);
        }
        moved.diff = diff;
      }
      moves.push({ ...moved, alert: await this.alertOnce(moved) });
    }
    return { status: 'moved', reference, digest, moves };
  }

  /**
   * Old vs new base content per moved platform, read from the vault first (a snapshotted base) and the upstream
   * registry by digest second. The old content may be gone upstream: that platform then has no diff.
   */
  private async diffFor(
    ref: Reference,
    moves: PlatformMove[],
    clients: UpstreamClients,
  ): Promise<UpstreamDiff[]> {
    // The check's clients: what the registry is asked counts in its requests (the vault is asked first).
    const source = new VaultFirstSource(this.options.vault, new RegistrySource(clients));
    const side = async (digest: string) => {
      const node = parseManifest(await source.manifest(ref, digest), undefined);
      if (node.kind !== 'manifest') throw new Error(`${digest} is not an image manifest`);
      const config = parseImageConfig(await source.blob(ref, node.manifest.config));
      return { layers: layerInfos(node.manifest, config), history: createdBy(config.history ?? []) };
    };
    const out: UpstreamDiff[] = [];
    for (const m of moves) {
      if (!m.newManifest) continue;
      try {
        const [old, now] = await Promise.all([side(m.oldManifest), side(m.newManifest)]);
        out.push({
          platform: m.platform,
          layers: diffLayers(old.layers, now.layers),
          history: diffLines(old.history, now.history),
        });
      } catch {
        // unreadable side: the alert says the diff is not available for this platform
      }
    }
    return out;
  }

  private async alertOnce(moved: UpstreamMoved): Promise<'sent' | 'already-sent' | 'not-sent'> {
    const { notify } = this.options;
    if (await this.state.alerted(moved.reference, moved.oldDigest, moved.newDigest)) return 'already-sent';
    if (!notify) return 'not-sent';
    await notify(moved);
    await this.state.markAlerted({
      reference: moved.reference,
      oldDigest: moved.oldDigest,
      newDigest: moved.newDigest,
      alertedAt: this.now().toISOString(),
    });
    return 'sent';
  }

  /** The images of a group, with the tags whose latest push is that image. */
  private async affected(users: BaseUser[]): Promise<AffectedImage[]> {
    const vault = this.options.vault;
    const out: AffectedImage[] = [];
    for (const group of groupBy(users, (u) => `${u.repository}@${u.digest}`).values()) {
      const { repository, digest } = group[0];
      const tags: string[] = [];
      for (const tag of await vault.tags(repository)) {
        const latest = await vault.latest(repository, tag, { action: 'push' });
        if (latest?.descriptor.digest === digest) tags.push(tag);
      }
      out.push({
        repository,
        digest,
        tags: tags.sort(),
        platforms: [...new Set(group.map((u) => u.platform))].sort(),
      });
    }
    return out.sort((a, b) => a.repository.localeCompare(b.repository) || a.digest.localeCompare(b.digest));
  }
}

function builtOnCurrent(u: BaseUser, digest: string, platforms: Record<string, string>): boolean {
  if (u.baseDigest === digest) return true;
  const now = platforms[u.platform] ?? platforms[ANY_PLATFORM];
  return now === u.baseManifest;
}

function platformMoves(users: BaseUser[], platforms: Record<string, string>): PlatformMove[] {
  const out = new Map<string, PlatformMove>();
  for (const u of users) {
    const newManifest = platforms[u.platform] ?? platforms[ANY_PLATFORM];
    out.set(`${u.platform} ${u.baseManifest}`, {
      platform: u.platform,
      oldManifest: u.baseManifest,
      ...(newManifest ? { newManifest } : {}),
    });
  }
  return [...out.values()].sort((a, b) => a.platform.localeCompare(b.platform));
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    out.set(k, [...(out.get(k) ?? []), item]);
  }
  return out;
}

/** `ruby:2.7` → `docker.io/library/ruby:2.7`; a reference must name a tag (a digest cannot move). */
function normalise(reference: string): string {
  const ref = Reference.parse(reference);
  if (!ref.tag || ref.digest)
    throw new TypeError(`upstream reference ${reference} must be a tag, not a digest`);
  return ref.toString();
}

/** Why a failure means "try again next run" rather than "broken": rate limiting after the backoff. */
export function deferReason(e: unknown): string | undefined {
  if (e instanceof RegistryError && (e.status === 429 || e.code() === 'TOOMANYREQUESTS')) {
    return `${e.message}: rate limited after the client's backoff; checked again on the next run`;
  }
  return undefined;
}
