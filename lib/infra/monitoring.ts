import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { VAULT_DEFAULTS } from './vault-defaults';
import { REPLICATION_RULE_ID, type VaultReplicaTarget } from './vault-bucket';

/** What Monitoring watches: the queues and functions of the other parts, the vault bucket and its replica. */
export interface MonitoringProps {
  /** Where every alarm publishes. */
  readonly alertTopic: sns.ITopic;
  /** The vault bucket, the source of replication. */
  readonly bucket: s3.IBucket;
  /** @default - no replication alarms or widget */
  readonly replica?: VaultReplicaTarget;
  /** ECR image actions waiting to be snapshotted. */
  readonly snapshotQueue: sqs.IQueue;
  /** The snapshot queue's dead letters. */
  readonly snapshotDeadLetterQueue: sqs.IQueue;
  /** The snapshot Lambda. */
  readonly snapshotFunction: lambda.IFunction;
  /** The upstream check Lambda. */
  readonly upstreamFunction: lambda.IFunction;
  /** The identity Lambda and its dead-letter queue. */
  readonly identity: { readonly fn: lambda.IFunction; readonly deadLetterQueue: sqs.IQueue };
  /** The scan Lambda and its dead-letter queue. */
  readonly scan: { readonly fn: lambda.IFunction; readonly deadLetterQueue: sqs.IQueue };
  /** The reconcile Lambda. */
  readonly reconcileFunction: lambda.IFunction;
}

/**
 * The alarms, each publishing to the alert topic with a description that says what to do next, the self-test alarm,
 * and the dashboard: queue depth and age, Lambda durations and errors, bytes copied, replication.
 */
