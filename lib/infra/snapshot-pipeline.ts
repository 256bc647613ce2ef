import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeWildcards } from './acknowledge';
import type { Alerts } from './alerts';
import {
  ecrImageActionPattern,
  ecrPullThroughCachePattern,
  ecrReplicationPattern,
  repositoryArns,
} from './event-patterns';
import type { VaultBucket } from './vault-bucket';
import { VAULT_DEFAULTS } from './vault-defaults';
import {
  grantUpstreamCredentials,
  upstreamCredentialsEnvironment,
  vaultEnvironment,
  vaultFunction,
} from './vault-function';

/** Props of SnapshotPipeline. */
export interface SnapshotPipelineProps {
  /** The vault the images are snapshotted into. */
  readonly vault: VaultBucket;
  /** Where snapshot failures are alerted; its key encrypts the queues. */
  readonly alerts: Alerts;
  /** The protected repositories: `['*']` or name prefixes. */
  readonly repositories: readonly string[];
  /** PROVENANCE_LOCK_MODE/DAYS for the function; empty without Object Lock. */
  readonly lockEnvironment: Record<string, string>;
  /** Most snapshot Lambdas running at once (the event source's maximum concurrency). */
  readonly maxConcurrency: number;
  /** Reserve `maxConcurrency` for the function, so that the queue's pollers are never throttled. */
  readonly reserveConcurrency: boolean;
  /** @default - none: only annotations, provenance and the previous push */
  readonly candidateBases?: Record<string, string[]>;
  /** @default - none: candidate bases are read anonymously */
  readonly upstreamCredentialsSecret?: secretsmanager.ISecret;
  /** The deletion guard pushes a deleted image that runs back into its repository. */
  readonly autoRestoreInUse: boolean;
}

/**
 * The event path of every image: ECR pushes, deletes, pull-through cache syncs and replications in the protected
 * repositories → EventBridge rules → an SQS queue (dead-letter queue after `maxReceiveCount` receives, and for events
 * EventBridge cannot deliver) → the snapshot Lambda, which copies each image by digest into the vault.
 */
export class SnapshotPipeline extends Construct {
  /** ECR image actions waiting to be snapshotted. */
  readonly queue: sqs.Queue;
  /** Messages that failed `maxReceiveCount` times, and events EventBridge could not deliver. */
  readonly deadLetterQueue: sqs.Queue;
  /** Snapshots one ECR image per queue message into the vault. */
  readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: SnapshotPipelineProps) {
    super(scope, id);
    const { vault, alerts, repositories } = props;
    const timeout = VAULT_DEFAULTS.snapshotTimeout;
    this.deadLetterQueue = new sqs.Queue(this, 'SnapshotDeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: alerts.messagingKey,
      dataKeyReuse: Duration.hours(1),
      enforceSSL: true,
      retentionPeriod: VAULT_DEFAULTS.retention,
    });
    this.queue = new sqs.Queue(this, 'SnapshotQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: alerts.messagingKey,
      dataKeyReuse: Duration.hours(1),
      enforceSSL: true,
      retentionPeriod: VAULT_DEFAULTS.retention,
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * VAULT_DEFAULTS.visibilityTimeoutFactor),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: VAULT_DEFAULTS.maxReceiveCount },
    });

    const rule = new events.Rule(this, 'EcrImageActionRule', {
      description: 'ECR pushes and deletes in the protected repositories, to the imagevault snapshot queue',
      eventPattern: ecrImageActionPattern(repositories),
    });
    // Events EventBridge cannot deliver (after its retries) land in the DLQ too, and are alarmed on there. The target
    // adds the queue policy and the messaging key's grant for events.amazonaws.com (this account only).
    rule.addTarget(new targets.SqsQueue(this.queue, { deadLetterQueue: this.deadLetterQueue }));
    // Images that arrive without a push: a pull-through cache fills a repository on the first pull, registry
    // replication copies images in from another region or account. Each has its own event; without these rules
    // such images would wait for the reconcile and be alerted as gaps.
    for (const [ruleId, description, eventPattern] of [
      [
        'EcrPullThroughCacheRule',
        'ECR pull-through cache syncs in the protected repositories, to the imagevault snapshot queue',
        ecrPullThroughCachePattern(repositories),
      ],
      [
        'EcrReplicationRule',
        'ECR replications into the protected repositories, to the imagevault snapshot queue',
        ecrReplicationPattern(repositories),
      ],
    ] as const) {
      new events.Rule(this, ruleId, { description, eventPattern }).addTarget(
        new targets.SqsQueue(this.queue, { deadLetterQueue: this.deadLetterQueue }),
      );
    }

    this.function = vaultFunction(this, 'Snapshot', {
      entry: 'snapshot',
      memorySize: VAULT_DEFAULTS.snapshotMemoryMb,
      timeout,
      description: 'Snapshots one ECR image (by digest) into the imagevault bucket',
      environment: {
        ...vaultEnvironment(vault, alerts, repositories),
        POWERTOOLS_SERVICE_NAME: 'imagevault-snapshot',
        // The attempt on which a failure is final (the message goes to the DLQ): the handler alerts then.
        MAX_RECEIVE_COUNT: String(VAULT_DEFAULTS.maxReceiveCount),
        ...(props.candidateBases && Object.keys(props.candidateBases).length > 0
          ? { CANDIDATE_BASES: JSON.stringify(props.candidateBases) }
          : {}),
        // Base detection reads candidate bases from upstream registries: with the upstream login, not anonymously
        // from Lambda's shared addresses (Docker Hub rate-limits anonymous pulls per address).
        ...upstreamCredentialsEnvironment(props.upstreamCredentialsSecret),
        ...(props.autoRestoreInUse && { AUTO_RESTORE_IN_USE: 'true' }),
        ...props.lockEnvironment,
      },
      ...(props.reserveConcurrency && { reservedConcurrentExecutions: props.maxConcurrency }),
    });
    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: VAULT_DEFAULTS.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency,
      }),
    );
    const role = this.function.role!;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
    );
    const protectedRepositories = repositoryArns(this, repositories);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
        resources: protectedRepositories,
      }),
    );
    if (props.autoRestoreInUse) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          // The deletion guard's restore: exactly the distribution API's push (BatchCheckLayerAvailability is
          // granted above), and DescribeRepositories for tag immutability. No CreateRepository: a repository deleted
          // with its images is restored by a person, with the command the alert gives.
          actions: [
            'ecr:InitiateLayerUpload',
            'ecr:UploadLayerPart',
            'ecr:CompleteLayerUpload',
            'ecr:PutImage',
            'ecr:DescribeRepositories',
          ],
          resources: protectedRepositories,
        }),
      );
    }
    // The deletion guard reads the in-use inventory (imagevault/inventory/…) through the vault's read grant.
    vault.grantRead(role);
    vault.grantSnapshotWrite(role);
    alerts.grantPublish(role);
    grantUpstreamCredentials(role, props.upstreamCredentialsSecret);
    acknowledgeWildcards(role, [
      ['*', 'ecr:GetAuthorizationToken has no resource-level permissions'],
      [vault.bucket.arnForObjects('*'), 'vault keys are content addresses, not known in advance'],
      ...protectedRepositories.map((arn): [string, string] => [
        arn,
        'the protected repositories, by name prefix',
      ]),
    ]);
  }
}
