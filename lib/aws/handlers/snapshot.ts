import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseImageEvent, type ImageEvent } from '../../events';
import { redactSecrets } from '../../registry';
import type { Registries } from '../../registry';
import { SnapshotEvents, type EventOutcome, type SnapshotEventDeps } from '../../services/snapshot-events';

/*
 * The snapshot queue's handler: SQS batches of image events, each given to SnapshotEvents (lib/services) one at a
 * time. What is the queue's: a record that fails is reported in batchItemFailures, so SQS delivers it again; on the
 * attempt that sends it to the dead-letter queue (ApproximateReceiveCount ≥ maxReceiveCount) a snapshot-failed
 * alert goes out first; each snapshot's figures go out as EMF metrics.
 */

/** How much of an unreadable message an alert quotes: enough to recognise the sender, well within SNS's limit. */
const UNREADABLE_EXCERPT_CHARS = 1000;

export interface SnapshotHandlerDeps extends SnapshotEventDeps {
  /**
   * The registry clients, or a factory called once per batch (for tests that want a fresh client each time). A
   * long-lived instance is fine: clients ask their provider again when an ECR credential nears its expiry.
   */
  readonly registries: Registries | (() => Registries);
  /** @default a Powertools Logger (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL from the environment) */
  readonly logger?: Logger;
  /** @default Powertools Metrics (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME from the environment) */
  readonly metrics?: Metrics;
  /** The queue's maxReceiveCount: a failure on this attempt (or later) is final and alerted. @default 3 */
  readonly maxReceiveCount?: number;
  /** Add the repository as a metric dimension (one custom metric per repository and name). @default false */
  readonly metricsPerRepository?: boolean;
  /**
   * A record is started only while at least this much of the invocation is left (the Lambda context's
   * getRemainingTimeInMillis); the others are reported as batch item failures without being started, so SQS
   * delivers only them again. The event says nothing of the image's size, so the floor is fixed: 3 minutes copies
   * ~15 GiB at the 85 MiB/s projected for ECR → S3 at the default memory (README, Lambda sizing; most images, and every image's remaining blobs on a retry, since
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

/**
 * The SQS handler: records one at a time (see processEvent), failures reported per record. A record is not started
 * when less than `startMarginMs` of the invocation is left: one slow image then costs the records after it a
 * redelivery, not the whole batch a timeout (which would count a receive against every record and alert none).
 */
export function createSnapshotHandler(deps: SnapshotHandlerDeps): SnapshotHandler {
  const processor = new BatchProcessor(EventType.SQS);
  const logger = deps.logger ?? new Logger();
  const queue = new SnapshotQueue(deps, logger);
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
          if (left !== undefined && left < margin) return queue.notStarted(record, left, margin);
          return queue.handleRecord(record, registries);
        },
        processor,
        { context, processInParallel: false },
      );
    } finally {
      if (registries !== deps.registries) await queue.events.close(registries);
    }
  };
}

/** One SQS record at a time: its attempt, its alerts on the last one, its metrics. */
class SnapshotQueue {
  readonly events: SnapshotEvents;
  private readonly maxReceiveCount: number;
  private readonly metrics: Metrics;

  constructor(
    private readonly deps: SnapshotHandlerDeps,
    private readonly logger: Logger,
  ) {
    this.events = new SnapshotEvents(deps, logger);
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
      const { outcome, copy } = await this.events.processEvent(event, registries, log);
      if (copy) {
        this.publishMetrics(event, {
          BytesCopied: [MetricUnit.Bytes, copy.bytes.copied],
          BlobsCopied: [MetricUnit.Count, copy.blobs.copied + copy.blobs.mounted],
          BlobsSkipped: [MetricUnit.Count, copy.blobs.skipped],
          SnapshotSeconds: [MetricUnit.Seconds, copy.seconds],
        });
        log.debug('copy summary', { copy: { ...copy, root: undefined } });
      }
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
          registry: this.events.registryOf(event),
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
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** SQS's ApproximateReceiveCount: 1 on the first delivery. */
function receiveCount(record: SQSRecord): number {
  return Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
}

function imageKeys(event: ImageEvent): Record<string, string> {
  return {
    image: `${event.repository}${event.tag ? `:${event.tag}` : ''}@${event.digest}`,
    repository: event.repository,
    eventId: event.id,
    action: event.action,
  };
}
