import { defaultKeyPolicy, modelOf, type PolicyDocument } from './deployment';
import { evaluate, evaluateWithImplied, impliedKmsCalls } from './evaluate';
import type { CfnTemplate } from './resolve';

// The evaluator on a small hand-written template, so that each rule of AWS's evaluation it relies on is shown once.

const ACCOUNT = '111122223333';
const doc = (...Statement: PolicyDocument['Statement']): PolicyDocument => ({
  Version: '2012-10-17',
  Statement,
});

/** A role, a queue encrypted with a key, a topic, a bucket with SSE-KMS, and the policies a test gives them. */
function deploymentWith(
  parts: { role?: PolicyDocument; key?: PolicyDocument; queue?: PolicyDocument; topic?: PolicyDocument } = {},
) {
  const template: CfnTemplate = {
    Resources: {
      Role: {
        Type: 'AWS::IAM::Role',
        Properties: {
          AssumeRolePolicyDocument: doc({
            Effect: 'Allow',
            Principal: { Service: 'lambda.amazonaws.com' },
            Action: 'sts:AssumeRole',
          }),
        },
      },
      ...(parts.role && {
        RolePolicy: {
          Type: 'AWS::IAM::Policy',
          Properties: { PolicyName: 'p', Roles: [{ Ref: 'Role' }], PolicyDocument: parts.role },
        },
      }),
      Key: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: parts.key ?? defaultKeyPolicy(ACCOUNT) } },
      Queue: { Type: 'AWS::SQS::Queue', Properties: { KmsMasterKeyId: { 'Fn::GetAtt': ['Key', 'Arn'] } } },
      ...(parts.queue && {
        QueuePolicy: {
          Type: 'AWS::SQS::QueuePolicy',
          Properties: { Queues: [{ Ref: 'Queue' }], PolicyDocument: parts.queue },
        },
      }),
      Topic: { Type: 'AWS::SNS::Topic', Properties: { KmsMasterKeyId: { Ref: 'Key' } } },
      ...(parts.topic && {
        TopicPolicy: {
          Type: 'AWS::SNS::TopicPolicy',
          Properties: { Topics: [{ Ref: 'Topic' }], PolicyDocument: parts.topic },
        },
      }),
      Bucket: {
        Type: 'AWS::S3::Bucket',
        Properties: {
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              {
                ServerSideEncryptionByDefault: {
                  SSEAlgorithm: 'aws:kms',
                  KMSMasterKeyID: { 'Fn::GetAtt': ['Key', 'Arn'] },
                },
              },
            ],
          },
        },
      },
    },
  };
  const d = modelOf({ name: 'test', stacks: [{ name: 'S', region: 'eu-west-1', template }] });
  const arn = (id: string) => d.resources.find((r) => r.logicalId === id)!;
  return {
    d,
    role: arn('Role').arn!,
    key: arn('Key').arn!,
    queue: arn('Queue').arn!,
    topic: arn('Topic').ref,
    bucket: arn('Bucket').arn!,
  };
}

