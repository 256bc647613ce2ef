import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as z from 'zod';
import {
  Digest,
  DescriptorSchema,
  parseManifest,
  referrerDescriptor,
  subjectOf,
  validateRepository,
  validateTag,
  type Descriptor,
} from '../oci';
import { REFERRERS_PREFIX, REPOSITORIES_PREFIX } from './keys';
import { OciLayout, REF_NAME } from './layout';
import { canSweepLeftovers, ObjectExistsError, type Leftover, type ObjectStore } from './objectstore';
import type { ReferrerLister, Storage } from './storage';

/* Key layout: ./keys.ts. */
export const REPOSITORY_ANNOTATION = 'io.imagevault.repository';

const repoPrefix = (repository: string) => `${REPOSITORIES_PREFIX}${repository}/`;
const tagPrefix = (repository: string, tag: string) => `${repoPrefix(repository)}_tags/${tag}/`;
/** Where the record of (repository, digest) lives; provenance records name it. */
export const imageKey = (repository: string, digest: string) => {
  const d = Digest.parse(digest);
  return `${repoPrefix(repository)}_images/${d.algorithm}/${d.hex}.json`;
};
const referrersPrefix = (subject: string) => {
  const d = Digest.parse(subject);
  return `${REFERRERS_PREFIX}${d.algorithm}/${d.hex}/`;
};

/** Where an observation came from: the CLI, an ECR push event, a reconcile pass. */
export const SourceSchema = z.object({
  kind: z.string(),
  id: z.string().optional(),
  detail: z.string().optional(),
});
export type Source = z.infer<typeof SourceSchema>;

/** One observation of a tag pointing at a digest (or being deleted). Appended, never overwritten. */
export const TagObservationSchema = z.object({
  repository: z.string(),
  tag: z.string(),
  action: z.enum(['push', 'delete']),
  descriptor: DescriptorSchema,
  observedAt: z.string(),
  recordedAt: z.string(),
  source: SourceSchema,
});
export type TagObservation = z.infer<typeof TagObservationSchema>;

/**
 * What the vault knows of one (repository, digest). Later capabilities (base image, provenance) add their parts
 * under `extensions`, keyed by capability, so this record's shape stays stable.
 */
export const ImageRecordSchema = z.object({
  repository: z.string(),
  descriptor: DescriptorSchema,
  firstSnapshotAt: z.string(),
  lastSnapshotAt: z.string(),
  blobs: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  referrers: z.array(DescriptorSchema),
  extensions: z.record(z.string(), z.unknown()).default({}),
});
export type ImageRecord = z.infer<typeof ImageRecordSchema>;

export class VaultError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VaultError';
  }
}

/** Thrown when a tag, digest or time asked for has no snapshot. */
export class NotInVaultError extends VaultError {
  constructor(message: string) {
    super(message);
    this.name = 'NotInVaultError';
  }
}

/** Key-safe, sortable time: 20261123T134500123Z. */
function timeKey(iso: string): string {
  return iso.replace(/[-:]/g, '').replace('.', '');
}

/**
 * The snapshot store: content-addressed blobs shared by every repository (a layer used by 50 images is stored
 * once), an append-only history of tags, per-image records and a referrers index, all on one ObjectStore.
 */
export class Vault implements Storage, ReferrerLister {
  readonly layout: OciLayout;
  /**
   * Tag history entries already read or written, by key. An entry is written once under a unique key and never
   * changed, so its bytes are read once per Vault: a snapshot reads its tag's history three times (base detection,
   * recording the push, the layout index), each a GET per entry. Which entries exist is still listed every time.
   */
  private readonly historyEntries = new Map<string, Buffer>();

  constructor(readonly store: ObjectStore) {
    this.layout = new OciLayout(store);
  }

  get url(): string {
    return this.store.url;
  }

  /** Writes the OCI layout marker and index once; harmless to repeat. */
  init(): Promise<void> {
    return this.layout.init();
  }

  /**
   * What interrupted writes left behind (temporary files, unfinished multipart uploads) that is older than the
   * store's grace period — younger ones may belong to a write still under way — removed if asked. Under `prefix`
   * only, when given (`blobs/`: where the large ones are).
   */
  async leftovers(options: {
    remove: boolean;
    prefix?: string;
    graceMs?: number;
    now?: Date;
  }): Promise<Leftover[]> {
    if (!canSweepLeftovers(this.store)) return [];
    const now = options.now ?? new Date();
    const olderThan = new Date(now.getTime() - (options.graceMs ?? this.store.leftoverGraceMs));
    return this.store.leftovers({ olderThan, remove: options.remove, prefix: options.prefix });
  }

  // ---- content (the Storage side of the copy engine) ----

  exists(desc: Descriptor): Promise<boolean> {
    return this.layout.exists(desc);
  }

  fetch(desc: Descriptor): Promise<Readable> {
    return this.layout.fetch(desc);
  }

