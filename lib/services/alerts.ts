import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';

/*
 * Alerts for people (an e-mail subscription reads the subject and the text) and for machines (the JSON at the end
 * of the body, and message attributes an SNS filter policy can match: kind, repository, severity).
 */

/** An image as an alert names it: where it lives in ECR, and what the vault calls it. */
export interface AlertImage {
  /** The ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest: string;
}

export type Severity = 'critical' | 'warning';

/** A snapshot failed on its last attempt; the message goes to the dead-letter queue. */
export interface SnapshotFailedAlert {
  readonly kind: 'snapshot-failed';
  readonly image: AlertImage;
  readonly reason: string;
  readonly attempts: number;
  /** The event that asked for the snapshot. */
  readonly event: { readonly id: string; readonly origin: string; readonly time: string };
  /** The vault, `s3://bucket/prefix`. */
  readonly store: string;
}

/** ECR deleted an image (or a tag); the vault keeps everything, and says what to restore. */
export interface ImageDeletedAlert {
  readonly kind: 'image-deleted';
  readonly image: AlertImage;
  readonly deletedAt: string;
  readonly event: { readonly id: string; readonly origin: string };
  /** The newest snapshot of the tag (or of the digest, when the delete named no tag); none: not restorable. */
  readonly lastSnapshot?: { readonly digest: string; readonly snapshottedAt: string };
  readonly store: string;
}

/** A tag in ECR whose digest the vault's history does not record as its latest. */
export interface ReconcileGap {
  readonly image: AlertImage;
  /** When ECR says the image was pushed. */
  readonly pushedAt?: string;
  /** The vault's latest observation of the tag, if it has any. */
  readonly vault?: { readonly digest: string; readonly observedAt: string };
}

/** One gap, or (when a run finds many) all of them in one alert. */
export interface ReconcileGapAlert {
  readonly kind: 'reconcile-gap';
  readonly gaps: readonly ReconcileGap[];
  readonly reconciledAt: string;
  readonly store: string;
}

export type Alert = SnapshotFailedAlert | ImageDeletedAlert | ReconcileGapAlert;

/** What goes to SNS. */
export interface FormattedAlert {
  /** ASCII, one line, under 100 characters (SNS's limits for e-mail subjects). */
  readonly subject: string;
  /** Text for a person, then the alert as JSON. */
  readonly message: string;
  readonly attributes: { readonly kind: string; readonly repository: string; readonly severity: Severity };
}

/** SNS rejects a Subject of 100 characters or more. */
export const MAX_SUBJECT_LENGTH = 99;
const PREFIX = '[imagevault]';
const JSON_MARKER = '--- alert as JSON (for machines) ---';

export function formatAlert(alert: Alert): FormattedAlert {
  switch (alert.kind) {
    case 'snapshot-failed':
      return formatSnapshotFailed(alert);
    case 'image-deleted':
      return formatImageDeleted(alert);
    case 'reconcile-gap':
      return formatReconcileGap(alert);
  }
}

function formatSnapshotFailed(a: SnapshotFailedAlert): FormattedAlert {
  const img = a.image;
  const text = [
    `imagevault could not snapshot an image, ${a.attempts} attempt${a.attempts === 1 ? '' : 's'} in a row. It is NOT protected until a snapshot succeeds.`,
    '',
    field('Image', `${fullName(img)}`),
    field('Digest', img.digest),
    field('Asked by', `${describeOrigin(a.event.origin)} ${a.event.id} at ${a.event.time}`),
    field('Reason', a.reason),
    field('Vault', a.store),
    '',
    "What happens now: the message moves to the snapshot queue's dead-letter queue, and the next reconcile run",
    'enqueues the image again if it is still missing from the vault.',
    '',
    'Next step: fix the cause above, then either redrive the dead-letter queue (SQS console: "Start DLQ redrive")',
    'or snapshot the image by hand:',
    `  aws ecr get-login-password --region ${regionOf(img.registry)} | docker login --username AWS --password-stdin ${img.registry}`,
    `  imagevault snapshot ${img.registry}/${img.repository}@${img.digest} --store ${a.store}`,
  ];
  return {
    subject: subject('snapshot FAILED:', img),
    message: withJson(text, a),
    attributes: { kind: a.kind, repository: img.repository, severity: 'critical' },
  };
}

function formatImageDeleted(a: ImageDeletedAlert): FormattedAlert {
  const img = a.image;
  const last = a.lastSnapshot;
  const text = [
    `An image was deleted from ECR. Nothing was removed from the vault; the delete is recorded in its history.`,
    '',
    field('Image', fullName(img)),
    field('Digest', img.digest),
    field('Deleted at', `${a.deletedAt} (${describeOrigin(a.event.origin)} ${a.event.id})`),
    field(
      'Last snapshot',
      last ? `${last.digest}, snapshotted ${last.snapshottedAt}` : 'NONE - this image was never snapshotted',
    ),
    field('Vault', a.store),
    '',
  ];
  if (last) {
    text.push(
      'Next step: if the delete was a mistake, restore the last snapshot into ECR:',
      `  imagevault restore ${img.repository}@${last.digest} --to ${img.registry}/${img.repository}${img.tag ? `:${img.tag}` : ''} --store ${a.store}`,
      '(the same command with the replica bucket works from the replica region)',
    );
  } else {
    text.push(
      'Next step: the vault cannot restore this image. If it is still needed, rebuild it or find another copy;',
      "then check why it was never snapshotted (the snapshot queue's dead-letter queue, earlier alerts).",
    );
  }
  return {
    subject: subject('image DELETED in ECR:', img),
    message: withJson(text, a),
    attributes: { kind: a.kind, repository: img.repository, severity: last ? 'warning' : 'critical' },
  };
}

function formatReconcileGap(a: ReconcileGapAlert): FormattedAlert {
  const repositories = [...new Set(a.gaps.map((g) => g.image.repository))].sort();
  const text = [
    a.gaps.length === 1
      ? "Reconcile found a tag in ECR that the vault's history does not record: a push event was missed, or the tag was moved without one."
      : `Reconcile found ${a.gaps.length} tags in ECR that the vault's history does not record: push events were missed, or tags were moved without one.`,
    '',
  ];
  for (const g of a.gaps) {
    text.push(
      field('Image', fullName(g.image)),
      field('In ECR now', `${g.image.digest}${g.pushedAt ? ` (image pushed ${g.pushedAt})` : ''}`),
      field(
        'Vault says',
        g.vault ? `${g.vault.digest}, observed ${g.vault.observedAt}` : 'no record of this tag',
      ),
      '',
    );
  }
  text.push(
    field('Reconciled at', a.reconciledAt),
    field('Vault', a.store),
    '',
    'What happens now: each image has been queued for a snapshot, and the history will record each tag at its',
    'current digest.',
    '',
    'Next step: find out who moved the tag (CloudTrail: PutImage in the repository around the push time). If the',
    'move was not intended, restore what the vault recorded before:',
  );
  const restorable = a.gaps.filter((g) => g.vault);
  for (const g of restorable) {
    text.push(
      `  imagevault restore ${g.image.repository}@${g.vault!.digest} --to ${g.image.registry}/${g.image.repository}:${g.image.tag} --store ${a.store}`,
    );
  }
  if (restorable.length === 0)
    text.push('  (nothing to restore: the vault had no earlier record of these tags)');
  const only = a.gaps.length === 1 ? a.gaps[0] : undefined;
  return {
    subject: only
      ? subject('reconcile GAP:', only.image)
      : fit(
          `${PREFIX} reconcile found ${a.gaps.length} GAPS in ${plural(repositories.length, 'repository', 'repositories')}`,
        ),
    message: withJson(text, a),
    attributes: {
      kind: a.kind,
      repository: repositories.length === 1 ? repositories[0] : '*',
      severity: 'warning',
    },
  };
}

/** `[imagevault] <what> <repo:tag> (sha256:1234567890ab...)`, the name shortened to fit in the subject. */
function subject(what: string, img: AlertImage): string {
  const digest = ` (${img.digest.slice(0, img.digest.indexOf(':') + 13)}...)`;
  const head = `${PREFIX} ${what} `;
  const name = shortName(img);
  const room = MAX_SUBJECT_LENGTH - head.length - digest.length;
  const fitted = name.length <= room ? name : `...${name.slice(name.length - room + 3)}`;
  return fit(`${head}${fitted}${digest}`);
}

/** SNS subjects: ASCII, no line breaks, under 100 characters. */
function fit(s: string): string {
  const ascii = s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= MAX_SUBJECT_LENGTH ? ascii : `${ascii.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}

function shortName(img: AlertImage): string {
  return img.tag ? `${img.repository}:${img.tag}` : `${img.repository}@untagged`;
}

function fullName(img: AlertImage): string {
  return `${img.registry}/${img.repository}${img.tag ? `:${img.tag}` : ' (untagged)'}`;
}

function field(name: string, value: string): string {
  return `${`${name}:`.padEnd(15)}${value}`;
}

function describeOrigin(origin: string): string {
  return origin === 'reconcile' ? 'reconcile event' : 'ECR event';
}

function regionOf(registry: string): string {
  return /\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(registry)?.[1] ?? '<region>';
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function withJson(lines: string[], alert: Alert): string {
  return `${lines.join('\n')}\n\n${JSON_MARKER}\n${JSON.stringify({ version: 1, ...alert }, null, 2)}\n`;
}

/** Sends alerts somewhere people and machines see them. */
export interface AlertPublisher {
  publish(alert: Alert): Promise<void>;
}

/** Publishes to an SNS topic: the formatted subject and text, and the attributes as String message attributes. */
export class SnsAlertPublisher implements AlertPublisher {
  constructor(
    private readonly client: SNSClient,
    readonly topicArn: string,
  ) {}

  async publish(alert: Alert): Promise<void> {
    const f = formatAlert(alert);
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: f.subject,
        Message: f.message,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: f.attributes.kind },
          repository: { DataType: 'String', StringValue: f.attributes.repository },
          severity: { DataType: 'String', StringValue: f.attributes.severity },
        },
      }),
    );
  }
}
