import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  DescribeAlarmHistoryCommand,
  DescribeAlarmsCommand,
  GetMetricStatisticsCommand,
  SetAlarmStateCommand,
} from '@aws-sdk/client-cloudwatch';
import { BatchDeleteImageCommand, DeleteRepositoryCommand, ECRClient } from '@aws-sdk/client-ecr';
import { DescribeRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EcrRepositories, type EcrLocation, type EcrRepositoryState } from './ecr-repositories';

/**
 * The self-test's AWS control-plane calls over the SDK: structurally the `SelfTestAws` of
 * lib/services/selftest-model, which this module does not import (services define the interface, adapters fill it
 * in). Each method is one API call, named in its comment as IAM names it.
 */

/** Where an ECR registry lives (the services' AwsLocation). */
interface Location {
  readonly account: string;
  readonly region: string;
}

export interface AwsSelfTestOptions {
  /** @default `new CloudFormationClient({ region })`, the standard credential chain; undefined region: the SDK's */
  readonly cloudFormation?: (region: string | undefined) => CloudFormationClient;
  /** @default `new CloudWatchClient({ region })` */
  readonly cloudWatch?: (region: string) => CloudWatchClient;
  /** @default `new EventBridgeClient({ region })` */
  readonly eventBridge?: (region: string) => EventBridgeClient;
  /** @default `new ECRClient({ region })` */
  readonly ecr?: (region: string) => ECRClient;
  /**
   * The account and region of a registry host (for DescribeRepositories / CreateRepository). Tests point a local
   * registry at the mocked control plane with it. @default isEcrRegistry
   */
  readonly locate?: (registry: string) => EcrLocation | undefined;
}

/** One client per service and region, made on first use. */
function perRegion<C>(make: (region: string) => C): (region: string) => C {
  const clients = new Map<string, C>();
  return (region) => {
    let c = clients.get(region);
    if (!c) clients.set(region, (c = make(region)));
    return c;
  };
}

export class AwsSelfTest {
  private readonly cloudFormation: (region: string | undefined) => CloudFormationClient;
  private readonly cloudWatch: (region: string) => CloudWatchClient;
  private readonly eventBridge: (region: string) => EventBridgeClient;
  private readonly ecr: (region: string) => ECRClient;
  private readonly repositories: EcrRepositories;

  constructor(options: AwsSelfTestOptions = {}) {
    const cfn = perRegion((region) =>
      options.cloudFormation
        ? options.cloudFormation(region || undefined)
        : new CloudFormationClient(region ? { region } : {}),
    );
    this.cloudFormation = (region) => cfn(region ?? '');
    this.cloudWatch = perRegion(options.cloudWatch ?? ((region) => new CloudWatchClient({ region })));
    this.eventBridge = perRegion(options.eventBridge ?? ((region) => new EventBridgeClient({ region })));
    this.ecr = perRegion(options.ecr ?? ((region) => new ECRClient({ region })));
    this.repositories = new EcrRepositories({ client: this.ecr, locate: options.locate });
  }

  /** cloudformation:DescribeStacks; undefined when the stack does not exist. */
  async describeStack(
    stackName: string,
    region: string | undefined,
  ): Promise<
    { stackId: string; status: string; outputs: Record<string, string>; deployedAt?: Date } | undefined
  > {
    let out;
    try {
      out = await this.cloudFormation(region).send(new DescribeStacksCommand({ StackName: stackName }));
    } catch (e) {
      // CloudFormation answers a missing stack with a ValidationError "Stack with id X does not exist".
      if (errorName(e) === 'ValidationError' && /does not exist/.test((e as Error).message)) return undefined;
      throw e;
    }
    const stack = out.Stacks?.[0];
    if (!stack?.StackId) return undefined;
    const outputs: Record<string, string> = {};
    for (const o of stack.Outputs ?? [])
      if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
    const deployedAt = stack.LastUpdatedTime ?? stack.CreationTime;
    return {
      stackId: stack.StackId,
      status: stack.StackStatus ?? 'UNKNOWN',
      outputs,
      ...(deployedAt ? { deployedAt } : {}),
    };
  }

  /** ecr:DescribeRepositories, and ecr:CreateRepository when it is missing. */
  ensureRepository(registry: string, repository: string): Promise<EcrRepositoryState> {
    return this.repositories.ensureRepository(registry, repository);
  }

  /** ecr:DescribeRepositories. */
  describeRepository(registry: string, repository: string): Promise<EcrRepositoryState | undefined> {
    return this.repositories.describeRepository(registry, repository);
  }

