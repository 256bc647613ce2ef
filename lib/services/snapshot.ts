import { copyGraph, type CopyEvent, type CopySummary } from '../copy';
import {
  WriteSession,
  WriteSessionError,
  type ImageRecord,
  type Source,
  type TagObservation,
  type Vault,
} from '../content';
import { BASE_EXTENSION, type BaseRecord } from '../drift/types';
import { Reference, type Descriptor } from '../oci';
import type { Registries, Repository } from '../registry';
import { followMovedTag, recordObservation } from './tag-history';

/** The image just copied, as the snapshot hooks see it. */
export interface SnapshotImage {
  /** Pinned: the registry's name for the image, with its digest. */
  readonly reference: Reference;
  readonly repository: string;
  /** The tag the snapshot was asked by (its history is not yet updated with this push). */
  readonly tag?: string;
  readonly descriptor: Descriptor;
}

export interface SnapshotOptions {
  readonly concurrency?: number;
  readonly onEvent?: (ref: Reference, event: CopyEvent) => void;
  /**
   * Finds what the image is built on, after the copy and before the record is written; the result is stored in
   * the record's `extensions.base` (see lib/drift/base.ts snapshotBaseDetector). A failure does not fail the
   * snapshot: it is reported in SnapshotResult.baseError and the record keeps any base it had. @default none
   */
  readonly detectBase?: (image: SnapshotImage) => Promise<BaseRecord | undefined>;
  /**
   * The longest one image's snapshot may take from start to record (the garbage collection protocol: past it, the
   * snapshot records nothing). @default 12 hours (lib/content/gc-protocol.ts)
   */
  readonly sessionMaxMs?: number;
}

export interface SnapshotRequest {
  readonly reference: Reference;
  /**
   * For a reference by digest: the tag to record at that digest (an event says which tag was pushed). A reference
   * by tag records the tag it resolved. @default none
   */
  readonly tag?: string;
  /**
   * Where the request came from, kept in the history. A source with an `id` (an event) is recorded once per event
   * (see recordObservation). @default { kind: 'cli' }
   */
  readonly source?: Source;
  /** When the tag was seen pointing at the digest (an event's time). @default when the snapshot resolved the tag */
  readonly observedAt?: string;
}

export interface SnapshotResult {
  reference: string;
  repository: string;
  tag?: string;
  descriptor: Descriptor;
  copy: CopySummary;
  /** The history entry appended, if any. */
  observation?: TagObservation;
  /**
   * When the tag had moved on while this snapshot copied (to an image the vault already holds), the entry saying
   * where it pointed when this snapshot looked again, so the history does not end on a digest the tag has left.
   */
  movedOn?: TagObservation;
  /** The image record as written. */
  record?: ImageRecord;
  /** Why base detection failed, when it did (the snapshot itself succeeded). */
  baseError?: string;
}

/** A repository or tag that a registry listed but that cannot be snapshotted, and why. */
export interface SkippedName {
  registry: string;
  /** The repository, or `repository:tag`, as the registry listed it. */
  name: string;
  reason: string;
}

/** What a snapshot spec names: the images, and what the listings named that could not be taken. */
export interface Expansion {
  targets: Reference[];
  skipped: SkippedName[];
}

/**
 * Snapshot: registry → vault, always by digest. The tag is resolved once, the graph copied, and only then the
 * record and the history written, so the vault never names an image it does not wholly hold.
 */
export class Snapshotter {
  constructor(
    private readonly vault: Vault,
    private readonly registries: Registries,
    private readonly options: SnapshotOptions = {},
  ) {}

  async snapshot(request: SnapshotRequest): Promise<SnapshotResult> {
    const ref = request.reference;
    const repo = this.registries.get(ref.registry).repository(ref.repository);
    // A session tells a concurrent garbage collection that a writer may be about to name blobs it found stored. It
    // is written while the tag is resolved (a round trip each): begun earlier than needed is only more cautious.
    const starting = WriteSession.begin(this.vault, { maxMs: this.options.sessionMaxMs });
    let descriptor: Descriptor;
    try {
      descriptor = await repo.resolve(ref.reference ?? 'latest');
    } catch (e) {
      await starting.then((s) => s.end()).catch(() => undefined);
      throw e;
    }
    // When the tag was seen pointing at this digest: the observation's time, not when the copy ends. Two snapshots
    // of a moving tag that overlap (a big image resolved first, finished last) are then ordered as the tag moved.
    const resolvedAt = new Date().toISOString();
    const session = await starting;
    try {
      return await this.snapshotIn(session, request, repo, descriptor, resolvedAt);
    } finally {
      await session.end().catch(() => undefined);
    }
  }

