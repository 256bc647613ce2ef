import type { Source, Vault } from '../content';
import type { CopySummary } from '../copy';
import type { CandidateBases } from '../drift/base';
import type { BuildDrift } from '../drift/build-drift';
import { RepositoryFilter, type ImageEvent } from '../events';
import { buildDriftAlertOf, type AlertPublisher } from '../alerts';
import { Reference } from '../oci';
import type { LogRetention } from '../provenance';
import { ecrRegistryHost, type Registries } from '../registry';
import type { DeletionGuard, GuardOutcome } from './deletion-guard';
import { SILENT_LOG, type Log } from './log';
import { snapshotImage } from './snapshot-image';
import { recordObservation } from './tag-history';

/*
 * What an ECR image event (or a reconcile one, same shape) does to the vault. lib/aws/handlers/snapshot.ts feeds it
 * the snapshot queue's messages, one at a time.
 *
 * - PUSH: snapshot by digest (the tag may have moved since), then record the event's tag, if any, at that digest.
 *   Idempotent on (repository, digest): a second delivery finds every blob present (0 bytes copied) and the
 *   tag's history already holding an observation with this event's id, so it appends nothing.
 * - DELETE: recorded in the tag's history as a `delete` observation (the vault removes nothing) and alerted,
 *   naming the snapshot to restore. A digest that is gone and still runs goes to the deletion guard, whose critical
 *   alert (and restore, when on) replaces the ordinary one. Reconcile sends a DELETE of its own for a running digest
 *   gone from ECR without an event, so both paths meet here, where the registry clients are.
 *
 * The vault's OCI index.json is NOT rewritten here: writeLayoutIndex lists every tag's whole history, so its cost
 * grows with the vault, while a batch adds a handful of images. Reconcile rewrites it once per run instead (the
 * index is a derived view for `skopeo copy oci:`; restores read the history, which is always current).
 */

export interface SnapshotEventDeps {
  readonly vault: Vault;
  readonly publisher: AlertPublisher;
  /** The registry host to pull an event's image from. @default `<account>.dkr.ecr.<region>.amazonaws.com` */
  readonly registryFor?: (account: string, region: string) => string;
  /** Events for other repositories are logged and dropped. @default RepositoryFilter.ALL */
  readonly repositories?: RepositoryFilter;
  /** Blob transfers at once per image. @default the copy engine's (4) */
  readonly concurrency?: number;
  /**
   * Find each pushed image's base and alert on build drift (a rebuild of a tag on a moved base). @default true
   */
  readonly detectBases?: boolean;
  /** Candidate bases per repository prefix, for images that do not say what they were built on. @default none */
  readonly candidates?: CandidateBases;
  /** Object Lock on each provenance entry. @default none (the bucket's default retention, if any) */
  readonly provenanceRetention?: LogRetention;
  /** Checks each deleted digest against the in-use inventory. @default none: deletes are only recorded and alerted */
  readonly guard?: DeletionGuard;
}

/** What became of one message. */
export type EventOutcome =
  | {
      readonly outcome: 'snapshotted';
      readonly digest: string;
      readonly bytesCopied: number;
      readonly tagRecorded: boolean;
    }
  | { readonly outcome: 'deleted'; readonly tags: readonly string[]; readonly guard?: GuardOutcome }
  | { readonly outcome: 'ignored'; readonly reason: string };

/** What processEvent did, and for a snapshot the copy's figures (the handler's metrics). */
export interface ProcessedEvent {
  readonly outcome: EventOutcome;
  readonly copy?: CopySummary;
}

/** The work of one image event; exported for the snapshot queue's handler and other consumers of the same events. */
export class SnapshotEvents {
  private readonly registryFor: (account: string, region: string) => string;
  private readonly repositories: RepositoryFilter;
  private readonly hostsUsed = new Set<string>();
  private initialized?: Promise<void>;

  constructor(
    private readonly deps: SnapshotEventDeps,
    private readonly log: Log = SILENT_LOG,
  ) {
    this.registryFor = deps.registryFor ?? ecrRegistryHost;
    this.repositories = deps.repositories ?? RepositoryFilter.ALL;
  }

  /** The registry an event's image is pulled from (and alerts name). */
  registryOf(event: ImageEvent): string {
    return this.registryFor(event.account, event.region);
  }

  async processEvent(
    event: ImageEvent,
    registries: Registries,
    log: Log = this.log,
  ): Promise<ProcessedEvent> {
    if (!this.repositories.matches(event.repository)) {
      return {
        outcome: {
          outcome: 'ignored',
          reason: `repository not in REPOSITORY_PREFIXES (${this.repositories.toString()})`,
        },
      };
    }
    if (event.result !== 'SUCCESS')
      return { outcome: { outcome: 'ignored', reason: `result is ${event.result}` } };
    await this.init();
    return event.action === 'PUSH' ? this.push(event, registries, log) : this.delete(event, registries, log);
  }

  /** Releases the connections of the registry clients this instance used. */
  async close(registries: Registries): Promise<void> {
    const hosts = [...this.hostsUsed];
    this.hostsUsed.clear();
    await Promise.all(hosts.map((h) => registries.get(h).close()));
  }