describe('Function: evaluate', () => {
  it('allows a role what its identity policy allows, in the same account, with no resource policy', async () => {
    const { d, role, queue } = deploymentWith({
      role: doc({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }),
    });
    const result = await evaluate(d, { principal: role, action: 'sqs:SendMessage', resource: queue });
    expect(result).toMatchObject({ allowed: true, result: 'Allowed' });
    expect(result.explanation).toMatch(/^ALLOWED: sqs:SendMessage on .* allowed by S\/RolePolicy/);
  });

  it('denies a role what nothing allows, saying which policies were looked at', async () => {
    const { d, role, queue } = deploymentWith();
    const result = await evaluate(d, { principal: role, action: 'sqs:SendMessage', resource: queue });
    expect(result).toMatchObject({ allowed: false, result: 'ImplicitlyDenied' });
    expect(result.explanation).toMatch(/no identity policy of Role allows it/);
  });

  it('lets an explicit Deny in the resource policy win over an identity Allow', async () => {
    const { d, role, queue } = deploymentWith({
      role: doc({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }),
      queue: doc({ Effect: 'Deny', Principal: '*', Action: 'sqs:*', Resource: '*' }),
    });
    const result = await evaluate(d, { principal: role, action: 'sqs:SendMessage', resource: queue });
    expect(result).toMatchObject({ allowed: false, result: 'ExplicitlyDenied' });
    expect(result.explanation).toMatch(/explicitly denied by S\/QueuePolicy/);
  });

  it('lets a service principal in only through the resource policy, with its conditions', async () => {
    const { d, topic } = deploymentWith({
      topic: doc({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: '*',
        Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } },
      }),
    });
    const call = { principal: 'cloudwatch.amazonaws.com', action: 'sns:Publish', resource: topic };
    expect((await evaluate(d, { ...call, context: { 'aws:SourceAccount': ACCOUNT } })).allowed).toBe(true);
    expect((await evaluate(d, { ...call, context: { 'aws:SourceAccount': '999999999999' } })).allowed).toBe(
      false,
    );
  });

  it("counts a role's IAM policy for a KMS key only when the key policy delegates to the account", async () => {
    const role = doc({ Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: '*' });
    const delegating = deploymentWith({ role });
    const closed = deploymentWith({
      role,
      key: doc({
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/admin` },
        Action: 'kms:*',
        Resource: '*',
      }),
    });
    for (const [x, allowed] of [
      [delegating, true],
      [closed, false],
    ] as const)
      expect(
        (await evaluate(x.d, { principal: x.role, action: 'kms:GenerateDataKey', resource: x.key })).allowed,
      ).toBe(allowed);
  });

  it('reports a principal that is no role of the deployment as an error, not a denial', async () => {
    const { d, queue } = deploymentWith();
    const result = await evaluate(d, {
      principal: `arn:aws:iam::${ACCOUNT}:role/nobody`,
      action: 'sqs:SendMessage',
      resource: queue,
    });
    expect(result).toMatchObject({ allowed: false, result: 'Error' });
  });
});

describe('Function: impliedKmsCalls', () => {
  it.each([
    ['s3:PutObject', 'object', ['kms:GenerateDataKey']],
    ['s3:GetObject', 'object', ['kms:Decrypt']],
    ['s3:CreateMultipartUpload', 'object', ['kms:GenerateDataKey', 'kms:Decrypt']],
    ['s3:ListBucket', 'bucket', []],
    ['sqs:SendMessage', 'queue', ['kms:GenerateDataKey', 'kms:Decrypt']],
    ['sqs:ReceiveMessage', 'queue', ['kms:Decrypt']],
    ['sns:Publish', 'topic', ['kms:GenerateDataKey', 'kms:Decrypt']],
  ] as const)('derives from %s on an encrypted %s: %j', (action, what, expected) => {
    const x = deploymentWith();
    const resource = { object: `${x.bucket}/k`, bucket: x.bucket, queue: x.queue, topic: x.topic }[what];
    const calls = impliedKmsCalls(x.d, { principal: x.role, action, resource });
    expect(calls.map((c) => c.action)).toEqual(expected);
    for (const c of calls) {
      expect(c.resource).toBe(x.key);
      expect(c.context?.['kms:ViaService']).toBe(`${action.split(':')[0]}.eu-west-1.amazonaws.com`);
    }
  });

  it('fails a send to an encrypted queue when the role may send but not use the key', async () => {
    const { d, role, queue } = deploymentWith({
      role: doc({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }),
    });
    const decisions = await evaluateWithImplied(d, {
      principal: role,
      action: 'sqs:SendMessage',
      resource: queue,
    });
    expect(decisions.map((x) => [x.call.action, x.allowed])).toEqual([
      ['sqs:SendMessage', true],
      ['kms:GenerateDataKey', false],
      ['kms:Decrypt', false],
    ]);
  });
});
