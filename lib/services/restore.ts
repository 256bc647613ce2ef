import { Readable } from 'node:stream';
import { copyGraph, type CopyEvent, type CopySummary } from '../copy';
import { Forgets, forgetOf, NotInVaultError, type Vault } from '../content';
import type { Descriptor, Reference } from '../oci';
import { RegistryError, type Registries, type Repository } from '../registry';

export interface RestoreRequest {
  /** The image in the vault: repository with a tag or a digest. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  /** For a tag: what it pointed at at this time. @default now */
  readonly at?: Date;
  /** The image, when the caller has already resolved the tag (a bulk restore reads each history once). */
  readonly resolved?: Descriptor;
  /**
   * Where to push. The graph always goes by digest; the tag (if any) is set afterwards by the tag rule: set when
   * absent, left alone when already equal, otherwise a TagConflictError unless `force` (and the tag is mutable).
   * Without a tag, the digest only. A digest given here must be the image's.
   */
  readonly to: Reference;
  readonly dryRun?: boolean;
  /** Move a destination tag that points at another image, when the repository allows it. @default false */
  readonly force?: boolean;
  /**
   * When the destination tag already points at the image, return at once without walking the graph: a tag is
   * only ever set on a complete graph, so this is what makes a re-run of a bulk restore cheap. @default false
   */
  readonly skipWhenTagged?: boolean;
}

/** What a restore needs to know of the destination repository. */
export interface RepositoryState {
  /** True when the repository was created for this restore (or, in a dry run, would be). */
  readonly created: boolean;
  /** The repository refuses to move a tag once set (ECR IMMUTABLE). */
  readonly immutableTags: boolean;
  /**
   * Wildcard patterns (`*` matches any run of characters) of tags whose mutability is the opposite of
   * `immutableTags` (ECR's `…_WITH_EXCLUSION` settings). @default none
   */
  readonly exceptions?: readonly string[];
}

/**
 * The control plane of registries whose repositories must exist before a push (ECR); plain registries create a
 * repository on first push and need none. Implemented by lib/aws/ecr-repositories.
 */
export interface RepositoryControl {
  /** Creates the repository when it is missing; says whether its tags are immutable. */
  ensureRepository(registry: string, repository: string): Promise<RepositoryState>;
  /** The same, creating nothing (for dry runs): undefined when the repository does not exist. */
  describeRepository(registry: string, repository: string): Promise<RepositoryState | undefined>;
}

export interface RestoreOptions {
  readonly concurrency?: number;
  readonly onEvent?: (event: CopyEvent) => void;
  /**
   * Called before anything is pushed, for the destination's repository. @default none: repositories appear on
   * push and every tag is mutable (true of a plain registry; set it for ECR)
   */
  readonly repositories?: RepositoryControl;
}

/** What happened to the destination tag: `set` where it was absent, `overwritten` with force, or `unchanged`. */
export type TagAction = 'set' | 'unchanged' | 'overwritten';

export interface RestoreResult {
  source: string;
  destination: string;
  descriptor: Descriptor;
  copy: CopySummary;
  /** The digest the destination reports for what we pushed: equal to descriptor.digest, or we throw. */
  verifiedDigest?: string;
  dryRun: boolean;
  /** The destination tag and what was (in a dry run: would be) done to it; absent for a restore by digest. */
  tag?: { name: string; action: TagAction; previous?: string };
  /** From the repository control, when one is configured. */
  repository?: RepositoryState;
  /** True when skipWhenTagged found the tag already pointing at the image: nothing was copied or checked. */
  skipped: boolean;
}

export class RestoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RestoreError';
  }
}

/**
 * The destination tag points at another image and may not be moved: the repository's tags are immutable, or the
 * restore was not told to --force. Thrown before anything is pushed (and again after the graph, if the tag moved
 * meanwhile); the destination tag is never touched.
 */
export class TagConflictError extends RestoreError {
  constructor(
    readonly destination: Reference,
    readonly current: string,
    readonly wanted: string,
    readonly immutable: boolean,
  ) {
    const { registry, repository, tag } = destination;
    const elsewhere = `restore under another tag with --to ${registry}/${repository}:TAG or by digest with --to ${registry}/${repository}@${wanted}`;
    super(
      immutable
        ? `${repository}:${tag} in ${registry} is immutable and points to ${current}; the vault's is ${wanted} — ${elsewhere}`
        : `${repository}:${tag} in ${registry} points to ${current}; the vault's is ${wanted} — overwrite it with --force, or ${elsewhere}`,
    );
    this.name = 'TagConflictError';
  }
}

