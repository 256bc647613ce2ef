/**
 * CloudTrail ecr:PutImage records, shaped as the CloudTrail userIdentity element and the ECR CloudTrail log
 * examples document them (IAM user with an access key; assumed-role session with sessionContext.sessionIssuer),
 * wrapped as EventBridge delivers them (detail-type `AWS API Call via CloudTrail`).
 */
export function putImageEvent(opts: {
  repository: string;
  digest: string;
  tag?: string;
  time?: string;
  identity: 'iam-user' | 'assumed-role';
}): Record<string, unknown> {
  const userIdentity =
    opts.identity === 'iam-user'
      ? {
          type: 'IAMUser',
          principalId: 'AIDACKCEVSQ6C2EXAMPLE',
          arn: 'arn:aws:iam::123456789012:user/Mary_Major',
          accountId: '123456789012',
          accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
          userName: 'Mary_Major',
        }
      : {
          type: 'AssumedRole',
          principalId: 'AROAIDPPEZS35WEXAMPLE:github-actions-run-42',
          arn: 'arn:aws:sts::123456789012:assumed-role/ci-push/github-actions-run-42',
          accountId: '123456789012',
          accessKeyId: 'ASIAIOSFODNN7EXAMPLE',
          sessionContext: {
            sessionIssuer: {
              type: 'Role',
              principalId: 'AROAIDPPEZS35WEXAMPLE',
              arn: 'arn:aws:iam::123456789012:role/ci-push',
              accountId: '123456789012',
              userName: 'ci-push',
            },
            webIdFederationData: {},
            attributes: { creationDate: '2026-01-10T09:00:00Z', mfaAuthenticated: 'false' },
          },
        };
  const time = opts.time ?? '2026-01-10T09:05:00Z';
  return {
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.ecr',
    account: '123456789012',
    time,
    region: 'us-east-1',
    resources: [],
    detail: {
      eventVersion: '1.08',
      userIdentity,
      eventTime: time,
      eventSource: 'ecr.amazonaws.com',
      eventName: 'PutImage',
      awsRegion: 'us-east-1',
      sourceIPAddress: '203.0.113.12',
      userAgent: 'docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.5.0 os/linux arch/amd64',
      requestParameters: {
        repositoryName: opts.repository,
        ...(opts.tag ? { imageTag: opts.tag } : {}),
        registryId: '123456789012',
        imageManifest: '{"schemaVersion":2}',
      },
      responseElements: {
        image: {
          repositoryName: opts.repository,
          imageManifest: '{"schemaVersion":2}',
          registryId: '123456789012',
          imageId: { imageDigest: opts.digest, ...(opts.tag ? { imageTag: opts.tag } : {}) },
        },
      },
      requestID: 'cf044b7d-5f9d-11e9-9b2a-95983139cc57',
      eventID: '2bfd4ee2-2178-4a82-a27d-b12939923f0f',
      readOnly: false,
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: '123456789012',
    },
  };
}