  private async push(event: ImageEvent, registries: Registries, log: Log): Promise<ProcessedEvent> {
    const host = this.registryOf(event);
    this.hostsUsed.add(host);
    // By digest: what was pushed, whatever the tag points at by now. The event's tag is recorded at that digest,
    // once per event (a duplicate delivery records nothing, and so compares and alerts nothing).
    const result = await snapshotImage(
      {
        vault: this.deps.vault,
        registries,
        concurrency: this.deps.concurrency,
        ...(this.deps.detectBases !== false && { bases: { candidates: this.deps.candidates } }),
      },
      {
        reference: Reference.of(host, event.repository, event.digest),
        ...(event.tag && { tag: event.tag }),
        source: sourceOf(event),
        observedAt: event.time,
        retention: this.deps.provenanceRetention,
        ...(ARRIVED_WITHOUT_PUSH[event.origin] && { arrivedWithoutPush: ARRIVED_WITHOUT_PUSH[event.origin] }),
      },
    );
    const tagRecorded = result.observation !== undefined;
    if (event.tag && result.baseError) log.warn('base detection failed', { reason: result.baseError });
    await this.alertBuildDrift(event, result.drift, host, log);
    const copy = result.copy;
    return {
      outcome: {
        outcome: 'snapshotted',
        digest: result.descriptor.digest,
        bytesCopied: copy.bytes.copied,
        tagRecorded,
      },
      copy,
    };
  }

  /** Build drift: this push of the tag sits on another digest of the same base than the push before it. */
  private async alertBuildDrift(
    event: ImageEvent,
    drifts: readonly BuildDrift[],
    registry: string,
    log: Log,
  ): Promise<void> {
    if (drifts.length === 0) return;
    const vault = this.deps.vault;
    const history = await vault.history(event.repository, drifts[0].tag);
    for (const drift of drifts) {
      const previous = history.find((o) => o.descriptor.digest === drift.previous.digest);
      log.warn('build drift', { platform: drift.platform, base: drift.current.base.reference });
      await this.deps.publisher.publish(
        buildDriftAlertOf(drift, {
          registry,
          store: vault.url,
          previousPushedAt: previous?.observedAt ?? 'unknown',
          detectedAt: new Date().toISOString(),
        }),
      );
    }
  }

  private async delete(event: ImageEvent, registries: Registries, log: Log): Promise<ProcessedEvent> {
    const vault = this.deps.vault;
    const image = await vault.image(event.repository, event.digest);
    // A delete naming no tag is of a digest: the tags the vault last saw on it were deleted with it. An untagged
    // image the vault never held (a lifecycle policy expiring untagged images) is routine and not alerted.
    const tags = event.tag ? [event.tag] : image ? await this.tagsAt(event.repository, event.digest) : [];
    const guard = await this.guard(event, tags, registries, log);
    if (tags.length === 0)
      return guard?.guarded
        ? { outcome: { outcome: 'deleted', tags, guard } }
        : { outcome: { outcome: 'ignored', reason: 'untagged image deleted; no tag to record' } };
    for (const tag of tags) {
      const history = await vault.history(event.repository, tag);
      const descriptor =
        image?.descriptor ??
        [...history].reverse().find((o) => o.descriptor.digest === event.digest)?.descriptor;
      if (descriptor)
        await recordObservation(
          vault,
          {
            repository: event.repository,
            tag,
            action: 'delete',
            descriptor,
            observedAt: event.time,
            source: sourceOf(event),
          },
          history,
        );
      // The guard's alert already names these tags and the snapshot: one mail, not two.
      if (guard?.guarded) continue;
      // Alerted even on a duplicate delivery: a second mail is better than none when the first publish failed.
      await this.deps.publisher.publish({
        kind: 'image-deleted',
        image: {
          registry: this.registryOf(event),
          repository: event.repository,
          tag,
          digest: event.digest,
        },
        deletedAt: event.time,
        event: { id: event.id, origin: event.origin },
        ...(image && {
          lastSnapshot: { digest: image.descriptor.digest, snapshottedAt: image.lastSnapshotAt },
        }),
        store: vault.url,
      });
    }
    return { outcome: { outcome: 'deleted', tags, ...(guard && { guard }) } };
  }

  /** The deletion guard's verdict on the deleted digest, when there is a guard. */
  private async guard(
    event: ImageEvent,
    tags: readonly string[],
    registries: Registries,
    log: Log,
  ): Promise<GuardOutcome | undefined> {
    const guard = this.deps.guard;
    if (!guard) return undefined;
    const registry = this.registryOf(event);
    this.hostsUsed.add(registry);
    const outcome = await guard.check(
      {
        registry,
        repository: event.repository,
        digest: event.digest,
        tags,
        deletedAt: event.time,
        detectedBy: { origin: event.origin, id: event.id },
        // Reconcile sends a DELETE only for a digest missing from ECR's own list of the repository's images.
        knownMissing: event.origin === 'reconcile',
      },
      registries,
      log,
    );
    if (!outcome.guarded) log.debug('deletion guard: nothing to do', { reason: outcome.reason });
    return outcome;
  }

  /** Tags whose latest observation is a push of `digest`. */
  private async tagsAt(repository: string, digest: string): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.deps.vault.tags(repository)) {
      const last = await this.deps.vault.latest(repository, tag);
      if (last?.action === 'push' && last.descriptor.digest === digest) out.push(tag);
    }
    return out;
  }

  private init(): Promise<void> {
    this.initialized ??= this.deps.vault.init().catch((e: unknown) => {
      this.initialized = undefined;
      throw e;
    });
    return this.initialized;
  }
}

/** Why no CloudTrail PutImage will name a pusher, for images that arrive without a push in this registry. */
const ARRIVED_WITHOUT_PUSH: Partial<Record<ImageEvent['origin'], string>> = {
  'pull-through-cache':
    'the image came in through a pull-through cache rule, pulled from its upstream registry: nobody pushed it here, so no CloudTrail PutImage names a pusher',
  replication:
    'the image was replicated into this registry from another region or account: the PutImage that names its pusher was logged where it was pushed',
};

function sourceOf(event: ImageEvent): Source {
  return { kind: event.origin, id: event.id };
}
