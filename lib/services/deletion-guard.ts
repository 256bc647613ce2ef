import type { AlertPublisher, GuardRestore, InUsePlacement } from '../alerts';
import type { Vault } from '../content';
import type { InUse, InUseEntry } from '../content/inventory';
import { Reference } from '../oci';
import { redactSecrets, RegistryError, type Registries } from '../registry';
import { SILENT_LOG, type Log } from './log';
import { RestoreError, Restorer, TagConflictError, type RepositoryControl } from './restore';

/*
 * The deletion guard: an image deleted from its registry while something still runs it is the most common way images
 * are lost — a lifecycle rule or a cleanup script deletes what a service runs, and the next task start cannot pull
 * it. The snapshot path (a DELETE event) and reconcile (a digest gone without one) hand each deleted digest here:
 * when the in-use inventory says it runs now, a critical `in-use-deleted` alert names where, the snapshot and the
 * command to restore it; with autoRestore it is pushed back from the vault, bit for bit, first.
 *
 * Idempotent by looking: a digest the registry has again is never pushed twice. A second delivery of the same event
 * (SQS delivers again when the first one failed, its alert perhaps) says it is back, as a warning; the next
 * reconcile finds it in ECR's list and sends nothing.
 */

export interface DeletionGuardDeps {
  readonly vault: Vault;
  /** Where images run (lib/content/inventory.ts over the vault's store). */
  readonly inUse: InUse;
  readonly publisher: AlertPublisher;
  /** Push a deleted image that runs back from the vault into its registry. @default false */
  readonly autoRestore?: boolean;
  /**
   * The registry's control plane (ECR), asked whether the repository exists and whether its tags are immutable.
   * The guard never creates a repository: one deleted with its images is for a person (the alert's command does).
   * @default none — a plain registry: repositories appear on push, tags are mutable
   */
  readonly repositories?: RepositoryControl;
  /** Blob transfers at once for a restore. @default the copy engine's (4) */
  readonly concurrency?: number;
}

/** A digest deleted from a registry, as the event path or reconcile saw it. */
export interface DeletedImage {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  /** The tags the deletion took; none given: those whose latest observation in the vault names the digest. */
  readonly tags: readonly string[];
  readonly deletedAt: string;
  /** `ecr-event` (and the event id) or `reconcile`. */
  readonly detectedBy: { readonly origin: string; readonly id?: string };
  /**
   * The caller read the registry's image list and the digest is not in it (reconcile); otherwise the registry is
   * asked, since a DELETE of one tag leaves the digest in place under its other tags.
   */
  readonly knownMissing?: boolean;
}

/** What the guard found and did. */
export type GuardOutcome =
  | { readonly guarded: false; readonly reason: 'not running' | 'still in the registry' }
  | {
      readonly guarded: true;
      readonly runningIn: readonly InUsePlacement[];
      readonly tags: readonly string[];
      readonly restore: GuardRestore;
    };

export class DeletionGuard {
  constructor(
    private readonly deps: DeletionGuardDeps,
    private readonly log: Log = SILENT_LOG,
  ) {}

  get autoRestore(): boolean {
    return this.deps.autoRestore ?? false;
  }

  /** Checks one deleted digest; alerts (and restores) when it runs. Throws only when the inventory cannot be read. */
  async check(image: DeletedImage, registries: Registries, log: Log = this.log): Promise<GuardOutcome> {
    const { registry, repository, digest } = image;
    // The inventory first: most deleted images run nowhere, and that answer needs no registry request.
    const running = (await this.deps.inUse.where(repository, digest)).filter(
      (e) => e.running && pulledFrom(e, registry),
    );
    if (running.length === 0) return { guarded: false, reason: 'not running' };
    const tags = image.tags.length > 0 ? [...image.tags] : await this.lastTags(repository, digest);
    // Present with every tag the deletion took: undone already, by an earlier delivery of this event or by
    // someone; said again (the earlier alert may be what failed) but nothing is pushed. Present without them: only
    // a tag went, and the workloads can still pull the digest.
    const present =
      !image.knownMissing && (await this.present(registries, registry, repository, digest, log));
    if (present && !(await this.tagsAt(registries, registry, repository, digest, tags)))
      return { guarded: false, reason: 'still in the registry' };

    const vault = this.deps.vault;
    const record = await vault.image(repository, digest);
    const runningIn = running.map((e) => ({
      where: e.where,
      instances: e.placement.instances,
      lastSeen: e.lastSeen,
    }));
    log.warn('in-use image deleted', { repository, digest, runningIn: runningIn.map((p) => p.where) });
    const restore: GuardRestore = present
      ? { status: 'back' }
      : !this.autoRestore
        ? { status: 'off' }
        : !record
          ? { status: 'not-in-vault' }
          : await this.restore(registries, image, tags, log);
    await this.deps.publisher.publish({
      kind: 'in-use-deleted',
      image: { registry, repository, ...(tags[0] && { tag: tags[0] }), digest },
      tags,
      detectedBy: image.detectedBy,
      deletedAt: image.deletedAt,
      runningIn,
      ...(record && {
        lastSnapshot: { digest: record.descriptor.digest, snapshottedAt: record.lastSnapshotAt },
      }),
      restore,
      store: vault.url,
    });
    return { guarded: true, runningIn, tags, restore };
  }

