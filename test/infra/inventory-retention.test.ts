import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { Duration } from 'aws-cdk-lib';
import { ImageVaultConfigError } from '../../lib/infra';
import { appFromContext, statementsOf, vaultStack } from './support';

const POLICY = { rules: [{ prefix: 'team/', keepLast: 5, keepTags: ['prod'] }], inUseWindow: '7d' };
const ARN = (service: string, resource: string) => `arn:aws:${service}:eu-west-1:111122223333:${resource}`;

/** Every statement of every role's policies in a template, with the role's logical ID. */
function allStatements(t: Template): Array<{ role: string; statement: Record<string, unknown> }> {
  return Object.values(t.findResources('AWS::IAM::Policy')).flatMap((p) => {
    const props = (p as { Properties: Record<string, unknown> }).Properties as {
      Roles: Array<{ Ref: string }>;
      PolicyDocument: { Statement: Array<Record<string, unknown>> };
    };
    return props.Roles.flatMap((r) =>
      props.PolicyDocument.Statement.map((statement) => ({ role: r.Ref, statement })),
    );
  });
}
const actions = (s: Record<string, unknown>) => ([] as string[]).concat(s.Action as string | string[]);
const resources = (s: Record<string, unknown>) => ([] as unknown[]).concat(s.Resource);

