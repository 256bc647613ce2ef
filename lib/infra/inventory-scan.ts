import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeWildcards } from './acknowledge';
import type { Alerts } from './alerts';
import type { Problems } from './validation';
import type { VaultBucket } from './vault-bucket';
import { scheduledRun } from './scheduled-run';
import { vaultFunction } from './vault-function';

/** The in-use inventory's props of ImageVault. */
export interface InventoryScanOptions {
  /**
   * Scan on a schedule where images run, into the vault's in-use inventory (`imagevault/inventory/`): ECS tasks and
   * Lambda container functions in this stack's region (and `inventoryRegions`), and the pods of `eksClusters`.
   * Retention and gc never forget or delete what it saw running. A running digest the vault lacks is put on the
   * snapshot queue when it is in a protected repository of this account's ECR here, else logged as a gap.
   *
   * @default true
   */
  readonly inventory?: boolean;

  /**
   * When the inventory scans. Every 15 minutes by default: an image that starts running is in the inventory (and,
   * if the vault lacked it, queued for a snapshot) within 15 minutes, well inside the reconcile's 6 hours, and the
   * List/Describe calls cost nothing; the function's compute is about $0.20 a month.
   *
   * @default events.Schedule.rate(Duration.minutes(15))
   */
  readonly inventorySchedule?: events.Schedule;

  /**
   * More regions whose ECS and Lambda the inventory scans (this stack's region always is). A gap found there is
   * logged, not queued: the snapshot function copies from this region's ECR only.
   *
   * @default - none
   */
  readonly inventoryRegions?: string[];

  /**
   * EKS clusters (names, in this stack's region) whose pods the inventory lists. The function's role must be able
   * to list pods in each: see `eksAccessEntries`.
   *
   * @default - none
   */
  readonly eksClusters?: string[];

  /**
   * Give the inventory's role read access to each of `eksClusters` with an EKS access entry
   * (`AWS::EKS::AccessEntry`, access policy `AmazonEKSViewPolicy` on the whole cluster: it can read pods, not
   * Secrets). Needs the cluster's authentication mode `API` or `API_AND_CONFIG_MAP`; for a `CONFIG_MAP` cluster set
   * `false` and map the role in `aws-auth` to a group bound to a ClusterRole that may `list` `pods`.
   *
   * @default true
   */
  readonly eksAccessEntries?: boolean;
}

/** Defaults of InventoryScanOptions, named so that the README and the tests quote the same numbers. */
export const INVENTORY_DEFAULTS = {
  inventory: true,
  every: Duration.minutes(15),
  eksAccessEntries: true,
  /** A scan lists and describes: seconds, bounded by the API calls' latency, not by CPU. */
  memoryMb: 512,
  timeout: Duration.minutes(5),
};

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;

/** Validates InventoryScanOptions into `problems`. */
export function checkInventoryOptions(problems: Problems, options: InventoryScanOptions): void {
  for (const r of options.inventoryRegions ?? [])
    if (!REGION.test(r)) problems.add(`inventoryRegions: "${r}" is not an AWS region like 'eu-west-1'`);
  for (const c of options.eksClusters ?? [])
    if (!CLUSTER_NAME.test(c))
      problems.add(`eksClusters: "${c}" is not an EKS cluster name (letters, digits, - and _; at most 100)`);
  if (options.inventory === false) {
    const set = (['inventorySchedule', 'inventoryRegions', 'eksClusters'] as const).filter((k) => {
      const v = options[k];
      return v !== undefined && !(Array.isArray(v) && v.length === 0);
    });
    if (set.length > 0)
      problems.add(`inventory is false but ${set.join(', ')} is set: turn the inventory on`);
  }
}

/** Props of InventoryScan. */
export interface InventoryScanProps extends InventoryScanOptions {
  /** The vault it records the inventory in. */
  readonly vault: VaultBucket;
  /** Where its errors alarm publishes; its key encrypts the snapshot queue. */
  readonly alerts: Alerts;
  /** The protected repositories: only their gaps go onto the snapshot queue. */
  readonly repositories: readonly string[];
  /** The snapshot queue. */
  readonly snapshotQueue: sqs.IQueue;
}

/**
 * The scheduled in-use inventory: a function that lists what runs on ECS, Lambda and EKS (List and Describe calls
 * only), writes only under `imagevault/inventory/` in the vault, and sends the running digests the vault lacks to
 * the snapshot queue; an alarm on its errors.
 */
