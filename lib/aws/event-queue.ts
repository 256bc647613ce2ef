import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { EventError, type EventQueue, type ImageActionEvent } from '../events';

/** Thrown when SQS refuses messages reconcile enqueues (after one retry of the retryable ones). */
export class EnqueueError extends EventError {
  constructor(message: string) {
    super(message);
    this.name = 'EnqueueError';
  }
}

/** SendMessageBatch accepts at most 10 entries per call. */
const SQS_BATCH_SIZE = 10;

/** The snapshot queue over SQS: SendMessageBatch in tens, failed entries retried once (they are often throttles). */
export class SqsEventQueue implements EventQueue {
  constructor(
    private readonly client: SQSClient,
    readonly queueUrl: string,
  ) {}

  async send(events: readonly ImageActionEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += SQS_BATCH_SIZE) {
      const batch = events
        .slice(i, i + SQS_BATCH_SIZE)
        .map((e, j) => ({ Id: `m${j}`, MessageBody: JSON.stringify(e) }));
      let pending = batch;
      for (let attempt = 1; pending.length > 0; attempt++) {
        const out = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }),
        );
        const failed = out.Failed ?? [];
        if (failed.length === 0) break;
        const retryable = failed.filter((f) => !f.SenderFault);
        if (attempt >= 2 || retryable.length < failed.length) {
          const why = failed.map((f) => `${f.Id}: ${f.Code ?? 'error'} ${f.Message ?? ''}`.trim()).join('; ');
          throw new EnqueueError(
            `SQS SendMessageBatch to ${this.queueUrl} refused ${failed.length} message(s): ${why}`,
          );
        }
        const ids = new Set(retryable.map((f) => f.Id));
        pending = pending.filter((p) => ids.has(p.Id));
      }
    }
  }
}
