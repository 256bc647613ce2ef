import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { actionsOf, resourceOf, statementsOf, vaultStack } from './support';

const VAULT_BUCKET = 'ImageVaultBucket';
const bucketProps = (template: Template) =>
  resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET).Properties as Record<string, unknown>;
const ecrArn = (name: string) => `arn:aws:ecr:eu-west-1:111122223333:repository/${name}`;

describe('ImageVault props', () => {
  describe('repositories', () => {
    // GIVEN two name prefixes
    const { template } = vaultStack({ repositories: ['team-a/', 'payments'] });
    const t = template();

    it('filters the event rule by repository-name prefix', () => {
      // THEN
      t.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.ecr'],
          'detail-type': ['ECR Image Action'],
          detail: {
            'action-type': ['PUSH', 'DELETE'],
            result: ['SUCCESS'],
            'repository-name': [{ prefix: 'team-a/' }, { prefix: 'payments' }],
          },
        },
      });
    });

    it('lets the snapshot Lambda pull only from repositories with those prefixes', () => {
      const pull = statementsOf(t, 'ImageVaultSnapshotRole').find(
        (s) => s.Action instanceof Array && s.Action.includes('ecr:BatchGetImage'),
      );
      expect(pull?.Resource).toEqual([ecrArn('payments*'), ecrArn('team-a/*')]);
    });

    it('lets the reconcile describe images only in those repositories', () => {
      const describe = statementsOf(t, 'ImageVaultReconcileRole').find(
        (s) => s.Action === 'ecr:DescribeImages',
      );
      expect(describe?.Resource).toEqual([ecrArn('payments*'), ecrArn('team-a/*')]);
    });

    it('passes the prefixes to the snapshot, reconcile and inventory Lambdas, comma-joined', () => {
      t.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ REPOSITORY_PREFIXES: 'team-a/,payments' }) } },
        3,
      );
    });

    it("with ['*'] puts no repository filter on the rule and allows repository/*", () => {
      // GIVEN / WHEN
      const all = vaultStack({ repositories: ['*'] }).template();
      // THEN
      const rule = Object.values(
        all.findResources('AWS::Events::Rule', { Properties: { EventPattern: Match.anyValue() } }),
      )[0] as {
        Properties: { EventPattern: { detail: Record<string, unknown> } };
      };
      expect(rule.Properties.EventPattern.detail['repository-name']).toBeUndefined();
      const pull = statementsOf(all, 'ImageVaultSnapshotRole').find(
        (s) => s.Action instanceof Array && s.Action.includes('ecr:BatchGetImage'),
      );
      expect(pull?.Resource).toEqual(ecrArn('*'));
    });
  });

  describe('alertEmails', () => {
    it('subscribes each address to the alert topic', () => {
      // GIVEN / WHEN
      const t = vaultStack({ alertEmails: ['oncall@example.com', 'platform@example.org'] }).template();
      // THEN
      t.resourceCountIs('AWS::SNS::Subscription', 2);
      for (const email of ['oncall@example.com', 'platform@example.org']) {
        t.hasResourceProperties('AWS::SNS::Subscription', {
          Protocol: 'email',
          Endpoint: email,
          TopicArn: { Ref: Match.stringLikeRegexp('^ImageVaultAlertTopic') },
        });
      }
    });
  });

  describe('reconcileSchedule', () => {
    it('schedules the reconcile rule', () => {
      // GIVEN / WHEN
      const t = vaultStack({
        reconcileSchedule: events.Schedule.cron({ minute: '15', hour: '*/2' }),
      }).template();
      // THEN
      t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(15 */2 * * ? *)' });
    });

    it('defaults to every 6 hours', () => {
      vaultStack()
        .template()
        .hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)' });
    });
  });

  describe('objectLock and objectLockDays', () => {
    it("'governance' with 90 days enables Object Lock with a 90-day governance retention", () => {
      // GIVEN / WHEN
      const { template, replicaStack } = vaultStack({
        objectLock: 'governance',
        objectLockDays: 90,
        replicaProps: { objectLock: 'governance', objectLockDays: 90 },
      });
      // THEN
      const expected = {
        ObjectLockEnabled: true,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 90 } },
        },
      };
      expect(bucketProps(template())).toMatchObject(expected);
      Template.fromStack(replicaStack!).hasResourceProperties('AWS::S3::Bucket', expected);
    });

    it("'compliance' defaults to 30 days", () => {
      const { template } = vaultStack({
        objectLock: 'compliance',
        replicaProps: { objectLock: 'compliance' },
      });
      expect(bucketProps(template())).toMatchObject({
        ObjectLockEnabled: true,
        ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } },
      });
    });

    it('lets the replication role read retention and legal holds, so locked versions replicate locked', () => {
      const { template } = vaultStack({
        objectLock: 'compliance',
        replicaProps: { objectLock: 'compliance' },
      });
      expect(actionsOf(template(), 'ImageVaultReplicationRole')).toEqual(
        expect.arrayContaining(['s3:GetObjectRetention', 's3:GetObjectLegalHold']),
      );
    });
  });

  describe('noncurrentExpirationDays', () => {
    it('expires what gc deleted after the given days, under the vault prefix only', () => {
      // GIVEN / WHEN
      const t = vaultStack({ noncurrentExpirationDays: 7, vaultPrefix: 'team-a' }).template();
      // THEN
      const rules = (bucketProps(t).LifecycleConfiguration as { Rules: Array<Record<string, unknown>> })
        .Rules;
      expect(rules.filter((r) => r.NoncurrentVersionExpiration)).toEqual([
        expect.objectContaining({
          Prefix: 'team-a/blobs/',
          NoncurrentVersionExpiration: { NoncurrentDays: 7 },
        }),
        expect.objectContaining({ Prefix: 'team-a/imagevault/referrers/' }),
        expect.objectContaining({ Prefix: 'team-a/imagevault/gc/' }),
        expect.objectContaining({ Prefix: 'team-a/imagevault/inventory/running/' }),
      ]);
    });
  });

  describe('noncurrentTransitionDays and noncurrentStorageClass', () => {
    it('moves noncurrent versions after the given days', () => {
      const t = vaultStack({ noncurrentTransitionDays: 90 }).template();
      expect(JSON.stringify(bucketProps(t).LifecycleConfiguration)).toContain(
        JSON.stringify({ StorageClass: 'GLACIER_IR', TransitionInDays: 90 }),
      );
    });

    it('moves them to the given class', () => {
      const t = vaultStack({
        noncurrentStorageClass: s3.StorageClass.INFREQUENT_ACCESS,
        noncurrentTransitionDays: 45,
      }).template();
      expect(JSON.stringify(bucketProps(t).LifecycleConfiguration)).toContain(
        JSON.stringify({ StorageClass: 'STANDARD_IA', TransitionInDays: 45 }),
      );
    });
  });

  describe('vaultPrefix', () => {
    it('passes the prefix to the seven Lambdas (retention on)', () => {
      const t = vaultStack({
        vaultPrefix: 'team/vault',
        retentionPolicy: { rules: [{ prefix: '', keepLast: 3 }] },
      }).template();
      t.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ VAULT_PREFIX: 'team/vault' }) } },
        7,
      );
    });
  });

  describe('maxSnapshotConcurrency', () => {
    it("caps the SQS event source, and is the snapshot function's reserved concurrency", () => {
      const t = vaultStack({ maxSnapshotConcurrency: 50 }).template();
      t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        ScalingConfig: { MaximumConcurrency: 50 },
      });
      expect(resourceOf(t, 'AWS::Lambda::Function', 'ImageVaultSnapshotFunction').Properties).toMatchObject({
        ReservedConcurrentExecutions: 50,
      });
    });
  });

  describe('reserveConcurrency', () => {
    const fn = (t: Template, id: string) =>
      resourceOf(t, 'AWS::Lambda::Function', id).Properties as Record<string, unknown>;

    it('by default reserves the event source maximum for the snapshot and 1 for the reconcile (no overlap)', () => {
      const t = vaultStack({}, false).template();
      expect(fn(t, 'ImageVaultSnapshotFunction').ReservedConcurrentExecutions).toBe(10);
      expect(fn(t, 'ImageVaultReconcileFunction').ReservedConcurrentExecutions).toBe(1);
      // the others run rarely and briefly: unreserved
      for (const id of [
        'ImageVaultUpstreamFunction',
        'ImageVaultIdentityFunction',
        'ImageVaultScanFunction',
      ]) {
        expect(fn(t, id).ReservedConcurrentExecutions).toBeUndefined();
      }
    });

    it('false: reserves nothing (an account still on the new-account quota)', () => {
      const t = vaultStack({ reserveConcurrency: false }, false).template();
      expect(fn(t, 'ImageVaultSnapshotFunction').ReservedConcurrentExecutions).toBeUndefined();
      expect(fn(t, 'ImageVaultReconcileFunction').ReservedConcurrentExecutions).toBeUndefined();
    });
  });

  describe('images that arrive without a push', () => {
    // GIVEN two name prefixes
    const t = vaultStack({ repositories: ['team-a/', 'payments'] }, false).template();
    const queueTargets = (detailType: string) =>
      Object.values(t.findResources('AWS::Events::Rule')).filter((r) =>
        (r.Properties.EventPattern?.['detail-type'] ?? []).includes(detailType),
      );

    it.each([
      ['ECR Pull Through Cache Action', { 'sync-status': ['SUCCESS'] }],
      ['ECR Replication Action', { result: ['SUCCESS'] }],
    ])('sends successful "%s" events of those repositories to the snapshot queue', (detailType, success) => {
      const rules = queueTargets(detailType);
      expect(rules).toHaveLength(1);
      expect(rules[0].Properties.EventPattern).toEqual({
        source: ['aws.ecr'],
        'detail-type': [detailType],
        detail: { ...success, 'repository-name': [{ prefix: 'team-a/' }, { prefix: 'payments' }] },
      });
      const target = rules[0].Properties.Targets[0];
      expect(JSON.stringify(target.Arn)).toContain('ImageVaultSnapshotQueue');
      expect(JSON.stringify(target.DeadLetterConfig.Arn)).toContain('ImageVaultSnapshotDeadLetterQueue');
    });
  });

  describe('replica', () => {
    // GIVEN no replica
    const t = vaultStack({}, false).template();

    it('omitted: no replication configuration and no replication role', () => {
      expect(bucketProps(t).ReplicationConfiguration).toBeUndefined();
      expect(
        Object.keys(t.findResources('AWS::IAM::Role')).filter((id) => id.includes('Replication')),
      ).toEqual([]);
    });

    it('omitted: no replication alarms or dashboard widget', () => {
      // nine alarms without replication (the inventory's among them), plus the self-test's
      t.resourceCountIs('AWS::CloudWatch::Alarm', 10);
      const body = JSON.stringify(
        resourceOf(t, 'AWS::CloudWatch::Dashboard', 'ImageVaultDashboard').Properties,
      );
      expect(body).not.toContain('Replication');
    });
  });
});