  /** ecr:BatchDeleteImage by tag; the tags ECR did not delete, as `tag: code reason`. */
  async deleteImageTags(where: Location, repository: string, tags: readonly string[]): Promise<string[]> {
    const out = await this.ecr(where.region).send(
      new BatchDeleteImageCommand({
        registryId: where.account,
        repositoryName: repository,
        imageIds: tags.map((imageTag) => ({ imageTag })),
      }),
    );
    return (out.failures ?? []).map((f) =>
      `${f.imageId?.imageTag ?? f.imageId?.imageDigest ?? '?'}: ${f.failureCode ?? ''} ${f.failureReason ?? ''}`.trim(),
    );
  }

  /** ecr:DeleteRepository, with whatever images are still in it (only for a repository the self-test created). */
  async deleteRepository(where: Location, repository: string): Promise<void> {
    await this.ecr(where.region).send(
      new DeleteRepositoryCommand({ registryId: where.account, repositoryName: repository, force: true }),
    );
  }

  /** cloudwatch:DescribeAlarms of one metric alarm. */
  async describeAlarm(
    region: string,
    name: string,
  ): Promise<{ state: string; actionsEnabled: boolean; alarmActions: string[] } | undefined> {
    const out = await this.cloudWatch(region).send(
      new DescribeAlarmsCommand({ AlarmNames: [name], AlarmTypes: ['MetricAlarm'] }),
    );
    const alarm = out.MetricAlarms?.find((a) => a.AlarmName === name);
    if (!alarm) return undefined;
    return {
      state: alarm.StateValue ?? 'INSUFFICIENT_DATA',
      actionsEnabled: alarm.ActionsEnabled ?? true,
      alarmActions: alarm.AlarmActions ?? [],
    };
  }

  /** cloudwatch:SetAlarmState. */
  async setAlarmState(region: string, name: string, state: 'OK' | 'ALARM', reason: string): Promise<void> {
    await this.cloudWatch(region).send(
      new SetAlarmStateCommand({ AlarmName: name, StateValue: state, StateReason: reason }),
    );
  }

  /**
   * cloudwatch:DescribeAlarmHistory, the `Action` items since `since`, newest first. Their HistoryData is JSON with
   * `actionState` (Succeeded / Failed) and `error`; the summary reads "Successfully executed action <arn>" or
   * "Failed to execute action <arn>".
   */
  async alarmActions(
    region: string,
    name: string,
    since: Date,
  ): Promise<Array<{ time: Date; succeeded: boolean; summary: string; error?: string }>> {
    const out = await this.cloudWatch(region).send(
      new DescribeAlarmHistoryCommand({
        AlarmName: name,
        HistoryItemType: 'Action',
        StartDate: since,
        ScanBy: 'TimestampDescending',
        MaxRecords: 10,
      }),
    );
    return (out.AlarmHistoryItems ?? []).map((item) => {
      const summary = item.HistorySummary ?? '';
      let data: { actionState?: string; error?: unknown } = {};
      try {
        data = JSON.parse(item.HistoryData ?? '{}') as typeof data;
      } catch {
        // the summary alone decides
      }
      const succeeded = data.actionState
        ? data.actionState === 'Succeeded'
        : summary.startsWith('Successfully executed action');
      const error = typeof data.error === 'string' && data.error ? data.error : undefined;
      return { time: item.Timestamp ?? since, succeeded, summary, ...(error ? { error } : {}) };
    });
  }

  /** events:DescribeRule; undefined when the rule does not exist. */
  async describeRule(
    region: string,
    name: string,
  ): Promise<{ state: string; scheduleExpression?: string } | undefined> {
    try {
      const out = await this.eventBridge(region).send(new DescribeRuleCommand({ Name: name }));
      return {
        state: out.State ?? 'UNKNOWN',
        ...(out.ScheduleExpression ? { scheduleExpression: out.ScheduleExpression } : {}),
      };
    } catch (e) {
      if (errorName(e) === 'ResourceNotFoundException') return undefined;
      throw e;
    }
  }

  /**
   * cloudwatch:GetMetricStatistics, AWS/Lambda Invocations (Sum) of one function. Chosen over the newest log
   * stream (logs:DescribeLogStreams): it counts every invocation, needs only the function's name, and is not the
   * eventually consistent `lastEventTimestamp` that CloudWatch Logs documents as lagging up to an hour.
   */
  async invocations(
    region: string,
    functionName: string,
    start: Date,
    end: Date,
    periodSeconds: number,
  ): Promise<Array<{ time: Date; sum: number }>> {
    const out = await this.cloudWatch(region).send(
      new GetMetricStatisticsCommand({
        Namespace: 'AWS/Lambda',
        MetricName: 'Invocations',
        Dimensions: [{ Name: 'FunctionName', Value: functionName }],
        StartTime: start,
        EndTime: end,
        Period: periodSeconds,
        Statistics: ['Sum'],
      }),
    );
    return (out.Datapoints ?? []).flatMap((d) =>
      d.Timestamp ? [{ time: d.Timestamp, sum: d.Sum ?? 0 }] : [],
    );
  }
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}