  /**
   * Whether the registry still has the digest. Only a 404 says it is gone; any other failure counts as gone too,
   * so that an unreachable registry gets the alert rather than silence (and the restore, if on, says what failed).
   */
  private async present(
    registries: Registries,
    registry: string,
    repository: string,
    digest: string,
    log: Log,
  ): Promise<boolean> {
    try {
      await registries.get(registry).repository(repository).resolve(digest);
      return true;
    } catch (e) {
      if (!(e instanceof RegistryError && e.status === 404))
        log.warn('could not tell whether the registry still has the image', { reason: oneLine(e) });
      return false;
    }
  }

  /** Whether every tag resolves to `digest` in the registry (a failure to ask counts as no). */
  private async tagsAt(
    registries: Registries,
    registry: string,
    repository: string,
    digest: string,
    tags: readonly string[],
  ): Promise<boolean> {
    const repo = registries.get(registry).repository(repository);
    for (const tag of tags) {
      const at = await repo.resolve(tag).then(
        (d) => d.digest,
        () => undefined,
      );
      if (at !== digest) return false;
    }
    return true;
  }

  /** The digest first (what the workloads pull), then each tag where the repository allows it. */
  private async restore(
    registries: Registries,
    image: DeletedImage,
    tags: readonly string[],
    log: Log,
  ): Promise<GuardRestore> {
    const { registry, repository, digest } = image;
    const restorer = new Restorer(this.deps.vault, registries, {
      concurrency: this.deps.concurrency,
      ...(this.deps.repositories && { repositories: describeOnly(this.deps.repositories) }),
    });
    let verified: string;
    try {
      const r = await restorer.restore({
        repository,
        digest,
        to: Reference.of(registry, repository, digest),
      });
      verified = r.verifiedDigest!;
    } catch (e) {
      log.error('in-use image not restored', { reason: oneLine(e) });
      return { status: 'failed', reason: oneLine(e) };
    }
    const restoredTags = [];
    for (const tag of tags) {
      try {
        // force: false — a tag that points at another image now was moved by someone: never moved back.
        await restorer.restore({ repository, digest, to: Reference.of(registry, repository).withTag(tag) });
        restoredTags.push({ name: tag, restored: true });
      } catch (e) {
        const reason =
          e instanceof TagConflictError
            ? e.immutable
              ? `the repository's tags are immutable and ${tag} already points to ${e.current}`
              : `${tag} now points to ${e.current}; a tag moved since is left where it is`
            : oneLine(e);
        restoredTags.push({ name: tag, restored: false, reason });
      }
    }
    log.info('in-use image restored', { repository, digest: verified, tags: restoredTags });
    return { status: 'restored', digest: verified, tags: restoredTags };
  }

  /** Tags whose latest observation names `digest`, pushed or deleted (reconcile records the deletes first). */
  private async lastTags(repository: string, digest: string): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.deps.vault.tags(repository)) {
      const last = await this.deps.vault.latest(repository, tag);
      if (last?.descriptor.digest === digest) out.push(tag);
    }
    return out;
  }
}

/**
 * Whether a workload pulls its image from `registry`: the vault keys images by repository path, so the same
 * repository and digest pulled from elsewhere (a mirror, Docker Hub) would otherwise count as hit by this deletion.
 * A reference the inventory could not name a registry for counts as pulled from here: better one alert too many.
 */
export function pulledFrom(entry: InUseEntry, registry: string): boolean {
  try {
    return Reference.parse(entry.image).registry === registry;
  } catch {
    return true;
  }
}

/** The control plane as the guard uses it: asked once per restore, never told to create a repository. */
function describeOnly(control: RepositoryControl): RepositoryControl {
  const known = new Map<string, ReturnType<RepositoryControl['describeRepository']>>();
  const describe = (registry: string, repository: string) => {
    const key = `${registry}/${repository}`;
    let state = known.get(key);
    if (!state) known.set(key, (state = control.describeRepository(registry, repository)));
    return state;
  };
  return {
    describeRepository: describe,
    ensureRepository: async (registry, repository) => {
      const state = await describe(registry, repository);
      if (!state)
        throw new RestoreError(
          `repository ${repository} no longer exists in ${registry}; it is not recreated automatically`,
        );
      return state;
    },
  };
}

/** A failure as one line for an alert: the first line of its message, credentials removed. */
function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return redactSecrets(message.split('\n')[0]).slice(0, 1000);
}
