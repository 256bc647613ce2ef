import { Match, Template } from 'aws-cdk-lib/assertions';
import { FLAG_SETS, synthConsumer, type ConsumerSynth } from './support';

// What these tests cannot show is the app deployed: the AWS contract harness (test/contract) resolves this app's
// templates under the same flag sets and evaluates the calls AWS makes on its behalf against its policies.

/** aws-cdk-lib's own warning to an app that has not chosen a default cross-stack reference strength. */
const DEFAULT_STRENGTH_WARNING = '@aws-cdk/core:crossStackReferencesDefaultStrong';

describe.each(Object.entries(FLAG_SETS))(
  'the consumer app (test/consumer/app.ts) with %s',
  (_name, flags) => {
    let synth: ConsumerSynth;
    let vault: Template;
    let replica: Template;

    beforeAll(() => {
      // GIVEN another team's app, as the README shows it, with these flags; WHEN it is synthesized
      synth = synthConsumer(flags);
      vault = Template.fromJSON(synth.templates.TeamAVault);
      replica = Template.fromJSON(synth.templates.TeamAVaultReplica);
    });

    it('synthesizes the replica stack and the vault stack, in their regions', () => {
      expect(synth.stacks).toEqual([
        { name: 'TeamAVaultReplica', region: 'eu-central-1' },
        { name: 'TeamAVault', region: 'eu-west-1' },
      ]);
    });

    it('is clean under cdk-nag AwsSolutions', () => {
      expect(synth.nagViolations).toEqual([]);
    });

    it('adds no warning of its own (aws-cdk-lib asks an app without flags to choose a reference strength)', () => {
      const unflagged = !('@aws-cdk/core:defaultCrossStackReferences' in flags);
      expect(synth.warnings).toEqual(unflagged ? [expect.stringContaining(DEFAULT_STRENGTH_WARNING)] : []);
    });

    it('runs the six Lambdas (the inventory on, retention off) on Node.js 24, arm64, from the prebundled code', () => {
      const functions = vault.findResources('AWS::Lambda::Function', {
        Properties: { Runtime: 'nodejs24.x', Architectures: ['arm64'], Handler: 'index.handler' },
      });
      expect(Object.keys(functions)).toHaveLength(6);
    });

    it('replicates into the replica through its stack outputs, with the replica region key', () => {
      const output = (name: RegExp) => ({
        'Fn::GetStackOutput': {
          StackName: 'TeamAVaultReplica',
          Region: 'eu-central-1',
          OutputName: Match.stringLikeRegexp(name.source),
        },
      });
      vault.hasResourceProperties('AWS::S3::Bucket', {
        ReplicationConfiguration: {
          Rules: [
            Match.objectLike({
              Destination: Match.objectLike({
                Bucket: output(/ReplicaBucket.*Arn/),
                EncryptionConfiguration: { ReplicaKmsKeyID: output(/ReplicaKey.*Arn/) },
              }),
            }),
          ],
        },
      });
      expect(Object.keys(replica.findResources('Custom::CrossRegionExportWriter'))).toEqual([]);
    });

    it('lets EventBridge send to the snapshot queue only for rules of the account', () => {
      vault.hasResourceProperties('AWS::SQS::QueuePolicy', {
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

    it('logs access to both buckets by bucket policy, with no ACL', () => {
      for (const t of [vault, replica]) {
        t.hasResourceProperties('AWS::S3::Bucket', {
          VersioningConfiguration: { Status: 'Enabled' },
          LoggingConfiguration: Match.objectLike({ LogFilePrefix: Match.anyValue() }),
        });
        for (const bucket of Object.values(t.findResources('AWS::S3::Bucket')))
          expect(bucket.Properties.AccessControl).toBeUndefined();
      }
    });

    it("protects team-a's repositories, under the vault prefix team-a", () => {
      vault.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: Match.objectLike({
          detail: Match.objectLike({ 'repository-name': [{ prefix: 'team-a/' }] }),
        }),
      });
      vault.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({ VAULT_PREFIX: 'team-a', REPOSITORY_PREFIXES: 'team-a/' }),
        },
      });
    });

    it('grants the on-call role read on the vault and its key', () => {
      vault.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: Match.stringLikeRegexp('^OnCallRestore') }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: 's3:GetObject' }),
            Match.objectLike({ Action: 'kms:Decrypt' }),
          ]),
        },
      });
    });
  },
);
