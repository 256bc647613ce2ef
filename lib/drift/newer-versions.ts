import type { Timeouts } from '../content/timeouts';
import type { Vault } from '../content/vault';
import { Reference } from '../oci';
import type { CredentialProvider, RetryOptions } from '../registry';
import { TagLister, type TagListerRequests } from './tag-lister';
import { ANY_PLATFORM, baseUsers, deferReason, type BaseUser } from './upstream';
import { TagListCache, fresh, type TagList, type TagPlatforms } from './version-cache';
import { VERSION_WATCH_DEFAULTS, settingsFor, type VersionWatchRules } from './version-rules';
import { newerVersions, parseVersionTag, type NewerVersion } from './versions';

/*
 * Newer versions of the bases in use: for each upstream base tag the vault's images are built on, the newest
 * patch, minor and major releases beyond it (lib/drift/versions.ts), and whether each carries the platforms those
 * images run on. Cheap by construction: an upstream repository's tags are listed at most once per interval (default
 * daily) and kept in the vault (lib/drift/version-cache.ts); a candidate's platforms cost one GET of its index, kept
 * the same way. Inside the interval a check asks upstream nothing. Rate limits are honoured as the upstream check
 * honours them: a registry that says `ratelimit-remaining: 0`, or still answers 429 after the transport's backoff,
 * is not asked again in this check, and what it would have answered is reported as deferred (from the last
 * listing, when there is one).
 */

/** Whether a newer version offers the platforms our images are built for. */
export interface CandidatePlatforms {
  /** The tag's digest when its platforms were read. */
  digest: string;
  /** `os/arch[/variant]` it offers. */
  offered: string[];
  /** Platforms our images use that it does not offer: moving to it would drop them. */
  missing: string[];
  checkedAt: string;
}

export type NewerCandidate = NewerVersion & {
  platforms?: CandidatePlatforms;
  /** Why the platforms are not known (rate limited, unreadable). */
  platformsUnknown?: string;
};

export interface NewerVersionsResult {
  /** The base tag in use, e.g. `docker.io/library/ruby:2.7`. */
  reference: string;
  /**
   * `checked`: compared against a listing of this interval; `unversioned`: the tag is no version (`latest`);
   * `not-watched`: no rule watches its repository; `deferred`: rate limited, compared against the last listing if
   * there is one; `failed`: the listing failed, likewise.
   */
  status: 'checked' | 'unversioned' | 'not-watched' | 'deferred' | 'failed';
  /** Where a moving tag stands now: the newest release inside its line (`2.7.8` for `2.7`). */
  current?: string;
  /** Patch, minor, major, variant: at most one of each. */
  newer: NewerCandidate[];
  /** The platforms of the images built on it. */
  platforms: string[];
  /** The vault repositories with images built on it. */
  repositories: string[];
  /** When the tag list compared against was read, and how many tags it had. */
  listedAt?: string;
  tags?: number;
  /** Why it was deferred or failed. */
  reason?: string;
}

export interface NewerVersionsReport {
  checkedAt: string;
  results: NewerVersionsResult[];
  /** Requests made to upstream registries in this check. */
  requests: TagListerRequests;
}

export interface NewerVersionsOptions {
  readonly vault: Vault;
  /** Which upstream repositories are watched, per vault repository prefix. @default every one, daily */
  readonly rules?: VersionWatchRules;
  /** @default dockerConfigCredentials() */
  readonly credentials?: CredentialProvider;
  /** @default false */
  readonly insecure?: boolean;
  readonly retry?: RetryOptions;
  readonly timeouts?: Timeouts;
  /** Tags per listing request. @default 1000 */
  readonly pageSize?: number;
  /**
   * Keep fresh listings and platforms in the vault. Off for readers (`imagevault base`), who use what the
   * scheduled check keeps and list on their own when it is stale. @default true
   */
  readonly persist?: boolean;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/** The newer-versions check over the vault's bases. */
export class NewerVersionsCheck {
  private readonly cache: TagListCache;
  private readonly now: () => Date;

