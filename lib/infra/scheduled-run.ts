import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/**
 * A function run on a schedule (retried twice by EventBridge) and an alarm to the alerts topic on any error in a
 * quarter hour: how the inventory and retention functions are driven. A missed run is not data loss for either (the
 * next one catches up), so one alarm per failure is the whole of their monitoring.
 */
export function scheduledRun(
  scope: Construct,
  id: { rule: string; alarm: string },
  props: {
    fn: lambda.IFunction;
    schedule: events.Schedule;
    description: string;
    alarmDescription: string;
    topic: sns.ITopic;
  },
): { rule: events.Rule; errorsAlarm: cloudwatch.Alarm } {
  const rule = new events.Rule(scope, id.rule, {
    description: props.description,
    schedule: props.schedule,
    targets: [new targets.LambdaFunction(props.fn, { retryAttempts: 2 })],
  });
  const errorsAlarm = new cloudwatch.Alarm(scope, id.alarm, {
    alarmDescription: props.alarmDescription,
    metric: props.fn.metricErrors({ period: Duration.minutes(15), statistic: cloudwatch.Stats.SUM }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  errorsAlarm.addAlarmAction(new cwActions.SnsAction(props.topic));
  return { rule, errorsAlarm };
}
