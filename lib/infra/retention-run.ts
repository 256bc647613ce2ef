import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { acknowledgeWildcards } from './acknowledge';
import { policyProblemsAtSynth } from './retention-policy-check';
import type { Alerts } from './alerts';
import { checkInteger, type Problems } from './validation';
import type { VaultBucket } from './vault-bucket';
import { scheduledRun } from './scheduled-run';
import { vaultFunction } from './vault-function';

/** The retention policy as JSON: `{ rules: [{ prefix, keepLast, keepWithin, keepTags, keepUntagged }], inUseWindow }`. */
export type RetentionPolicyDocument = Record<string, unknown>;

/** The retention props of ImageVault. */
export interface RetentionRunOptions {
  /**
   * A retention policy (the JSON of `imagevault retention plan --policy FILE`, see the README), checked at synth
   * with every problem named. Given, a function applies it on `retentionSchedule` and then runs gc; it is the only
   * role of the vault that may delete, and only blobs, referrer links and gc's own files. It never forgets an image
   * on hold or in use (the inventory's), nor each tag's newest push.
   *
   * @default - no retention: the vault keeps everything and nothing can delete
   */
  readonly retentionPolicy?: RetentionPolicyDocument;

  /**
   * When retention and gc run. gc deletes only what an earlier run marked, after every snapshot running at the mark
   * has ended: daily, a blob goes a day or two after the last image that needed it was forgotten.
   *
   * @default events.Schedule.rate(Duration.days(1))
   */
  readonly retentionSchedule?: events.Schedule;

  /**
   * gc's grace period in hours: blobs written more recently are never marked (a snapshot may still be copying them).
   *
   * @default 24
   */
  readonly gcGraceHours?: number;
}

/** Defaults of RetentionRunOptions. */
export const RETENTION_DEFAULTS = {
  every: Duration.days(1),
  gcGraceHours: 24,
  /** Walking every kept image's graph is many small reads: memory buys network throughput. */
  memoryMb: 1024,
  /** The Lambda maximum; gc stops cleanly two minutes before it (lib/aws/handlers/retention.ts). */
  timeout: Duration.minutes(15),
};

/** Validates RetentionRunOptions into `problems`; the policy with the same checks as the CLI's. */
export function checkRetentionOptions(
  problems: Problems,
  options: RetentionRunOptions,
  inventory: boolean,
): void {
  if (options.retentionPolicy === undefined) {
    const set = (['retentionSchedule', 'gcGraceHours'] as const).filter((k) => options[k] !== undefined);
    if (set.length > 0) problems.add(`${set.join(', ')} is set but retentionPolicy is not: retention is off`);
    return;
  }
  for (const p of policyProblemsAtSynth(options.retentionPolicy)) problems.add(`retentionPolicy: ${p}`);
  if (!inventory)
    problems.add(
      'retentionPolicy is set but inventory is false: without the inventory nothing counts as in use, and retention could forget what runs',
    );
  if (options.gcGraceHours !== undefined)
    checkInteger(problems, 'gcGraceHours', options.gcGraceHours, 1, 8760);
}

/** Props of RetentionRun. */
export interface RetentionRunProps extends RetentionRunOptions {
  /** The vault it applies the policy to and collects. */
  readonly vault: VaultBucket;
  /** Where its errors alarm publishes. */
  readonly alerts: Alerts;
  /** The policy (checked by checkRetentionOptions). */
  readonly retentionPolicy: RetentionPolicyDocument;
  /** Reserve a concurrency of 1: two runs at once are safe, only slower. */
  readonly reserveConcurrency: boolean;
}

/**
 * Scheduled retention and gc: a function that appends forget records and gc's protocol files, and deletes blobs,
 * referrer links and gc files (VaultBucket.grantRetention) — no other role of the vault can delete; an alarm on its
 * errors.
 */
export class RetentionRun extends Construct {
  /** The retention Lambda: the only one that may delete. */
  readonly function: lambda.Function;
  /** Its schedule. */
  readonly rule: events.Rule;
  /** An alarm on any error of the function. */
  readonly errorsAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RetentionRunProps) {
    super(scope, id);
    const { vault, alerts } = props;
    this.function = vaultFunction(this, 'Retention', {
      entry: 'retention',
      memorySize: RETENTION_DEFAULTS.memoryMb,
      timeout: RETENTION_DEFAULTS.timeout,
      description: 'Applies the imagevault retention policy, then deletes the blobs no kept image needs (gc)',
      environment: {
        VAULT_BUCKET: vault.bucket.bucketName,
        VAULT_PREFIX: vault.vaultPrefix,
        RETENTION_POLICY: JSON.stringify(props.retentionPolicy),
        GC_GRACE_HOURS: String(props.gcGraceHours ?? RETENTION_DEFAULTS.gcGraceHours),
        POWERTOOLS_SERVICE_NAME: 'imagevault-retention',
        NODE_OPTIONS: '--enable-source-maps',
      },
      ...(props.reserveConcurrency && { reservedConcurrentExecutions: 1 }),
    });
    const role = this.function.role!;
    vault.grantRead(role);
    vault.grantRetention(role);
    acknowledgeWildcards(role, [
      [
        vault.bucket.arnForObjects('*'),
        'retention reads every image graph (keys are content addresses); the same ARN denies version deletes and governance bypass',
      ],
    ]);
    ({ rule: this.rule, errorsAlarm: this.errorsAlarm } = scheduledRun(
      this,
      { rule: 'RetentionSchedule', alarm: 'RetentionErrorsAlarm' },
      {
        fn: this.function,
        schedule: props.retentionSchedule ?? events.Schedule.rate(RETENTION_DEFAULTS.every),
        description: 'Runs the imagevault retention policy and gc',
        alarmDescription:
          'imagevault: the retention Lambda failed, so the policy was not applied or gc did not finish (nothing is deleted on a partial answer; a stopped sweep is finished by the next run). Next step: read the retention logs; a kept image that cannot be read is named there (imagevault verify).',
        topic: alerts.topic,
      },
    ));
  }
}