  fetchManifest(desc: Descriptor): Promise<Buffer> {
    return this.layout.fetchBytes(desc);
  }

  /** Stores content; a manifest with a `subject` is also indexed as a referrer of that subject. */
  async push(desc: Descriptor, content: Readable): Promise<void> {
    const bytes = await this.layout.pushAndRead(desc, content);
    if (!bytes) return;
    const node = parseManifest(bytes, desc.mediaType);
    const subject = subjectOf(node);
    if (!subject) return;
    const link = referrerDescriptor(desc, node);
    const d = Digest.parse(desc.digest);
    await this.store.putBytes(`${referrersPrefix(subject.digest)}${d.algorithm}-${d.hex}.json`, json(link));
  }

  async referrers(desc: Descriptor): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for await (const obj of this.store.list(referrersPrefix(desc.digest))) {
      const bytes = await this.store.getBytes(obj.key);
      if (bytes) out.push(DescriptorSchema.parse(JSON.parse(bytes.toString('utf8'))));
    }
    return out;
  }

  // ---- history ----

  /** Appends one observation. Keys are unique (time, digest, random), and written create-only. */
  async recordTag(
    obs: Omit<TagObservation, 'recordedAt'> & { recordedAt?: string },
  ): Promise<TagObservation> {
    validateRepository(obs.repository);
    validateTag(obs.tag);
    // Normalised to full ISO with milliseconds: the string order must be the time order.
    const full = TagObservationSchema.parse({
      ...obs,
      observedAt: isoTime(obs.observedAt, 'observedAt'),
      recordedAt: isoTime(obs.recordedAt ?? new Date().toISOString(), 'recordedAt'),
    });
    const d = Digest.parse(full.descriptor.digest);
    const key = `${tagPrefix(full.repository, full.tag)}${timeKey(full.observedAt)}_${d.hex.slice(0, 16)}_${randomBytes(4).toString('hex')}.json`;
    const bytes = json(full);
    try {
      await this.store.putBytes(key, bytes, { ifNoneMatch: true, contentType: 'application/json' });
      this.remember(key, bytes);
    } catch (e) {
      if (e instanceof ObjectExistsError)
        throw new VaultError(`history entry ${key} already exists; not overwritten`, { cause: e });
      throw e;
    }
    return full;
  }

  /** One history entry, parsed afresh for each caller; undefined when it is gone (removed since it was listed). */
  private async historyEntry(key: string): Promise<TagObservation | undefined> {
    let bytes = this.historyEntries.get(key);
    if (!bytes) {
      bytes = await this.store.getBytes(key);
      if (!bytes) return undefined;
      this.remember(key, bytes);
    }
    return TagObservationSchema.parse(JSON.parse(bytes.toString('utf8')));
  }

  private remember(key: string, bytes: Buffer): void {
    // Bounded for a long-lived Vault (a Lambda's): the oldest remembered goes first.
    if (this.historyEntries.size >= HISTORY_ENTRIES_KEPT)
      this.historyEntries.delete(this.historyEntries.keys().next().value!);
    this.historyEntries.set(key, bytes);
  }

  /** Every observation of a tag, oldest first (by the time it was observed, then by when it was recorded). */
  async history(repository: string, tag: string): Promise<TagObservation[]> {
    validateRepository(repository);
    validateTag(tag);
    const out: TagObservation[] = [];
    for await (const obj of this.store.list(tagPrefix(repository, tag))) {
      const entry = await this.historyEntry(obj.key);
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => cmp(a.observedAt, b.observedAt) || cmp(a.recordedAt, b.recordedAt));
  }

  /**
   * A tag's newest observation — of a push or a delete, unless `action` says which — or, with `at`, the newest
   * observed at or before that time; undefined when there is none. The one way to ask what a tag is (or was) in
   * the vault: the history's order (observation time, then record time) decides, not the order of the writes.
   */
  async latest(
    repository: string,
    tag: string,
    options: { action?: TagObservation['action']; at?: Date } = {},
  ): Promise<TagObservation | undefined> {
    const when = options.at?.getTime();
    return (await this.history(repository, tag))
      .filter(
        (o) =>
          (options.action === undefined || o.action === options.action) &&
          (when === undefined || Date.parse(o.observedAt) <= when),
      )
      .pop();
  }

  /**
   * What a tag pointed at, now or at `at`: the last push observed at or before that time. A tag whose last
   * observation is a delete still resolves to what it pointed at before — that is what a restore wants.
   */
  async resolveTag(repository: string, tag: string, at?: Date): Promise<TagObservation> {
    const all = (await this.history(repository, tag)).filter((o) => o.action === 'push');
    const when = at?.toISOString();
    const hit = when ? all.filter((o) => o.observedAt <= when).pop() : all.pop();
    if (!hit) {
      throw new NotInVaultError(
        all.length === 0
          ? `${repository}:${tag} has never been snapshotted into ${this.url}`
          : `${repository}:${tag} has no snapshot at or before ${when} (first: ${all[0].observedAt})`,
      );
    }
    return hit;
  }

  /** The descriptor of a digest snapshotted for a repository. */
  async resolveDigest(repository: string, digest: string): Promise<Descriptor> {
    const record = await this.image(repository, digest);
    if (record) return record.descriptor;
    throw new NotInVaultError(`${repository}@${digest} has no snapshot in ${this.url}`);
  }

  async tags(repository: string): Promise<string[]> {
    return this.store.listDirs(`${repoPrefix(repository)}_tags/`);
  }

  /** Every repository with a record, found by walking the tree (repository names may have many segments). */
  async repositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (path: string): Promise<void> => {
      const dirs = await this.store.listDirs(`${REPOSITORIES_PREFIX}${path}`);
      if (dirs.includes('_tags') || dirs.includes('_images')) out.push(path.replace(/\/$/, ''));
      for (const d of dirs) if (!d.startsWith('_')) await walk(`${path}${d}/`);
    };
    await walk('');
    return out.sort();
  }

  // ---- image records ----

  async image(repository: string, digest: string): Promise<ImageRecord | undefined> {
    validateRepository(repository);
    const bytes = await this.store.getBytes(imageKey(repository, digest));
    return bytes ? ImageRecordSchema.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
  }

  async images(repository: string): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for await (const obj of this.store.list(`${repoPrefix(repository)}_images/`)) {
      const bytes = await this.store.getBytes(obj.key);
      if (bytes) out.push(ImageRecordSchema.parse(JSON.parse(bytes.toString('utf8'))));
    }
    return out;
  }

  /**
   * Writes the record for (repository, digest). Replacing it is allowed (it gains referrers, extensions); on a
   * versioned bucket every earlier version stays readable.
   */
  async putImage(record: ImageRecord): Promise<void> {
    validateRepository(record.repository);
    await this.store.putBytes(
      imageKey(record.repository, record.descriptor.digest),
      json(ImageRecordSchema.parse(record)),
      {
        contentType: 'application/json',
      },
    );
  }

  // ---- the OCI layout's index.json ----

  /**
   * Rebuilds index.json from the history: one entry per repository:tag (its latest push), named
   * `<repository>:<tag>`. It is a derived view (history is the truth), so concurrent writers at worst leave it
   * one snapshot behind until the next rebuild.
   */
  async writeLayoutIndex(): Promise<void> {
    const manifests: Descriptor[] = [];
    for (const repository of await this.repositories()) {
      for (const tag of await this.tags(repository)) {
        const last = await this.newest(repository, tag);
        if (!last || last.action !== 'push') continue;
        const d = last.descriptor;
        const entry: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
        if (d.platform) entry.platform = d.platform;
        entry.annotations = { [REF_NAME]: `${repository}:${tag}`, [REPOSITORY_ANNOTATION]: repository };
        manifests.push(entry);
      }
    }
    await this.layout.writeIndex(manifests);
  }

  /**
   * The same as `latest(repository, tag)`, reading only the newest entries instead of the whole history: keys start
   * with the observation time (timeKey, fixed width), so their order is the history's first order, and only the
   * entries sharing the newest time are read to break the tie by record time. A history with a key of another
   * shape is read whole. Rebuilding index.json after every snapshot read every entry of every tag before.
   */
  private async newest(repository: string, tag: string): Promise<TagObservation | undefined> {
    const prefix = tagPrefix(repository, tag);
    const keys: string[] = [];
    for await (const obj of this.store.list(prefix)) keys.push(obj.key);
    const times = keys.map((k) => HISTORY_KEY.exec(k.slice(prefix.length))?.[1]);
    if (times.some((t) => t === undefined)) return this.latest(repository, tag);
    const newestTime = (times as string[]).reduce((a, b) => (b > a ? b : a), '');
    const candidates: TagObservation[] = [];
    for (const [i, key] of keys.entries()) {
      if (times[i] !== newestTime) continue;
      const entry = await this.historyEntry(key);
      if (entry) candidates.push(entry);
    }
    // None readable (removed meanwhile): the whole history decides.
    if (candidates.length === 0) return this.latest(repository, tag);
    return candidates
      .sort((a, b) => cmp(a.observedAt, b.observedAt) || cmp(a.recordedAt, b.recordedAt))
      .pop();
  }
}

/** History entries a Vault keeps read (about 1 KiB each): a few MiB at most. */
const HISTORY_ENTRIES_KEPT = 4096;

/** A history entry's key after its tag's prefix: `<timeKey(observedAt)>_<16 hex>_<8 hex>.json`. */
const HISTORY_KEY = /^(\d{8}T\d{9}Z)_[0-9a-f]{16}_[0-9a-f]{8}\.json$/;

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2) + '\n');
}

function isoTime(value: string, field: string): string {
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new VaultError(`${field} "${value}" is not a valid time`);
  return t.toISOString();
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