describe('Construct: ImageVault', () => {
  describe('in-use inventory', () => {
    // GIVEN the defaults and one EKS cluster
    const t = vaultStack({ eksClusters: ['prod-eks'], inventoryRegions: ['us-east-1'] }).template();
    const role = 'ImageVaultInventoryScanInventoryRole';

    it('runs every 15 minutes by default', () => {
      t.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(15 minutes)',
        Targets: [
          Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('InventoryFunction'), 'Arn'] } }),
        ],
      });
    });

    it('may call exactly the List and Describe actions it uses, scoped to its regions and clusters', () => {
      const byAction = new Map<string, unknown[]>();
      for (const s of statementsOf(t, role))
        for (const a of actions(s)) byAction.set(a, [...(byAction.get(a) ?? []), ...resources(s)]);
      expect(byAction.get('ecs:ListClusters')).toEqual(['*']);
      expect(byAction.get('ecs:ListTasks')).toEqual(['*']);
      expect(byAction.get('lambda:ListFunctions')).toEqual(['*']);
      expect(byAction.get('ecs:DescribeTasks')).toEqual([
        ARN('ecs', 'task/*'),
        'arn:aws:ecs:us-east-1:111122223333:task/*',
      ]);
      expect(byAction.get('lambda:GetFunction')).toEqual([
        ARN('lambda', 'function:*'),
        'arn:aws:lambda:us-east-1:111122223333:function:*',
      ]);
      expect(byAction.get('eks:DescribeCluster')).toEqual([ARN('eks', 'cluster/prod-eks')]);
      const services = [...byAction.keys()].filter((a) => /^(ecs|lambda|eks|sts):/.test(a)).sort();
      expect(services).toEqual([
        'ecs:DescribeTasks',
        'ecs:ListClusters',
        'ecs:ListTasks',
        'eks:DescribeCluster',
        'lambda:GetFunction',
        'lambda:ListFunctions',
      ]);
    });

    it('writes only under imagevault/inventory/ and sends only to the snapshot queue', () => {
      const writes = statementsOf(t, role).filter((s) => actions(s).includes('s3:PutObject'));
      expect(writes).toHaveLength(1);
      expect(JSON.stringify(writes[0].Resource)).toMatch(
        /^\{"Fn::Join":\["",\[\{"Fn::GetAtt":\["ImageVaultBucket\w+","Arn"\]\},"\/imagevault\/inventory\/\*"\]\]\}$/,
      );
      const send = statementsOf(t, role).filter((s) => actions(s).includes('sqs:SendMessage'));
      expect(send).toHaveLength(1);
      expect(JSON.stringify(send[0].Resource)).toMatch(
        /^\{"Fn::GetAtt":\["ImageVaultSnapshotQueue\w+","Arn"\]\}$/,
      );
    });

    it('gives its role read access to each cluster by an EKS access entry with the view policy', () => {
      t.hasResourceProperties('AWS::EKS::AccessEntry', {
        ClusterName: 'prod-eks',
        PrincipalArn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${role}`), 'Arn'] },
        AccessPolicies: [
          {
            PolicyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
            AccessScope: { Type: 'cluster' },
          },
        ],
      });
    });

    it('alarms on its errors', () => {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('InventoryFunction') } }],
        AlarmActions: [{ Ref: Match.stringLikeRegexp('^ImageVaultAlertTopic') }],
      });
    });

    it('creates no access entry with eksAccessEntries false, and takes its schedule', () => {
      const u = vaultStack({
        eksClusters: ['prod-eks'],
        eksAccessEntries: false,
        inventorySchedule: events.Schedule.rate(Duration.hours(1)),
      }).template();
      u.resourceCountIs('AWS::EKS::AccessEntry', 0);
      u.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    });

    it('is off with inventory false: no function, no rule, no alarm of its own', () => {
      const u = vaultStack({ inventory: false }).template();
      expect(JSON.stringify(u.toJSON())).not.toContain('imagevault-inventory');
      u.resourceCountIs('AWS::CloudWatch::Alarm', 11);
    });

    it('refuses bad regions and cluster names, and settings of an inventory that is off, all at once', () => {
      expect(() =>
        vaultStack({ inventoryRegions: ['mars-1'], eksClusters: ['-bad'], inventory: false }),
      ).toThrow(
        expect.objectContaining({
          problems: [
            `inventoryRegions: "mars-1" is not an AWS region like 'eu-west-1'`,
            'eksClusters: "-bad" is not an EKS cluster name (letters, digits, - and _; at most 100)',
            'inventory is false but inventoryRegions, eksClusters is set: turn the inventory on',
          ],
        }),
      );
    });
  });

  describe('retention', () => {
    it('is off by default: no retention function, and no role of the vault may delete anything', () => {
      const t = vaultStack().template();
      expect(JSON.stringify(t.toJSON())).not.toContain('imagevault-retention');
      const deletes = allStatements(t).filter(
        ({ statement }) =>
          statement.Effect === 'Allow' && actions(statement).some((a) => /^s3:(Delete|\*)/.test(a)),
      );
      expect(deletes).toEqual([]);
    });

    // GIVEN a policy, a vault prefix and Object Lock
    const { app } = appFromContext({
      region: 'eu-west-1',
      replicaRegion: 'eu-central-1',
      vaultPrefix: 'team-a',
      objectLock: 'governance',
      retentionPolicy: JSON.stringify(POLICY),
    });
    const stacks = app.synth().stacks;
    const vault = Template.fromJSON(stacks.find((s) => s.stackName === 'ImageVault')!.template as object);
    const retentionRole = Object.keys(vault.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith('VaultRetentionRunRetentionRole'),
    )!;

    it('runs daily, with the policy it was given, one run at a time', () => {
      vault.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({
            POWERTOOLS_SERVICE_NAME: 'imagevault-retention',
            RETENTION_POLICY: JSON.stringify(POLICY),
            GC_GRACE_HOURS: '24',
            VAULT_PREFIX: 'team-a',
          }),
        },
        Timeout: 900,
        ReservedConcurrentExecutions: 1,
      });
      vault.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)' });
    });

    it('lets only the retention role delete, in any stack of the app', () => {
      for (const s of stacks) {
        const deleters = allStatements(Template.fromJSON(s.template as object))
          .filter(({ statement }) => statement.Effect === 'Allow')
          .filter(({ statement }) => actions(statement).some((a) => /^s3:(Delete|\*)|^s3:.*\*/.test(a)))
          .map(({ role }) => role);
        expect([...new Set(deleters)]).toEqual(s.stackName === 'ImageVault' ? [retentionRole] : []);
      }
    });

    it("scopes the retention role's deletes to blobs, referrer links and gc files under the vault prefix, and denies version deletes and governance bypass", () => {
      const mine = allStatements(vault)
        .filter(({ role }) => role === retentionRole)
        .map(({ statement }) => statement);
      const deletes = mine.filter(
        (s) => s.Effect === 'Allow' && actions(s).some((a) => a.startsWith('s3:Delete')),
      );
      expect(deletes.flatMap(actions)).toEqual(['s3:DeleteObject']);
      const keys = deletes
        .flatMap(resources)
        .map((r) => JSON.stringify(r).replace(/.*"\/(.*)"\]\]\}$/, '$1'));
      expect(keys.sort()).toEqual([
        'team-a/blobs/*',
        'team-a/imagevault/gc/*',
        'team-a/imagevault/referrers/*',
      ]);
      const deny = mine.find((s) => s.Effect === 'Deny');
      expect(deny && actions(deny).sort()).toEqual([
        's3:BypassGovernanceRetention',
        's3:DeleteObjectVersion',
      ]);
      // It appends forget records and gc files only.
      const puts = mine.filter((s) => actions(s).includes('s3:PutObject')).flatMap(resources);
      expect(puts.map((r) => JSON.stringify(r).replace(/.*"\/(.*)"\]\]\}$/, '$1')).sort()).toEqual([
        'team-a/imagevault/gc/*',
        'team-a/imagevault/retention/forgotten/*',
      ]);
    });

    it('alarms on its errors', () => {
      vault.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Dimensions: [
          {
            Name: 'FunctionName',
            Value: { Ref: Match.stringLikeRegexp('^VaultRetentionRunRetentionFunction') },
          },
        ],
      });
    });

    it('refuses a bad policy at synth, naming every problem at once', () => {
      let error: unknown;
      try {
        vaultStack({
          retentionPolicy: {
            rules: [
              { prefix: 'a/', keepWithin: '30x' },
              { prefix: 'a/', keepLast: 0 },
            ],
            extra: 1,
          },
          gcGraceHours: 0,
        });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ImageVaultConfigError);
      expect([...(error as ImageVaultConfigError).problems].sort()).toEqual([
        'gcGraceHours 0 must be a whole number from 1 to 8760',
        'retentionPolicy: (policy): Unrecognized key: "extra"',
        'retentionPolicy: rules[0].keepWithin "30x": is not a duration (e.g. 30d, 12h, 1y2w)',
        'retentionPolicy: rules[1].keepLast 0: Too small: expected number to be >=1',
        'retentionPolicy: rules[1].prefix "a/": "a/" is given twice',
      ]);
    });

    it('refuses a policy without the inventory: what runs would not be known', () => {
      expect(() => vaultStack({ retentionPolicy: POLICY, inventory: false })).toThrow(
        /retentionPolicy is set but inventory is false/,
      );
    });

    it('refuses a policy context that is not JSON', () => {
      expect(() => appFromContext({ retentionPolicy: '{rules' })).toThrow(
        /retentionPolicy "\{rules" is not a JSON object/,
      );
    });
  });
});
