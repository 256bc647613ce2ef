import { Match, Template } from 'aws-cdk-lib/assertions';
import { appFromContext } from './support';

// GIVEN the app as `cdk synth` builds it from cdk.json's defaults, with a vault prefix and two repository prefixes
const { vault } = appFromContext({ vaultPrefix: 'team-a', repositories: 'team-a/,payments' });
const template = Template.fromStack(vault);
const ref = (idPrefix: string) => ({ Ref: Match.stringLikeRegexp(`^${idPrefix}`) });

describe('what imagevault aws selftest needs from the stacks', () => {
  it('has a test alarm on a metric nothing publishes, alerting to the topic, that never fires by itself', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'imagevault',
      MetricName: 'SelfTest',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [ref('VaultAlertTopic')],
      AlarmDescription: Match.stringLikeRegexp('imagevault aws selftest'),
    });
    // Only the ALARM transition mails: no OK action, so returning to OK sends nothing.
    const alarm = Object.values(
      template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'SelfTest' } }),
    )[0] as { Properties: Record<string, unknown> };
    expect(alarm.Properties.OKActions).toBeUndefined();
  });

  it.each([
    ['SelfTestAlarmName', ref('VaultSelfTestAlarm')],
    ['ReconcileScheduleName', ref('VaultReconcileSchedule')],
    ['UpstreamScheduleName', ref('VaultUpstreamSchedule')],
    ['ReconcileFunctionName', ref('VaultReconcileFunction')],
    ['UpstreamFunctionName', ref('VaultUpstreamFunction')],
    ['ProtectedRepositories', 'team-a/,payments'],
    ['ReplicaStackName', 'ImageVaultReplica'],
    ['ReplicaRegion', 'us-west-2'],
  ])('outputs %s', (name, value) => {
    template.hasOutput(name, { Value: value });
  });

  it('outputs the vault as a store URL with its prefix', () => {
    template.hasOutput('VaultStoreUrl', {
      Value: { 'Fn::Join': ['', ['s3://', ref('VaultBucket'), '/team-a']] },
    });
  });

  it('outputs the store URL without a prefix when there is none', () => {
    const plain = Template.fromStack(appFromContext().vault);
    plain.hasOutput('VaultStoreUrl', { Value: { 'Fn::Join': ['', ['s3://', ref('VaultBucket')]] } });
  });
});
