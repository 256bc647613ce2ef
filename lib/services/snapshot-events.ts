import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Source, Vault } from '../content';
import { ecrRegistryHost } from '../registry/ecr-host';
import { RepositoryFilter, parseImageEvent, type ImageEvent } from '../events';
import { Reference } from '../oci';
import type { CandidateBases } from '../drift/base';
import type { BuildDrift } from '../drift/build-drift';
import type { LogRetention } from '../provenance';
import { redactSecrets } from '../registry/redact';
import { buildDriftAlertOf, type AlertPublisher } from '../alerts';

/** How much of an unreadable message an alert quotes: enough to recognise the sender, well within SNS's limit. */
const UNREADABLE_EXCERPT_CHARS = 1000;
import type { Registries } from './registries';
import { snapshotImage } from './snapshot-image';
import { recordObservation } from './tag-history';

/*
 * The snapshot queue's consumer: one ECR image event per message (or a reconcile one, same shape).
 *
 * - PUSH: snapshot by digest (the tag may have moved since), then record the event's tag, if any, at that digest.
 *   Idempotent on (repository, digest): a second delivery finds every blob present (0 bytes copied) and the
 *   tag's history already holding an observation with this event's id, so it appends nothing.
 * - DELETE: recorded in the tag's history as a `delete` observation (the vault removes nothing) and alerted,
 *   naming the snapshot to restore.
 * - A record that fails is reported in batchItemFailures, so SQS delivers it again; on the attempt that sends it
 *   to the dead-letter queue (ApproximateReceiveCount ≥ maxReceiveCount) a snapshot-failed alert goes out first.
 *
 * The vault's OCI index.json is NOT rewritten here: writeLayoutIndex lists every tag's whole history, so its cost
 * grows with the vault, while a batch adds a handful of images. Reconcile rewrites it once per run instead (the
 * index is a derived view for `skopeo copy oci:`; restores read the history, which is always current).
 */

export interface SnapshotHandlerDeps {
  readonly vault: Vault;
  /**
   * The registry clients, or a factory called once per batch (for tests that want a fresh client each time). A
   * long-lived instance is fine: clients ask their provider again when an ECR credential nears its expiry.
   */
  readonly registries: Registries | (() => Registries);
  readonly publisher: AlertPublisher;
  /** @default a Powertools Logger (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL from the environment) */
  readonly logger?: Logger;
  /** @default Powertools Metrics (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME from the environment) */
  readonly metrics?: Metrics;
  /** The registry host to pull an event's image from. @default `<account>.dkr.ecr.<region>.amazonaws.com` */
  readonly registryFor?: (account: string, region: string) => string;
  /** Events for other repositories are logged and dropped. @default RepositoryFilter.ALL */
  readonly repositories?: RepositoryFilter;
  /** The queue's maxReceiveCount: a failure on this attempt (or later) is final and alerted. @default 3 */
  readonly maxReceiveCount?: number;
  /** Add the repository as a metric dimension (one custom metric per repository and name). @default false */
  readonly metricsPerRepository?: boolean;
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
  /**
   * A record is started only while at least this much of the invocation is left (the Lambda context's
   * getRemainingTimeInMillis); the others are reported as batch item failures without being started, so SQS
   * delivers only them again. The event says nothing of the image's size, so the floor is fixed: 3 minutes copies
   * ~9 GB at the ~50 MB/s assumed for ECR → S3 (most images, and every image's remaining blobs on a retry, since
   * blobs already in the vault are skipped), and leaves the record, the provenance entry and an alert their
   * seconds. A record that started and still runs out of time times the invocation out, as before.
   * @default 180_000 (3 minutes)
   */
  readonly startMarginMs?: number;
}

/** Thrown for a record the handler did not start because the invocation had too little time left. */
export class RecordNotStartedError extends Error {
  constructor(
    readonly messageId: string,
    readonly remainingMs: number,
    readonly neededMs: number,
  ) {
    super(
      `not started: ${Math.round(remainingMs / 1000)} s of the invocation were left and a record needs ${Math.round(neededMs / 1000)} s; SQS delivers it again`,
    );
    this.name = 'RecordNotStartedError';
  }
}

export type SnapshotHandler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

/** What became of one message. */
export type EventOutcome =
  | {
      readonly outcome: 'snapshotted';
      readonly digest: string;
      readonly bytesCopied: number;
      readonly tagRecorded: boolean;
    }
  | { readonly outcome: 'deleted'; readonly tags: readonly string[] }
  | { readonly outcome: 'ignored'; readonly reason: string };

/**
 * The SQS handler: records one at a time (see processEvent), failures reported per record. A record is not started
 * when less than `startMarginMs` of the invocation is left: one slow image then costs the records after it a
 * redelivery, not the whole batch a timeout (which would count a receive against every record and alert none).
 */