export class Monitoring extends Construct {
  /** The alarms, each publishing to the alert topic; the self-test alarm last. */
  readonly alarms: cloudwatch.Alarm[] = [];
  /**
   * An alarm on a metric nothing publishes, so it never fires by itself: `imagevault aws selftest` sets it to ALARM
   * to send a test alert through the path every alarm uses (alarm → topic → key → subscriptions).
   */
  readonly selfTestAlarm: cloudwatch.Alarm;
  /** Queue depth and age, Lambda durations and errors, bytes copied, replication. */
  readonly dashboard: cloudwatch.Dashboard;
  private readonly action: cwActions.SnsAction;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: MonitoringProps,
  ) {
    super(scope, id);
    this.action = new cwActions.SnsAction(props.alertTopic);
    this.createAlarms();
    this.selfTestAlarm = this.createSelfTestAlarm();
    this.dashboard = this.createDashboard();
  }

  private add(id: string, props: cloudwatch.AlarmProps): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
    });
    alarm.addAlarmAction(this.action);
    this.alarms.push(alarm);
  }

  /** An alarm on any error of a function in five minutes. */
  private errors(id: string, fn: lambda.IFunction, alarmDescription: string): void {
    this.add(id, {
      alarmDescription,
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
  }

  /** An alarm on any message in a dead-letter queue. */
  private deadLetters(id: string, queue: sqs.IQueue, alarmDescription: string): void {
    this.add(id, {
      alarmDescription,
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
  }

  private createAlarms(): void {
    const { props } = this;
    this.deadLetters(
      'DeadLetterAlarm',
      props.snapshotDeadLetterQueue,
      'imagevault: an ECR image action failed 3 times and is in the dead-letter queue. Next step: read the message and the snapshot logs, fix the cause, then redrive the DLQ (SQS console: "Start DLQ redrive").',
    );
    this.errors(
      'SnapshotErrorsAlarm',
      props.snapshotFunction,
      'imagevault: the snapshot Lambda failed (crash or timeout). SQS retries the batch; after 3 receives it goes to the DLQ. Next step: read the snapshot logs.',
    );
    this.errors(
      'UpstreamErrorsAlarm',
      props.upstreamFunction,
      'imagevault: the upstream check Lambda failed, so moved upstream base tags are not being reported. Next step: read the upstream logs (a missing or malformed credentials secret is named there).',
    );
    const writers = [
      {
        id: 'Identity',
        ...props.identity,
        lost: 'who pushed an image may be missing from its provenance record',
        event: 'a CloudTrail PutImage event',
      },
      {
        id: 'Scan',
        ...props.scan,
        lost: "an image's scan findings may be missing from its provenance record",
        event: 'an ECR/Inspector scan result',
      },
    ];
    for (const w of writers) {
      const name = w.id.toLowerCase();
      this.errors(
        `${w.id}ErrorsAlarm`,
        w.fn,
        `imagevault: the ${name} Lambda failed, so ${w.lost}. Lambda retries twice, then the event goes to the ${name} DLQ. Next step: read the ${name} logs.`,
      );
      this.deadLetters(
        `${w.id}DeadLetterAlarm`,
        w.deadLetterQueue,
        `imagevault: ${w.event} could not be recorded and is in the ${name} dead-letter queue. Next step: read the message and the ${name} logs, fix the cause, then re-invoke the ${name} Lambda with the message body.`,
      );
    }
    this.errors(
      'ReconcileErrorsAlarm',
      props.reconcileFunction,
      'imagevault: the reconcile Lambda failed, so images missed by events are not being backfilled. Next step: read the reconcile logs.',
    );
    if (props.replica) {
      this.add('ReplicationLatencyAlarm', {
        alarmDescription:
          'imagevault: replication to the replica bucket is more than 15 minutes behind. Next step: check S3 replication metrics and the replication role; the primary vault is unaffected.',
        metric: this.replicationMetric(props.replica, 'ReplicationLatency', cloudwatch.Stats.MAXIMUM),
        threshold: VAULT_DEFAULTS.replicationLatencyAlarm.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      this.add('ReplicationFailedAlarm', {
        alarmDescription:
          'imagevault: S3 failed to replicate objects to the replica bucket. Next step: check the replication role and the replica key (KMS) permissions.',
        metric: this.replicationMetric(props.replica, 'OperationsFailedReplication', cloudwatch.Stats.SUM),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
  }

  private createSelfTestAlarm(): cloudwatch.Alarm {
    this.add('SelfTestAlarm', {
      alarmDescription:
        'imagevault self-test: `imagevault aws selftest` set this alarm to ALARM to check that alerts reach you. Nothing to do: no metric ever breaches it, so it returns to OK by itself.',
      // Nothing publishes this metric; with missing data not breaching, only SetAlarmState moves the alarm.
      metric: new cloudwatch.Metric({
        namespace: 'imagevault',
        metricName: 'SelfTest',
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(1),
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
    return this.alarms[this.alarms.length - 1];
  }

  private replicationMetric(
    replica: VaultReplicaTarget,
    metricName: string,
    statistic: string,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName,
      dimensionsMap: {
        SourceBucket: this.props.bucket.bucketName,
        DestinationBucket: replica.bucket.bucketName,
        RuleId: REPLICATION_RULE_ID,
      },
      statistic,
      period: Duration.minutes(5),
    });
  }

  private createDashboard(): cloudwatch.Dashboard {
    const { props } = this;
    const fiveMinutes = Duration.minutes(5);
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(7),
    });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Snapshot queue',
        left: [
          props.snapshotQueue.metricApproximateNumberOfMessagesVisible({
            period: fiveMinutes,
            label: 'waiting',
          }),
          props.snapshotQueue.metricApproximateAgeOfOldestMessage({
            period: fiveMinutes,
            label: 'oldest (s)',
          }),
        ],
        right: [
          props.snapshotDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: fiveMinutes,
            label: 'dead letters',
          }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Snapshot Lambda',
        left: [
          props.snapshotFunction.metricDuration({ period: fiveMinutes, statistic: cloudwatch.Stats.p(90) }),
          props.snapshotFunction.metricDuration({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }),
        ],
        right: [
          props.snapshotFunction.metricErrors({ period: fiveMinutes }),
          props.reconcileFunction.metricErrors({ period: fiveMinutes, label: 'Reconcile errors' }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Bytes copied into the vault',
        left: [
          new cloudwatch.Metric({
            namespace: 'imagevault',
            metricName: 'BytesCopied',
            dimensionsMap: { service: 'imagevault-snapshot' },
            statistic: cloudwatch.Stats.SUM,
            period: fiveMinutes,
          }),
        ],
      }),
    );
    if (props.replica) {
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Replication to the replica region',
          left: [this.replicationMetric(props.replica, 'ReplicationLatency', cloudwatch.Stats.MAXIMUM)],
          right: [
            this.replicationMetric(props.replica, 'OperationsPendingReplication', cloudwatch.Stats.MAXIMUM),
          ],
        }),
      );
    }
    return dashboard;
  }
}