describe('ImageVault.grantRead', () => {
  it('lets a role (e.g. on-call restoring with the CLI) read and list the vault, its versions and interrupted uploads, and decrypt, nothing more', () => {
    // GIVEN
    const { stack, vault, template } = vaultStack();
    const role = new iam.Role(stack, 'OnCall', { assumedBy: new iam.AccountRootPrincipal() });
    // WHEN
    vault.grantRead(role);
    // THEN
    expect(actionsOf(template(), 'OnCall')).toEqual([
      'kms:Decrypt',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      's3:ListBucketVersions',
    ]);
  });
});

describe('VaultReplica.grantRead', () => {
  it('lets a role in the replica region read the replica', () => {
    const { replicaStack } = vaultStack();
    const replica = replicaStack!.node.findChild('Replica') as unknown as {
      grantRead(g: iam.IGrantable): iam.Grant;
    };
    const role = new iam.Role(replicaStack!, 'OnCall', { assumedBy: new iam.AccountRootPrincipal() });
    replica.grantRead(role);
    expect(actionsOf(Template.fromStack(replicaStack!), 'OnCall')).toEqual([
      'kms:Decrypt',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      's3:ListBucketVersions',
    ]);
  });
});

describe('stack defaults', () => {
  it('keeps Lambda logs for a year', () => {
    const t = vaultStack().template();
    t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 365 }, 6);
  });

  it('retains the access log bucket and expires access logs after 365 days', () => {
    const t = vaultStack().template();
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 365 })]) },
      }),
    });
  });
});
