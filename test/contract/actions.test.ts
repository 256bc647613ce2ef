import { checkStatement, type LocatedStatement } from './actions';
import type { Statement } from './deployment';

const identity = (statement: Statement): LocatedStatement => ({
  deployment: 'test',
  source: 'S/Policy',
  kind: 'identity',
  statement,
});

describe('Function: checkStatement', () => {
  it('accepts actions of the IAM reference on resources of their types', async () => {
    expect(
      await checkStatement(
        identity({
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:ListBucket'],
          Resource: ['arn:aws:s3:::b', 'arn:aws:s3:::b/*'],
        }),
      ),
    ).toEqual([]);
    expect(
      await checkStatement(
        identity({
          Effect: 'Allow',
          Action: 'kms:GenerateDataKey*',
          Resource: 'arn:aws:kms:eu-west-1:111122223333:key/k',
        }),
      ),
    ).toEqual([]);
  });

  it('names an action the IAM reference does not have, and a wildcard that matches nothing', async () => {
    expect(
      await checkStatement(
        identity({ Effect: 'Allow', Action: ['sqs:SendMessages', 'sqs:Zap*'], Resource: '*' }),
      ),
    ).toEqual([
      'S/Policy: sqs:SendMessages is no action of the IAM service reference',
      'S/Policy: sqs:Zap* is no action of the IAM service reference',
    ]);
  });

  it('names an object action given only a bucket ARN', async () => {
    expect(
      await checkStatement(identity({ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b' })),
    ).toEqual([
      'S/Policy: arn:aws:s3:::b fits none of the resource types of s3:GetObject',
      expect.stringMatching(/^S\/Policy: s3:GetObject has no resource of its types/),
    ]);
  });

  it('names Resource "*" for an action that takes resource ARNs, but not in a resource policy', async () => {
    const statement: Statement = { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' };
    expect(await checkStatement(identity(statement))).toEqual([
      'S/Policy: Resource "*" for sqs:sendmessage, which take resource ARNs',
    ]);
    expect(await checkStatement({ ...identity(statement), kind: 'resource' })).toEqual([]);
    expect(
      await checkStatement(identity({ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' })),
    ).toEqual([]);
  });
});