  private async snapshotIn(
    session: WriteSession,
    request: SnapshotRequest,
    repo: Repository,
    descriptor: Descriptor,
    resolvedAt: string,
  ): Promise<SnapshotResult> {
    const ref = request.reference;
    const pinned = ref.withDigest(descriptor.digest);
    const copyOnce = () =>
      copyGraph(repo, this.vault, descriptor, {
        concurrency: this.options.concurrency,
        label: pinned.toString(),
        onEvent: this.options.onEvent && ((e) => this.options.onEvent!(ref, e)),
      });
    const copy = await copyOnce();
    const now = new Date().toISOString();
    // The tag the snapshot resolved; base detection is told only that one (by digest, it looks at the repository's
    // last snapshot rather than the event's tag history, as it always has).
    const resolvedTag = ref.digest ? undefined : (ref.tag ?? 'latest');
    const tag = resolvedTag ?? request.tag;
    let base: BaseRecord | undefined;
    let baseError: string | undefined;
    if (this.options.detectBase) {
      try {
        base = await this.options.detectBase({
          reference: pinned,
          repository: ref.repository,
          tag: resolvedTag,
          descriptor,
        });
      } catch (e) {
        baseError = (e as Error).message;
      }
    }
    // Last before the record: a sweep that deleted blobs this copy found stored makes it copy what is missing again
    // (the copy skips what is there).
    for (let attempt = 1; ; attempt++) {
      const lost = await session.beforeCommit(pinned.toString(), descriptor);
      if (lost.length === 0) break;
      if (attempt >= 3)
        throw new WriteSessionError(
          `${pinned.toString()}: garbage collection kept deleting its content; not recorded`,
        );
      await copyOnce();
    }
    const record = await this.recordImage(ref.repository, descriptor, copy, now, base);
    const observation = tag
      ? await recordObservation(this.vault, {
          repository: ref.repository,
          tag,
          action: 'push',
          descriptor,
          observedAt: request.observedAt ?? resolvedAt,
          source: request.source ?? { kind: 'cli', detail: ref.toString() },
        })
      : undefined;
    // Only a tag this snapshot resolved itself can have moved on while it copied; an event's tag is what was pushed.
    const movedOn =
      resolvedTag && observation ? await followMovedTag(this.vault, repo, observation) : undefined;
    return {
      reference: pinned.toString(),
      repository: ref.repository,
      tag,
      descriptor,
      copy,
      observation,
      ...(movedOn ? { movedOn } : {}),
      ...(this.options.detectBase ? { record } : {}),
      ...(baseError !== undefined ? { baseError } : {}),
    };
  }

  private async recordImage(
    repository: string,
    descriptor: Descriptor,
    copy: CopySummary,
    now: string,
    base?: BaseRecord,
  ): Promise<ImageRecord> {
    const previous = await this.vault.image(repository, descriptor.digest);
    const referrers = new Map<string, Descriptor>();
    for (const r of [...(previous?.referrers ?? []), ...copy.referrers]) referrers.set(r.digest, r);
    const record: ImageRecord = {
      repository,
      descriptor,
      firstSnapshotAt: previous?.firstSnapshotAt ?? now,
      lastSnapshotAt: now,
      blobs: copy.blobs.copied + copy.blobs.skipped + copy.blobs.mounted,
      bytes: copy.bytes.copied + copy.bytes.skipped,
      referrers: [...referrers.values()],
      extensions: { ...previous?.extensions, ...(base ? { [BASE_EXTENSION]: base } : {}) },
    };
    await this.vault.putImage(record);
    return record;
  }

  /**
   * Expands what a user names into images: `repo:tag` and `repo@digest` as they are; a bare repository means its
   * `latest` unless `allTags`; a name ending in `/` or `*` is a prefix of repositories (from the catalog).
   */
  async expand(spec: string, allTags: boolean): Promise<Expansion> {
    const skipped: SkippedName[] = [];
    if (spec.endsWith('*') || spec.endsWith('/')) {
      const stripped = spec.replace(/[*/]+$/, '');
      // `HOST/` or `HOST/*` is the whole registry; `HOST/team/` every repository under team/.
      const whole = !stripped.includes('/');
      const base = whole ? undefined : Reference.parse(stripped);
      const registry = base?.registry ?? stripped;
      const wanted = base?.repository ?? '';
      const targets: Reference[] = [];
      for await (const name of this.registries.get(registry).catalog()) {
        const match =
          whole ||
          name === wanted ||
          name.startsWith(`${wanted}/`) ||
          (spec.endsWith('*') && name.startsWith(wanted));
        if (!match) continue;
        // One repository the catalog names but we cannot take (a bad name, tags we cannot list) is reported and
        // skipped: the rest of the prefix is still protected.
        try {
          targets.push(...(await this.expandRepository(Reference.of(registry, name), true, skipped)));
        } catch (e) {
          skipped.push({ registry, name, reason: (e as Error).message });
        }
      }
      return { targets, skipped };
    }
    const ref = Reference.parse(spec);
    if (ref.reference) return { targets: [ref], skipped };
    const targets = allTags ? await this.expandRepository(ref, true, skipped) : [ref.withTag('latest')];
    return { targets, skipped };
  }

  private async expandRepository(
    ref: Reference,
    allTags: boolean,
    skipped: SkippedName[],
  ): Promise<Reference[]> {
    if (!allTags) return [ref.withTag('latest')];
    const out: Reference[] = [];
    for await (const tag of this.registries.get(ref.registry).repository(ref.repository).tags()) {
      // Referrers fallback tags (sha256-<hex>) are copied as referrers of their subject, not as images.
      if (/^sha(256|512)-[a-f0-9]+$/.test(tag)) continue;
      try {
        out.push(ref.withTag(tag));
      } catch (e) {
        skipped.push({
          registry: ref.registry,
          name: `${ref.repository}:${tag}`,
          reason: (e as Error).message,
        });
      }
    }
    return out;
  }
}
