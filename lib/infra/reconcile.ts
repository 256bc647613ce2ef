import { Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { acknowledgeWildcards } from './acknowledge';
import type { Alerts } from './alerts';
import { repositoryArns } from './event-patterns';
import type { VaultBucket } from './vault-bucket';
import { VAULT_DEFAULTS } from './vault-defaults';
import { vaultEnvironment, vaultFunction } from './vault-function';

/** Props of Reconcile. */
export interface ReconcileProps {
  /** The vault the reconcile compares ECR with. */
  readonly vault: VaultBucket;
  /** Where gap alerts go; its key encrypts the snapshot queue. */
  readonly alerts: Alerts;
  /** The protected repositories: `['*']` or name prefixes. */
  readonly repositories: readonly string[];
  /** PROVENANCE_LOCK_MODE/DAYS for the function; empty without Object Lock. */
  readonly lockEnvironment: Record<string, string>;
  /** Where images the vault lacks are enqueued. */
  readonly snapshotQueue: sqs.IQueue;
  /** What the run after deployment waits for: the snapshot queue and function, the vault. */
  readonly runAfter: Construct[];
  /** @default events.Schedule.rate(Duration.hours(6)) */
  readonly schedule?: events.Schedule;
  /** Reserve a concurrency of 1, so that two runs never overlap. */
  readonly reserveConcurrency: boolean;
}

/**
 * The reconcile: on a schedule and once after each deployment that changes it, enqueues every image in ECR that the
 * vault does not hold yet (the backfill of images pushed before imagevault existed, and of events missed), records
 * tags deleted without an event, refreshes index.json and the provenance of replicated images, and alerts on tags
 * that point at digests the vault has no record of.
 */
export class Reconcile extends Construct {
  /** The reconcile Lambda. */
  readonly function: lambda.Function;
  /** Its schedule. */
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ReconcileProps) {
    super(scope, id);
    const { vault, alerts, repositories } = props;
    this.function = vaultFunction(this, 'Reconcile', {
      entry: 'reconcile',
      memorySize: VAULT_DEFAULTS.reconcileMemoryMb,
      timeout: VAULT_DEFAULTS.reconcileTimeout,
      description: 'Enqueues ECR images the imagevault bucket does not hold yet; alerts on gaps',
      environment: {
        ...vaultEnvironment(vault, alerts, repositories),
        QUEUE_URL: props.snapshotQueue.queueUrl,
        POWERTOOLS_SERVICE_NAME: 'imagevault-reconcile',
        ...props.lockEnvironment,
      },
      ...(props.reserveConcurrency && { reservedConcurrentExecutions: 1 }),
    });
    const role = this.function.role!;
    const protectedRepositories = repositoryArns(this, repositories);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        // Listing repositories is authorized against all of them; it returns names and settings, no images.
        actions: ['ecr:DescribeRepositories'],
        resources: ['*'],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecr:DescribeImages'], resources: protectedRepositories }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.snapshotQueue.queueArn] }),
    );
    alerts.grantEncrypt(role);
    vault.grantRead(role);
    vault.grantReconcileWrite(role);
    alerts.grantPublish(role);
    acknowledgeWildcards(role, [
      ['*', 'ecr:DescribeRepositories lists all repositories; the reconcile filters them by prefix'],
      [vault.bucket.arnForObjects('*'), 'vault keys are content addresses, not known in advance'],
      ...protectedRepositories.map((arn): [string, string] => [
        arn,
        'the protected repositories, by name prefix',
      ]),
    ]);

    this.rule = new events.Rule(this, 'ReconcileSchedule', {
      description: 'Runs the imagevault reconcile',
      schedule: props.schedule ?? events.Schedule.rate(VAULT_DEFAULTS.reconcileEvery),
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 2 })],
    });
    // Once after the first deployment (and again whenever the function or its configuration changes, e.g. a new
    // repository prefix): this is the backfill of images pushed before imagevault existed. Asynchronous, so the
    // deployment does not wait for it; a failure shows in the reconcile errors alarm.
    new triggers.Trigger(this, 'ReconcileAfterDeploy', {
      handler: this.function,
      invocationType: triggers.InvocationType.EVENT,
      executeAfter: props.runAfter,
    });
    Validations.of(this.function).acknowledge({
      id: 'Annotation::@aws-cdk/aws-lambda:addPermissionsToVersionOrAlias',
      reason: 'EventBridge invokes the unqualified function; the version exists only to re-run the trigger.',
    });
  }
}