export class InventoryScan extends Construct {
  /** The inventory Lambda. */
  readonly function: lambda.Function;
  /** Its schedule. */
  readonly rule: events.Rule;
  /** An alarm on any error of the function (a source that could not be scanned fails it). */
  readonly errorsAlarm: cloudwatch.Alarm;
  /** One per EKS cluster, with `eksAccessEntries`. */
  readonly accessEntries: eks.CfnAccessEntry[] = [];

  constructor(scope: Construct, id: string, props: InventoryScanProps) {
    super(scope, id);
    const { vault, alerts } = props;
    const stack = Stack.of(this);
    const clusters = props.eksClusters ?? [];
    const regions = [...new Set([stack.region, ...(props.inventoryRegions ?? [])])];
    this.function = vaultFunction(this, 'Inventory', {
      entry: 'inventory',
      memorySize: INVENTORY_DEFAULTS.memoryMb,
      timeout: INVENTORY_DEFAULTS.timeout,
      description: 'Records which image digests run on ECS, Lambda and EKS in the imagevault bucket',
      environment: {
        VAULT_BUCKET: vault.bucket.bucketName,
        VAULT_PREFIX: vault.vaultPrefix,
        QUEUE_URL: props.snapshotQueue.queueUrl,
        REPOSITORY_PREFIXES: props.repositories.join(','),
        POWERTOOLS_SERVICE_NAME: 'imagevault-inventory',
        NODE_OPTIONS: '--enable-source-maps',
        ...(props.inventoryRegions?.length ? { INVENTORY_REGIONS: props.inventoryRegions.join(',') } : {}),
        ...(clusters.length > 0 ? { EKS_CLUSTERS: clusters.join(',') } : {}),
      },
    });
    const role = this.function.role!;
    const arn = (service: string, region: string, resource: string, sep = ':') =>
      `arn:${stack.partition}:${service}:${region}:${stack.account}${sep}${resource}`;
    // Listings with no resource of their own: they return ARNs, names and images, nothing secret.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:ListClusters', 'ecs:ListTasks', 'lambda:ListFunctions'],
        resources: ['*'],
      }),
    );
    const tasks = regions.map((r) => arn('ecs', r, 'task/*'));
    const functions = regions.map((r) => arn('lambda', r, 'function:*'));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecs:DescribeTasks'], resources: tasks }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['lambda:GetFunction'], resources: functions }),
    );
    if (clusters.length > 0)
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['eks:DescribeCluster'],
          resources: clusters.map((c) => arn('eks', stack.region, `cluster/${c}`)),
        }),
      );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.snapshotQueue.queueArn] }),
    );
    alerts.grantEncrypt(role);
    vault.grantRead(role);
    vault.grantInventoryWrite(role);
    acknowledgeWildcards(role, [
      ['*', 'ecs:ListClusters, ecs:ListTasks and lambda:ListFunctions are listings authorized on "*"'],
      [vault.bucket.arnForObjects('*'), 'vault keys are content addresses, not known in advance'],
      ...tasks.map((t): [string, string] => [t, 'every running task of the account is scanned']),
      ...functions.map((f): [string, string] => [
        f,
        'every container-image function of the account is scanned',
      ]),
    ]);

    if (props.eksAccessEntries ?? INVENTORY_DEFAULTS.eksAccessEntries)
      clusters.forEach((clusterName, i) =>
        this.accessEntries.push(
          new eks.CfnAccessEntry(this, `EksAccess${i}`, {
            clusterName,
            principalArn: role.roleArn,
            type: 'STANDARD',
            accessPolicies: [
              {
                policyArn: `arn:${stack.partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy`,
                accessScope: { type: 'cluster' },
              },
            ],
          }),
        ),
      );

    ({ rule: this.rule, errorsAlarm: this.errorsAlarm } = scheduledRun(
      this,
      { rule: 'InventorySchedule', alarm: 'InventoryErrorsAlarm' },
      {
        fn: this.function,
        schedule: props.inventorySchedule ?? events.Schedule.rate(INVENTORY_DEFAULTS.every),
        description: 'Runs the imagevault in-use inventory',
        alarmDescription:
          'imagevault: the inventory Lambda failed or a source could not be scanned, so what runs may be missing from the in-use inventory (retention keeps what a failed source ran before). Next step: read the inventory logs; a denied list call or an EKS 401/403 (access entry) is named there.',
        topic: alerts.topic,
      },
    ));
  }
}