/** True when `tag` may not be moved in a repository of this state. */
export function isTagImmutable(state: RepositoryState | undefined, tag: string): boolean {
  if (!state) return false;
  const excepted = (state.exceptions ?? []).some((pattern) => wildcard(pattern).test(tag));
  return state.immutableTags !== excepted;
}

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The tag rule: what to do with a destination tag that is `current` (undefined: absent) for an image `wanted`. */
function tagAction(
  destination: Reference,
  current: string | undefined,
  wanted: string,
  immutable: boolean,
  force: boolean,
): TagAction {
  if (current === undefined) return 'set';
  if (current === wanted) return 'unchanged';
  if (!immutable && force) return 'overwritten';
  throw new TagConflictError(destination, current, wanted, immutable);
}

/** A blob being uploaded into one repository of a registry, which other restores wait for and then mount. */
interface Upload {
  repository: string;
  done: Promise<boolean>;
  settle: (ok: boolean) => void;
}

/**
 * Restore: vault → registry, bit-for-bit. The manifest bytes pushed are the snapshot's bytes, so every digest is
 * the original; the destination is read back afterwards to prove it.
 *
 * One Restorer serves a whole run: a blob restored into one repository of a registry is mounted into the next
 * repository that needs it, and a restore that needs a blob another restore is uploading right now waits for that
 * upload and mounts it, instead of sending the same bytes twice.
 */
export class Restorer {
  private readonly uploads = new Map<string, Upload>();

  constructor(
    private readonly vault: Vault,
    private readonly registries: Registries,
    private readonly options: RestoreOptions = {},
  ) {}

  async resolve(request: Pick<RestoreRequest, 'repository' | 'tag' | 'digest' | 'at'>): Promise<Descriptor> {
    let desc: Descriptor;
    if (request.digest) desc = await this.vault.resolveDigest(request.repository, request.digest);
    else if (!request.tag)
      throw new NotInVaultError(`restore of ${request.repository} needs a tag or a digest`);
    else desc = (await this.vault.resolveTag(request.repository, request.tag, request.at)).descriptor;
    // A forgotten image is said as such: gc may have deleted its content, and a half restore would say less.
    const record = await this.vault.image(request.repository, desc.digest);
    const forgotten =
      record && forgetOf(record, await new Forgets(this.vault.store).newest(request.repository));
    if (forgotten)
      throw new NotInVaultError(
        `${request.repository}@${desc.digest} was forgotten by retention at ${forgotten.forgottenAt} (${forgotten.reason}); gc may have deleted its content`,
      );
    return desc;
  }

  async restore(request: RestoreRequest, onEvent = this.options.onEvent): Promise<RestoreResult> {
    const descriptor = request.resolved ?? (await this.resolve(request));
    const source = `${request.repository}${request.digest ? `@${request.digest}` : `:${request.tag}`}`;
    const { registry, repository, tag } = request.to;
    if (request.to.digest && request.to.digest !== descriptor.digest) {
      throw new RestoreError(
        `restore of ${source}: the destination names ${request.to.digest}, but the image is ${descriptor.digest}`,
      );
    }
    const dest = this.registries.get(registry).repository(repository);
    const destination = request.to.withDigest(descriptor.digest).toString();
    const dryRun = request.dryRun ?? false;

    const state = await this.repositoryState(registry, repository, dryRun);
    const immutable = tag !== undefined && isTagImmutable(state, tag);
    let tagResult: RestoreResult['tag'];
    if (tag) {
      // Before any push: a conflict costs one HEAD, not a graph's worth of uploads.
      const current = state?.created ? undefined : await currentDigest(dest, tag);
      const action = tagAction(request.to, current, descriptor.digest, immutable, request.force ?? false);
      tagResult = {
        name: tag,
        action,
        ...(current && current !== descriptor.digest ? { previous: current } : {}),
      };
      if (action === 'unchanged' && request.skipWhenTagged) {
        return {
          source,
          destination,
          descriptor,
          copy: emptySummary(descriptor),
          ...(dryRun ? {} : { verifiedDigest: descriptor.digest }),
          dryRun,
          tag: tagResult,
          ...(state ? { repository: state } : {}),
          skipped: true,
        };
      }
    }

    // The root manifest goes in under its tag, once the graph is there. The tag may have moved while the graph was
    // copied: decide again on what is there now. A tag that may not be moved still gets the image, by digest.
    let conflict: unknown;
    let finalTag = tagResult;
    const pushUnderTag =
      tag && tagResult
        ? async (desc: Descriptor, bytes: Buffer): Promise<boolean> => {
            const current = await currentDigest(dest, tag);
            let action: TagAction;
            try {
              action = tagAction(request.to, current, descriptor.digest, immutable, request.force ?? false);
            } catch (e) {
              conflict = e;
              if (await dest.exists(desc)) return false;
              await dest.push(desc, Readable.from([bytes]));
              return true;
            }
            finalTag = {
              name: tag,
              action,
              ...(current && current !== descriptor.digest ? { previous: current } : {}),
            };
            if (action === 'unchanged') return false;
            await dest.pushManifest(tag, bytes, desc.mediaType);
            return true;
          }
        : undefined;
    const copy = await this.copy(dest, descriptor, {
      dryRun,
      label: `restore ${source} (${descriptor.digest}) to ${destination}`,
      onEvent,
      pushRoot: pushUnderTag,
    });
    if (conflict) throw conflict;
    const base = { source, destination, descriptor, copy, tag: finalTag, skipped: false };
    const withState = state ? { ...base, repository: state } : base;
    if (dryRun) return { ...withState, dryRun: true };

    const check = await dest.resolve(tag ?? descriptor.digest);
    if (check.digest !== descriptor.digest) {
      throw new RestoreError(
        `restore of ${source}: ${request.to.toString()} reports ${check.digest} after the push, expected ${descriptor.digest}`,
      );
    }
    return { ...withState, verifiedDigest: check.digest, dryRun: false };
  }

