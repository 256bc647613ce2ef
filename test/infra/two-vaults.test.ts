import { App, Stack, type StackProps } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ImageVault, VaultReplica } from '../../lib/infra';
import { PRIMARY, SECONDARY } from './support';

/**
 * Properties that name a resource in the account and region (two resources with the same value collide): by
 * resource type, the property path. Names scoped to something else (a role's inline policy, a table in its
 * database) cannot collide between vaults and are not listed.
 */
const PHYSICAL_NAMES: Record<string, string[]> = {
  'AWS::S3::Bucket': ['BucketName'],
  'AWS::KMS::Alias': ['AliasName'],
  'AWS::SQS::Queue': ['QueueName'],
  'AWS::SNS::Topic': ['TopicName'],
  'AWS::Lambda::Function': ['FunctionName'],
  'AWS::IAM::Role': ['RoleName'],
  'AWS::IAM::ManagedPolicy': ['ManagedPolicyName'],
  'AWS::Logs::LogGroup': ['LogGroupName'],
  'AWS::Events::Rule': ['Name'],
  'AWS::CloudWatch::Alarm': ['AlarmName'],
  'AWS::CloudWatch::Dashboard': ['DashboardName'],
  'AWS::CloudTrail::Trail': ['TrailName'],
  'AWS::Glue::Database': ['DatabaseInput.Name'],
};

/** Every physical name set in the templates, as `type property=value`. */
function physicalNames(...templates: Template[]): string[] {
  return templates.flatMap((t) =>
    Object.values(
      t.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>,
    )
      .flatMap((r) =>
        (PHYSICAL_NAMES[r.Type] ?? []).map((p) => {
          const value = p
            .split('.')
            .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], r.Properties);
          return value === undefined ? undefined : `${r.Type} ${p}=${JSON.stringify(value)}`;
        }),
      )
      .filter((n): n is string => n !== undefined),
  );
}

/** cdk-nag AwsSolutions over a synthesized app. */
function nagViolations(app: App): string[] {
  app.synth();
  return new AwsSolutionsChecks(app).validateScope(app).violations.map((v) => v.ruleName);
}

/** Two teams' vaults, each on its own repositories and key prefix, with a replica each, and all alerts on. */
const teamProps = (team: string, replica: VaultReplica) => ({
  replica: replica.target,
  repositories: [`${team}/`],
  vaultPrefix: team,
  alertEmails: [`${team}@example.com`],
  provenanceTrail: 'create' as const,
});

describe('two vaults in one account', () => {
  it('side by side in one stack: synthesized, cdk-nag clean, no physical name twice', () => {
    // GIVEN
    const app = new App();
    const replicas = new Stack(app, 'Replicas', { env: SECONDARY, crossRegionReferences: true });
    const stack = new Stack(app, 'Vaults', { env: PRIMARY, crossRegionReferences: true });
    // WHEN
    for (const team of ['team-a', 'team-b']) {
      new ImageVault(stack, team, teamProps(team, new VaultReplica(replicas, `${team}-replica`)));
    }
    // THEN
    expect(nagViolations(app)).toEqual([]);
    const names = physicalNames(Template.fromStack(stack), Template.fromStack(replicas));
    expect(names).toEqual([
      expect.stringMatching(/^AWS::Glue::Database /),
      expect.stringMatching(/^AWS::Glue::Database /),
    ]);
    expect(new Set(names).size).toBe(2);
  });

  it('in two stacks of one app: synthesized, cdk-nag clean, no physical name twice', () => {
    // GIVEN
    const app = new App();
    const replicas = new Stack(app, 'Replicas', { env: SECONDARY, crossRegionReferences: true });
    // WHEN
    const stacks = ['team-a', 'team-b'].map((team) => {
      const stack = new Stack(app, `${team}-vault`, { env: PRIMARY, crossRegionReferences: true });
      new ImageVault(stack, 'Vault', teamProps(team, new VaultReplica(replicas, `${team}-replica`)));
      return stack;
    });
    // THEN
    expect(nagViolations(app)).toEqual([]);
    const names = physicalNames(...stacks.map((s) => Template.fromStack(s)), Template.fromStack(replicas));
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
  });

  it('in two apps whose stacks differ only in their names: the one physical name differs too', () => {
    // GIVEN two teams that copied the same app and gave their stacks their own names
    const glueName = (stackName: string) => {
      const app = new App();
      const props: StackProps = { env: PRIMARY, stackName };
      const stack = new Stack(app, 'Vault', props);
      new ImageVault(stack, 'Vault');
      // WHEN
      return physicalNames(Template.fromStack(stack));
    };
    // THEN
    const [a, b] = [glueName('team-a-vault'), glueName('team-b-vault')];
    expect(a).toHaveLength(1);
    expect(a).not.toEqual(b);
  });
});