export function createSnapshotHandler(deps: SnapshotHandlerDeps): SnapshotHandler {
  const processor = new BatchProcessor(EventType.SQS);
  const logger = deps.logger ?? new Logger();
  const events = new SnapshotEvents(deps, logger);
  const margin = deps.startMarginMs ?? 180_000;
  return async (event, context) => {
    const registries = typeof deps.registries === 'function' ? deps.registries() : deps.registries;
    // Records nearest the dead-letter queue first: they have no later delivery to catch up in.
    const records = [...event.Records].sort((a, b) => receiveCount(b) - receiveCount(a));
    try {
      // One record at a time: memory stays that of one copy (a large layer's upload buffers), and the children of a
      // multi-arch index, which often arrive in one batch, find the blobs they share already in the vault.
      return await processPartialResponse(
        { ...event, Records: records },
        async (record: SQSRecord) => {
          const left = context?.getRemainingTimeInMillis();
          if (left !== undefined && left < margin) return events.notStarted(record, left, margin);
          return events.handleRecord(record, registries);
        },
        processor,
        { context, processInParallel: false },
      );
    } finally {
      if (registries !== deps.registries) await events.close(registries);
    }
  };
}

/** The per-record work of the snapshot handler; exported for tests and for other consumers of the same events. */
export class SnapshotEvents {
  private readonly registryFor: (account: string, region: string) => string;
  private readonly repositories: RepositoryFilter;
  private readonly maxReceiveCount: number;
  private readonly metrics: Metrics;
  private readonly hostsUsed = new Set<string>();
  private initialized?: Promise<void>;

  constructor(
    private readonly deps: SnapshotHandlerDeps,
    private readonly logger: Logger = deps.logger ?? new Logger(),
  ) {
    this.registryFor = deps.registryFor ?? ecrRegistryHost;
    this.repositories = deps.repositories ?? RepositoryFilter.ALL;
    this.maxReceiveCount = deps.maxReceiveCount ?? 3;
    this.metrics = deps.metrics ?? new Metrics();
  }

  /**
   * A record left for a later delivery: always throws RecordNotStartedError (a batch item failure). On its last
   * attempt it is alerted first, as a failure would be: it goes to the dead-letter queue without having been tried.
   */
  async notStarted(record: SQSRecord, remainingMs: number, neededMs: number): Promise<never> {
    const attempt = receiveCount(record);
    const error = new RecordNotStartedError(record.messageId, remainingMs, neededMs);
    const log = this.logger.createChild({ persistentKeys: { messageId: record.messageId, attempt } });
    const final = attempt >= this.maxReceiveCount;
    log.warn(error.message, { final, remainingMs });
    if (final) {
      let event: ImageEvent | undefined;
      try {
        event = parseImageEvent(record.body);
      } catch {
        // Unreadable: alerted as such below.
      }
      if (event) await this.alertFailure(event, error, attempt, log);
      else await this.alertUnreadable(record, error, attempt, log);
    }
    throw error;
  }

  /** Parses and processes one SQS record; throws (so the record is retried) on any failure. */
  async handleRecord(record: SQSRecord, registries: Registries): Promise<EventOutcome> {
    const attempt = receiveCount(record);
    let event: ImageEvent | undefined;
    let log = this.logger.createChild({ persistentKeys: { messageId: record.messageId, attempt } });
    try {
      event = parseImageEvent(record.body);
      log = log.createChild({ persistentKeys: imageKeys(event) });
      const outcome = await this.processEvent(event, registries, log);
      log.info(`${event.action} ${outcome.outcome}`, { ...outcome });
      return outcome;
    } catch (e) {
      const final = attempt >= this.maxReceiveCount;
      log.error(
        final
          ? 'failed on the last attempt; the message goes to the dead-letter queue'
          : 'failed; SQS will retry',
        {
          error: e as Error,
          final,
        },
      );
      if (final && event) await this.alertFailure(event, e, attempt, log);
      else if (final) await this.alertUnreadable(record, e, attempt, log);
      throw e;
    }
  }

  async processEvent(
    event: ImageEvent,
    registries: Registries,
    log: Logger = this.logger,
  ): Promise<EventOutcome> {
    if (!this.repositories.matches(event.repository)) {
      return {
        outcome: 'ignored',
        reason: `repository not in REPOSITORY_PREFIXES (${this.repositories.toString()})`,
      };
    }
    if (event.result !== 'SUCCESS') return { outcome: 'ignored', reason: `result is ${event.result}` };
    await this.init();
    return event.action === 'PUSH' ? this.push(event, registries, log) : this.delete(event);
  }

  /** Releases the connections of the registry clients this instance used. */
  async close(registries: Registries): Promise<void> {
    const hosts = [...this.hostsUsed];
    this.hostsUsed.clear();
    await Promise.all(hosts.map((h) => registries.get(h).close()));
  }

