import { Stack, Validations, type App } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { appFromContext, newApp } from './support';

/** cdk-nag AwsSolutions over a synthesized app, as the validation plugin runs it during `cdk synth`. */
function nagViolations(app: App) {
  app.synth();
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.map(
    (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(', ')}`,
  );
}

/** Every acknowledgment in the tree: rule ID → reason. */
function acknowledgments(root: IConstruct): Array<[string, string]> {
  return root.node
    .findAll()
    .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
    .flatMap((m) => Object.entries(m.data as Record<string, string>));
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the app with its defaults', () => {
    expect(nagViolations(appFromContext().app)).toEqual([]);
  });

  it('finds nothing unacknowledged with repository prefixes, Object Lock, e-mail alerts and autoRestoreInUse', () => {
    const { app } = appFromContext({
      autoRestoreInUse: true,
      repositories: ['team-a/', 'payments'],
      objectLock: 'compliance',
      objectLockDays: 365,
      alertEmails: ['oncall@example.com'],
      vaultPrefix: 'vault',
    });
    expect(nagViolations(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with retention, EKS clusters and a second inventory region', () => {
    const { app } = appFromContext({
      vaultPrefix: 'vault',
      objectLock: 'governance',
      eksClusters: ['prod-eks'],
      inventoryRegions: ['us-west-2'],
      retentionPolicy: { rules: [{ prefix: '', keepLast: 10 }] },
    });
    expect(nagViolations(app)).toEqual([]);
  });

  it('acknowledges only these findings, each with a reason', () => {
    // GIVEN
    const { app } = appFromContext({ repositories: ['team-a/'] });
    app.synth();
    // WHEN
    const acks = acknowledgments(app);
    // THEN
    for (const [, reason] of acks) expect(reason.length).toBeGreaterThan(20);
    expect([...new Set(acks.map(([id]) => id).filter((id) => id.includes('AwsSolutions')))].sort()).toEqual([
      'Annotation::AwsSolutions-IAM5[Resource::*]',
      'Annotation::AwsSolutions-IAM5[Resource::<VaultBucket4BAA7C86.Arn>/*]',
      'Annotation::AwsSolutions-IAM5[Resource::<VaultBucket4BAA7C86.Arn>/imagevault/inventory/*]',
      'Annotation::AwsSolutions-IAM5[Resource::<VaultBucket4BAA7C86.Arn>/imagevault/provenance/*]',
      'Annotation::AwsSolutions-IAM5[Resource::<VaultBucket4BAA7C86.Arn>/imagevault/repositories/*]',
      'Annotation::AwsSolutions-IAM5[Resource::<VaultBucket4BAA7C86.Arn>/imagevault/upstream/*]',
      'Annotation::AwsSolutions-IAM5[Resource::arn:aws:ecr:us-east-1:<AWS::AccountId>:repository/team-a/*]',
      'Annotation::AwsSolutions-IAM5[Resource::arn:aws:ecs:us-east-1:<AWS::AccountId>:task/*]',
      'Annotation::AwsSolutions-IAM5[Resource::arn:aws:lambda:us-east-1:<AWS::AccountId>:function:*]',
      'Annotation::AwsSolutions-IAM5[Resource::{"Fn::GetStackOutput":{"StackName":"ImageVaultReplica","Region":"us-west-2","OutputName":"PublishOutputFnGetAttReplicaBucket69A78C64Arn1FADB829"}}/*]',
      'Annotation::AwsSolutions-S1',
    ]);
  });

  it('does report an unacknowledged wildcard (the check is live)', () => {
    // GIVEN a role with a wildcard nobody acknowledged
    const app = newApp();
    const stack = new Stack(app, 'Bad', { env: { region: 'eu-west-1' } });
    new iam.Role(stack, 'Role', { assumedBy: new iam.AccountRootPrincipal() }).addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }),
    );
    // THEN
    expect(nagViolations(app)).toEqual(expect.arrayContaining([expect.stringMatching(/^AwsSolutions-IAM5/)]));
  });
});