  private async repositoryState(
    registry: string,
    repository: string,
    dryRun: boolean,
  ): Promise<RepositoryState | undefined> {
    const control = this.options.repositories;
    if (!control) return undefined;
    if (!dryRun) return control.ensureRepository(registry, repository);
    return (
      (await control.describeRepository(registry, repository)) ?? {
        created: true,
        immutableTags: false,
      }
    );
  }

  private async copy(
    dest: Repository,
    descriptor: Descriptor,
    options: {
      dryRun: boolean;
      label: string;
      onEvent?: (event: CopyEvent) => void;
      pushRoot?: (desc: Descriptor, bytes: Buffer) => Promise<boolean>;
    },
  ): Promise<CopySummary> {
    const { registry, name: repository } = dest;
    const mine = new Map<string, Upload>();
    const onEvent = options.onEvent;
    try {
      return await copyGraph(this.vault, dest, descriptor, {
        concurrency: this.options.concurrency,
        dryRun: options.dryRun,
        label: options.label,
        pushRoot: options.pushRoot,
        onEvent: (e) => {
          if (e.type === 'done' || e.type === 'skip' || e.type === 'mount') {
            this.registries.noteBlob(registry, repository, e.descriptor.digest);
            this.finishUpload(registry, e.descriptor.digest, mine, true);
          }
          onEvent?.(e);
        },
        // A layer shared with an image restored earlier in this run is mounted, not sent again.
        mount: async (desc) => {
          const from = this.registries.blobHome(registry, desc.digest, repository);
          if (from !== undefined) return dest.mount(desc, from);
          const key = uploadKey(registry, desc.digest);
          const pending = this.uploads.get(key);
          if (pending && pending.repository !== repository && (await pending.done)) {
            return dest.mount(desc, pending.repository);
          }
          if (!this.uploads.has(key)) {
            let settle!: (ok: boolean) => void;
            const done = new Promise<boolean>((resolve) => (settle = resolve));
            const upload = { repository, done, settle };
            this.uploads.set(key, upload);
            mine.set(key, upload);
          }
          return false;
        },
      });
    } finally {
      // Uploads this copy started and did not finish: whoever waits on them uploads for itself.
      for (const key of [...mine.keys()])
        this.finishUpload(registry, key.slice(registry.length + 1), mine, false);
    }
  }

  private finishUpload(registry: string, digest: string, mine: Map<string, Upload>, ok: boolean): void {
    const key = uploadKey(registry, digest);
    const upload = mine.get(key);
    if (!upload) return;
    mine.delete(key);
    if (this.uploads.get(key) === upload) this.uploads.delete(key);
    upload.settle(ok);
  }
}

function uploadKey(registry: string, digest: string): string {
  return `${registry} ${digest}`;
}

/** The digest a tag points at, or undefined when the repository has no such tag (or no such repository). */
async function currentDigest(dest: Repository, tag: string): Promise<string | undefined> {
  try {
    return (await dest.resolve(tag)).digest;
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404) return undefined;
    throw e;
  }
}

function emptySummary(root: Descriptor): CopySummary {
  return {
    root,
    manifests: { copied: 0, skipped: 0 },
    blobs: { copied: 0, skipped: 0, mounted: 0 },
    bytes: { copied: 0, skipped: 0 },
    referrers: [],
    seconds: 0,
  };
}