  constructor(private readonly options: NewerVersionsOptions) {
    this.cache = new TagListCache(options.vault.store);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * One pass over `references` (default: every upstream base tag in use). `platforms` adds platforms a reference
   * must offer beyond those of the vault's images built on it (`imagevault base` for an image not in the vault).
   */
  async check(
    options: {
      references?: readonly string[];
      platforms?: Readonly<Record<string, readonly string[]>>;
      /**
       * Read which vault images use each base (their platforms and repositories, and so the rules that apply);
       * off, only `platforms` and the rule for every repository (`""`) count: one image's view, without a walk of
       * the whole vault. @default true
       */
      inUse?: boolean;
    } = {},
  ): Promise<NewerVersionsReport> {
    const now = this.now();
    const checkedAt = now.toISOString();
    const users =
      options.inUse === false ? new Map<string, BaseUser[]>() : await baseUsers(this.options.vault);
    const references = options.references
      ? [...new Set(options.references.map((r) => Reference.parse(r).toString()))]
      : [...users.keys()];
    const byRepository = new Map<string, string[]>();
    for (const reference of references.sort()) {
      const ref = Reference.parse(reference);
      if (!ref.tag) continue; // pinned by digest: no tag to compare
      const repository = `${ref.registry}/${ref.repository}`;
      byRepository.set(repository, [...(byRepository.get(repository) ?? []), reference]);
    }
    const lister = new TagLister({
      credentials: this.options.credentials,
      insecure: this.options.insecure,
      retry: this.options.retry,
      timeouts: this.options.timeouts,
      pageSize: this.options.pageSize,
    });
    const exhausted = new Map<string, string>();
    const results: NewerVersionsResult[] = [];
    try {
      for (const [repository, refs] of byRepository) {
        const usersOf = (r: string) => users.get(r) ?? [];
        const platformsOf = (r: string) =>
          [...new Set([...usersOf(r).map((u) => u.platform), ...(options.platforms?.[r] ?? [])])].sort();
        const repositoriesOf = (r: string) => [...new Set(usersOf(r).map((u) => u.repository))].sort();
        const using = refs.flatMap(repositoriesOf);
        // A reference asked for by name that no image uses gets the rule for every repository.
        const settings = settingsFor(
          this.options.rules ?? VERSION_WATCH_DEFAULTS.rules,
          repository,
          using.length > 0 ? using : [''],
        );
        const base = (reference: string) => ({
          reference,
          newer: [],
          platforms: platformsOf(reference),
          repositories: repositoriesOf(reference),
        });
        if (!settings) {
          for (const reference of refs) results.push({ ...base(reference), status: 'not-watched' });
          continue;
        }
        // `latest`, `edge`: nothing to compare, so nothing to list.
        const versioned = refs.filter((r) => parseVersionTag(Reference.parse(r).tag!, settings));
        if (versioned.length === 0) {
          for (const reference of refs) results.push({ ...base(reference), status: 'unversioned' });
          continue;
        }
        const listing = await this.listing(repository, settings.intervalHours, lister, exhausted, now);
        const list = listing.list;
        let dirty = listing.dirty;
        for (const reference of refs) {
          const tag = Reference.parse(reference).tag!;
          if (!list) {
            results.push({ ...base(reference), status: listing.status, reason: listing.reason });
            continue;
          }
          const finding = newerVersions(tag, list.tags, settings);
          const status = !finding.inUse ? 'unversioned' : listing.status;
          const newer: NewerCandidate[] = [];
          for (const n of finding.newer) {
            const before = list.platforms[n.tag];
            const known = await this.platforms(list, n.tag, settings.intervalHours, lister, exhausted, now);
            if (list.platforms[n.tag] !== before) dirty = true;
            if ('unknown' in known) {
              newer.push({ ...n, platformsUnknown: known.unknown });
              continue;
            }
            const needed = platformsOf(reference);
            newer.push({
              ...n,
              platforms: {
                digest: known.digest,
                offered: known.platforms,
                missing: needed.filter((p) => p !== ANY_PLATFORM && !offers(known.platforms, p)),
                checkedAt: known.checkedAt,
              },
            });
          }
          results.push({
            ...base(reference),
            status,
            ...(finding.current ? { current: finding.current } : {}),
            newer,
            listedAt: list.listedAt,
            tags: list.tags.length,
            ...(listing.reason ? { reason: listing.reason } : {}),
          });
        }
        if (dirty && list && this.options.persist !== false) await this.cache.put(list);
      }
    } finally {
      await lister.close();
    }
    return { checkedAt, results, requests: { ...lister.requests } };
  }

  /** The repository's tag list: the kept one while fresh, else listed now (unless the registry is exhausted). */
  private async listing(
    repository: string,
    intervalHours: number,
    lister: TagLister,
    exhausted: Map<string, string>,
    now: Date,
  ): Promise<{ list?: TagList; status: 'checked' | 'deferred' | 'failed'; reason?: string; dirty: boolean }> {
    const registry = repository.slice(0, repository.indexOf('/'));
    const kept = await this.cache.get(repository);
    if (kept && fresh(kept.listedAt, intervalHours, now))
      return { list: kept, status: 'checked', dirty: false };
    const stop = exhausted.get(registry);
    if (stop) return { list: kept, status: 'deferred', reason: stop, dirty: false };
    try {
      const { tags, pages } = await lister.tags(repository);
      // Platforms read inside the interval stay: a candidate's index is not asked twice a day.
      const platforms = Object.fromEntries(
        Object.entries(kept?.platforms ?? {}).filter(([, p]) => fresh(p.checkedAt, intervalHours, now)),
      );
      return {
        list: { repository, listedAt: now.toISOString(), pages, tags, platforms },
        status: 'checked',
        dirty: true,
      };
    } catch (e) {
      const reason = deferReason(e);
      if (reason) {
        exhausted.set(registry, reason);
        return { list: kept, status: 'deferred', reason, dirty: false };
      }
      return { list: kept, status: 'failed', reason: (e as Error).message, dirty: false };
    } finally {
      if (lister.rateLimitRemaining(registry) === 0 && !exhausted.has(registry))
        exhausted.set(registry, rateLimitUsedUp(registry));
    }
  }

  /** A candidate's platforms: kept while fresh, else one GET of its index (unless the registry is exhausted). */
  private async platforms(
    list: TagList,
    tag: string,
    intervalHours: number,
    lister: TagLister,
    exhausted: Map<string, string>,
    now: Date,
  ): Promise<TagPlatforms | { unknown: string }> {
    const kept = list.platforms[tag];
    if (kept && fresh(kept.checkedAt, intervalHours, now)) return kept;
    const registry = list.repository.slice(0, list.repository.indexOf('/'));
    const stop = exhausted.get(registry);
    if (stop) return kept ?? { unknown: stop };
    try {
      const { digest, platforms } = await lister.platforms(list.repository, tag);
      const entry = { digest, platforms, checkedAt: now.toISOString() };
      list.platforms[tag] = entry;
      return entry;
    } catch (e) {
      const reason = deferReason(e);
      if (reason) exhausted.set(registry, reason);
      return kept ?? { unknown: reason ?? (e as Error).message };
    } finally {
      if (lister.rateLimitRemaining(registry) === 0 && !exhausted.has(registry))
        exhausted.set(registry, rateLimitUsedUp(registry));
    }
  }
}

const rateLimitUsedUp = (registry: string) =>
  `${registry} rate limit used up (ratelimit-remaining: 0); checked again on the next run`;

/** `linux/arm64` is offered by `linux/arm64/v8` and the other way round: v8 is arm64's only variant in use. */
function offers(offered: readonly string[], platform: string): boolean {
  const norm = (p: string) => p.replace(/^(linux\/arm64)\/v8$/, '$1');
  return offered.some((o) => norm(o) === norm(platform));
}