  private async push(event: ImageEvent, registries: Registries, log: Logger): Promise<EventOutcome> {
    const host = this.registryFor(event.account, event.region);
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
    this.publishMetrics(event, {
      BytesCopied: [MetricUnit.Bytes, copy.bytes.copied],
      BlobsCopied: [MetricUnit.Count, copy.blobs.copied + copy.blobs.mounted],
      BlobsSkipped: [MetricUnit.Count, copy.blobs.skipped],
      SnapshotSeconds: [MetricUnit.Seconds, copy.seconds],
    });
    log.debug('copy summary', { copy: { ...copy, root: undefined } });
    return {
      outcome: 'snapshotted',
      digest: result.descriptor.digest,
      bytesCopied: copy.bytes.copied,
      tagRecorded,
    };
  }

  /** Build drift: this push of the tag sits on another digest of the same base than the push before it. */
  private async alertBuildDrift(
    event: ImageEvent,
    drifts: readonly BuildDrift[],
    registry: string,
    log: Logger,
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

  private async delete(event: ImageEvent): Promise<EventOutcome> {
    const vault = this.deps.vault;
    const image = await vault.image(event.repository, event.digest);
    // A delete naming no tag is of a digest: the tags the vault last saw on it were deleted with it. An untagged
    // image the vault never held (a lifecycle policy expiring untagged images) is routine and not alerted.
    const tags = event.tag ? [event.tag] : image ? await this.tagsAt(event.repository, event.digest) : [];
    if (tags.length === 0) return { outcome: 'ignored', reason: 'untagged image deleted; no tag to record' };
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
      // Alerted even on a duplicate delivery: a second mail is better than none when the first publish failed.
      await this.deps.publisher.publish({
        kind: 'image-deleted',
        image: {
          registry: this.registryFor(event.account, event.region),
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
    return { outcome: 'deleted', tags };
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

  /** The last attempt of a message that does not parse: without this, it reached the DLQ with no alert but the alarm. */
  private async alertUnreadable(
    record: SQSRecord,
    error: unknown,
    attempt: number,
    log: Logger,
  ): Promise<void> {
    try {
      await this.deps.publisher.publish({
        kind: 'event-unreadable',
        messageId: record.messageId,
        reason: error instanceof Error ? error.message : String(error),
        attempts: attempt,
        excerpt: redactSecrets(String(record.body ?? '').slice(0, UNREADABLE_EXCERPT_CHARS)),
        store: this.deps.vault.url,
      });
    } catch (e) {
      log.error('could not publish the event-unreadable alert', { error: e as Error });
    }
  }

  private async alertFailure(event: ImageEvent, error: unknown, attempt: number, log: Logger): Promise<void> {
    try {
      await this.deps.publisher.publish({
        kind: 'snapshot-failed',
        image: {
          registry: this.registryFor(event.account, event.region),
          repository: event.repository,
          ...(event.tag && { tag: event.tag }),
          digest: event.digest,
        },
        reason: error instanceof Error ? error.message : String(error),
        attempts: attempt,
        event: { id: event.id, origin: event.origin, time: event.time },
        store: this.deps.vault.url,
      });
    } catch (e) {
      // The record still fails (and lands in the DLQ, whose alarm is the backstop); the publish error is logged.
      log.error('could not publish the snapshot-failed alert', { error: e as Error });
    }
  }

  /**
   * One EMF record per image. The repository and image go in as metadata (searchable in Logs Insights, e.g.
   * `stats sum(BytesCopied) by repository`) rather than as a dimension: a dimension makes each repository a
   * separate custom metric per name, billed monthly, which for hundreds of repositories costs more than the
   * function. METRICS_PER_REPOSITORY turns the dimension on for small fleets.
   */
  private publishMetrics(event: ImageEvent, values: Record<string, [Unit, number]>): void {
    const m = this.metrics;
    if (this.deps.metricsPerRepository) m.addDimension('repository', event.repository);
    m.addMetadata('repository', event.repository);
    m.addMetadata('image', `${event.repository}@${event.digest}`);
    for (const [name, [unit, value]] of Object.entries(values)) m.addMetric(name, unit, value);
    m.publishStoredMetrics();
  }

  private init(): Promise<void> {
    this.initialized ??= this.deps.vault.init().catch((e: unknown) => {
      this.initialized = undefined;
      throw e;
    });
    return this.initialized;
  }
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** Why no CloudTrail PutImage will name a pusher, for images that arrive without a push in this registry. */
const ARRIVED_WITHOUT_PUSH: Partial<Record<ImageEvent['origin'], string>> = {
  'pull-through-cache':
    'the image came in through a pull-through cache rule, pulled from its upstream registry: nobody pushed it here, so no CloudTrail PutImage names a pusher',
  replication:
    'the image was replicated into this registry from another region or account: the PutImage that names its pusher was logged where it was pushed',
};

/** SQS's ApproximateReceiveCount: 1 on the first delivery. */
function receiveCount(record: SQSRecord): number {
  return Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
}

function sourceOf(event: ImageEvent): Source {
  return { kind: event.origin, id: event.id };
}

function imageKeys(event: ImageEvent): Record<string, string> {
  return {
    image: `${event.repository}${event.tag ? `:${event.tag}` : ''}@${event.digest}`,
    repository: event.repository,
    eventId: event.id,
    action: event.action,
  };
}
