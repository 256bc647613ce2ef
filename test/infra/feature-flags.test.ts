import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { ImageVault, VaultReplica } from '../../lib/infra';
import { PINNED_FEATURE_FLAGS, TEMPLATE_ONLY_FEATURE_FLAGS } from '../../lib/infra/feature-flags';

/**
 * The constructs in an app with the given context and nothing else (no cdk.json): a replica stack and a vault stack
 * with most features on, and a role granted read.
 */
function synth(context: Record<string, unknown>) {
  const app = new App({ context });
  const replicaStack = new Stack(app, 'Replica', {
    env: { region: 'eu-central-1' },
    crossRegionReferences: true,
  });
  const replica = new VaultReplica(replicaStack, 'Replica', { objectLock: 'governance' });
  const stack = new Stack(app, 'Vault', { env: { region: 'eu-west-1' }, crossRegionReferences: true });
  const vault = new ImageVault(stack, 'Vault', {
    replica: replica.target,
    repositories: ['team-a/'],
    objectLock: 'governance',
    alertEmails: ['oncall@example.com'],
    provenanceTrail: 'create',
  });
  vault.grantRead(new iam.Role(stack, 'OnCall', { assumedBy: new iam.AccountRootPrincipal() }));
  const assembly = app.synth();
  return {
    replica: Template.fromStack(replicaStack),
    vault: Template.fromStack(stack),
    templates: Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template])),
  };
}

/** `flag: value` of the recommended flags that are named. */
const recommended = (flags: readonly string[]) =>
  Object.fromEntries(flags.map((f) => [f, CURRENTLY_RECOMMENDED_FLAGS[f]]));

describe('feature flags', () => {
  // GIVEN the constructs in an app without any feature flag (a plain `new App()`)
  const plain = synth({});

  it('change nothing but the template-only flags: no flags and the recommended flags deploy the same', () => {
    // WHEN the template-only flags are set as recommended, and nothing else
    const templateOnly = synth(recommended(TEMPLATE_ONLY_FEATURE_FLAGS));
    // THEN the templates are those of aws-cdk-lib's recommended flags, all of them
    expect(templateOnly.templates).toEqual(synth(CURRENTLY_RECOMMENDED_FLAGS).templates);
  });

  it('pin only flags the recommended set has, to their recommended value', () => {
    expect(PINNED_FEATURE_FLAGS).toEqual(recommended(Object.keys(PINNED_FEATURE_FLAGS)));
  });

  it('without flags, let EventBridge send to the snapshot queue only for rules of this account', () => {
    plain.vault.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
  });

  it('without flags, deliver server access logs by bucket policy into buckets that own every object', () => {
    for (const t of [plain.vault, plain.replica]) {
      // No ACLs anywhere: every bucket has BucketOwnerEnforced.
      for (const bucket of Object.values(t.findResources('AWS::S3::Bucket'))) {
        expect(bucket.Properties.AccessControl).toBeUndefined();
        expect(bucket.Properties.OwnershipControls).toEqual({
          Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
        });
      }
      t.hasResourceProperties('AWS::S3::BucketPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Principal: { Service: 'logging.s3.amazonaws.com' },
              Action: 's3:PutObject',
              Condition: { ArnLike: { 'aws:SourceArn': Match.anyValue() }, StringEquals: Match.anyValue() },
            }),
          ]),
        },
      });
    }
  });

  it('without flags, read the replica through its stack outputs (weak references, no custom resources)', () => {
    for (const t of [plain.vault, plain.replica]) {
      expect(Object.keys(t.findResources('Custom::CrossRegionExportWriter'))).toEqual([]);
      expect(Object.keys(t.findResources('Custom::CrossRegionExportReader'))).toEqual([]);
    }
    plain.vault.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Rules: [
          Match.objectLike({
            Destination: Match.objectLike({
              Bucket: {
                'Fn::GetStackOutput': Match.objectLike({ StackName: 'Replica', Region: 'eu-central-1' }),
              },
            }),
          }),
        ],
      },
    });
  });
});
