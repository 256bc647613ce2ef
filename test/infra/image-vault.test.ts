import { Match, Template } from 'aws-cdk-lib/assertions';
import { actionsOf, appFromContext, resourceOf, statementsOf, statementsWith } from './support';

// GIVEN the app as `cdk synth` builds it from cdk.json's defaults (primary us-east-1, replica us-west-2)
const { vault, replica } = appFromContext();
const template = Template.fromStack(vault);
const replicaTemplate = Template.fromStack(replica);

const VAULT_BUCKET = 'VaultBucket';
const getAtt = (idPrefix: string, attr = 'Arn') => ({
  'Fn::GetAtt': [Match.stringLikeRegexp(`^${idPrefix}`), attr],
});
const ref = (idPrefix: string) => ({ Ref: Match.stringLikeRegexp(`^${idPrefix}`) });
const replicaOutput = (attr: string) => ({
  'Fn::GetStackOutput': {
    StackName: 'ImageVaultReplica',
    Region: 'us-west-2',
    OutputName: Match.stringLikeRegexp(attr),
  },
});

describe('ImageVault stacks', () => {
  it('puts the vault in the primary region and the replica in the replica region', () => {
    expect(vault.region).toBe('us-east-1');
    expect(replica.region).toBe('us-west-2');
    expect(vault.dependencies).toContain(replica);
  });
});

describe('vault bucket', () => {
  it('is versioned', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'vault/' }),
      VersioningConfiguration: { Status: 'Enabled' },
    });
  });

  it('is encrypted with its own customer managed key, rotated, with an S3 bucket key', () => {
    const bucket = resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET);
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [expect.stringMatching(/^VaultKey/), 'Arn'] },
            },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'imagevault vault bucket',
      EnableKeyRotation: true,
    });
  });

  it('blocks all public access and owns every object', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('refuses requests without TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: ref(VAULT_BUCKET),
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('logs access to a separate SSE-S3 bucket with bucket-owner-enforced ownership', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: { DestinationBucketName: ref('VaultAccessLogs'), LogFilePrefix: 'vault/' },
    });
    const logs = resourceOf(template, 'AWS::S3::Bucket', 'VaultAccessLogs');
    expect(logs.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('aborts incomplete multipart uploads after 1 day, moves noncurrent versions to Glacier IR after 30 days and expires what gc deleted after 30 days', () => {
    const bucket = resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET);
    const expire = (id: string, prefix: string) => ({
      Id: `expire-deleted-${id}`,
      Status: 'Enabled',
      Prefix: prefix,
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      ExpiredObjectDeleteMarker: true,
    });
    expect((bucket.Properties as Record<string, unknown>).LifecycleConfiguration).toEqual({
      Rules: [
        {
          Id: 'abort-incomplete-multipart-uploads',
          Status: 'Enabled',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        },
        {
          Id: 'noncurrent-versions-to-cheaper-class',
          Status: 'Enabled',
          NoncurrentVersionTransitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 30 }],
        },
        expire('blobs', 'blobs/'),
        expire('referrers', 'imagevault/referrers/'),
        expire('gc', 'imagevault/gc/'),
        {
          Id: 'expire-inventory-running-history',
          Status: 'Enabled',
          Prefix: 'imagevault/inventory/running/',
          NoncurrentVersionExpiration: { NoncurrentDays: 30 },
        },
      ],
    });
  });

  it('expires nothing but noncurrent versions of the keys gc deletes and of the rewritten running records: records, history and provenance stay', () => {
    const rules = (
      (resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET).Properties as Record<string, unknown>)
        .LifecycleConfiguration as { Rules: Array<Record<string, unknown>> }
    ).Rules;
    const expiring = rules.filter((r) => JSON.stringify(r).includes('Expiration'));
    expect(expiring.map((r) => r.Prefix)).toEqual([
      'blobs/',
      'imagevault/referrers/',
      'imagevault/gc/',
      'imagevault/inventory/running/',
    ]);
    // No rule expires current objects, and none has an empty prefix (the whole bucket).
    expect(JSON.stringify(rules)).not.toMatch(/"ExpirationInDays"|"ExpirationDate"/);
  });

  it('has no Object Lock by default', () => {
    const props = resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET).Properties as Record<string, unknown>;
    expect(props.ObjectLockEnabled).toBeUndefined();
    expect(props.ObjectLockConfiguration).toBeUndefined();
  });

  it('is retained, with its key, when the stack is deleted', () => {
    expect(resourceOf(template, 'AWS::S3::Bucket', VAULT_BUCKET).DeletionPolicy).toBe('Retain');
    expect(resourceOf(template, 'AWS::KMS::Key', 'VaultKey').DeletionPolicy).toBe('Retain');
  });
});

describe('cross-region replication', () => {
  it('replicates every KMS-encrypted object to the replica bucket, re-encrypted with the replica key', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Role: getAtt('VaultReplicationRole'),
        Rules: [
          {
            Id: 'imagevault-replica',
            Priority: 1,
            Status: 'Enabled',
            Filter: { Prefix: '' },
            SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
            DeleteMarkerReplication: { Status: 'Disabled' },
            Destination: {
              Bucket: replicaOutput('ReplicaBucket.*Arn'),
              EncryptionConfiguration: { ReplicaKmsKeyID: replicaOutput('ReplicaKey.*Arn') },
              Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
              ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
            },
          },
        ],
      },
    });
  });

  it('lets the replication role read versions here, write replicas there, and use each key only through S3', () => {
    expect(actionsOf(template, 'VaultReplicationRole')).toEqual([
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      's3:GetObjectLegalHold',
      's3:GetObjectRetention',
      's3:GetObjectVersionAcl',
      's3:GetObjectVersionForReplication',
      's3:GetObjectVersionTagging',
      's3:GetReplicationConfiguration',
      's3:ListBucket',
      's3:ReplicateObject',
      's3:ReplicateTags',
    ]);
    const statements = statementsOf(template, 'VaultReplicationRole');
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: expect.objectContaining({
          'Fn::GetStackOutput': expect.objectContaining({ Region: 'us-west-2' }),
        }),
        Condition: { StringEquals: { 'kms:ViaService': 's3.us-west-2.amazonaws.com' } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 'kms:Decrypt',
        Condition: { StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } },
      }),
    );
  });

  it('does not let the replication role replicate deletes', () => {
    expect(actionsOf(template, 'VaultReplicationRole')).not.toContain('s3:ReplicateDelete');
  });

  it('gives the replica bucket its own rotated key, versioning, logging and the same lifecycle, in the replica region', () => {
    replicaTemplate.hasResourceProperties('AWS::KMS::Key', {
      Description: 'imagevault replica bucket',
      EnableKeyRotation: true,
    });
    replicaTemplate.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt('ReplicaKey') },
          },
        ],
      },
      LoggingConfiguration: { DestinationBucketName: ref('ReplicaAccessLogs'), LogFilePrefix: 'replica/' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            NoncurrentVersionTransitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 30 }],
          }),
          Match.objectLike({
            Prefix: 'blobs/',
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            ExpiredObjectDeleteMarker: true,
          }),
        ]),
      },
    });
    replicaTemplate.resourceCountIs('AWS::S3::Bucket', 2);
  });
});

describe('event path', () => {
  it('sends successful ECR pushes and deletes of every repository to the queue, undeliverable ones to the DLQ', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['ECR Image Action'],
        detail: { 'action-type': ['PUSH', 'DELETE'], result: ['SUCCESS'] },
      },
      Targets: [
        {
          Arn: getAtt('VaultSnapshotQueue'),
          DeadLetterConfig: { Arn: getAtt('VaultSnapshotDeadLetterQueue') },
          Id: Match.anyValue(),
        },
      ],
    });
  });

  it('lets EventBridge (this account only) send to the queue and use its key', () => {
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [ref('VaultSnapshotQueue')],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: Match.arrayWith(['sqs:SendMessage']),
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'imagevault queues and alert topic',
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'events.amazonaws.com' },
            Action: Match.arrayWith(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*']),
          }),
        ]),
      },
    });
  });

  it('encrypts the queue with KMS, gives it a visibility timeout of six times the Lambda timeout and a DLQ after 3 receives', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      KmsMasterKeyId: getAtt('VaultMessagingKey'),
      VisibilityTimeout: 6 * 900,
      MessageRetentionPeriod: 14 * 24 * 3600,
      RedrivePolicy: { deadLetterTargetArn: getAtt('VaultSnapshotDeadLetterQueue'), maxReceiveCount: 3 },
    });
  });

  it('encrypts the DLQ with KMS and keeps messages 14 days', () => {
    const dlq = resourceOf(template, 'AWS::SQS::Queue', 'VaultSnapshotDeadLetterQueue');
    expect(dlq.Properties).toMatchObject({
      KmsMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^VaultMessagingKey/), 'Arn'] },
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

  it('refuses queue requests without TLS', () => {
    template.resourcePropertiesCountIs(
      'AWS::SQS::QueuePolicy',
      {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      },
      4,
    );
  });

  it('feeds the snapshot Lambda batches of 5, reporting partial batch failures, at most 10 at a time', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: getAtt('VaultSnapshotQueue'),
      FunctionName: ref('VaultSnapshotFunction'),
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });
});

describe('snapshot Lambda', () => {
  it('runs lambdas/snapshot.ts on Node.js 24, arm64, 1769 MB (one vCPU), 15 minutes', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Snapshots'),
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 1769,
      Timeout: 900,
      LoggingConfig: { LogGroup: ref('VaultSnapshotLogs') },
    });
  });

  it('gets the vault, topic, repositories and Powertools settings from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Snapshots'),
      Environment: {
        Variables: {
          VAULT_BUCKET: ref(VAULT_BUCKET),
          VAULT_PREFIX: '',
          ALERT_TOPIC_ARN: ref('VaultAlertTopic'),
          REPOSITORY_PREFIXES: '*',
          MAX_RECEIVE_COUNT: '3',
          POWERTOOLS_SERVICE_NAME: 'imagevault-snapshot',
          POWERTOOLS_METRICS_NAMESPACE: 'imagevault',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
    });
  });

  it('may pull from the protected repositories, read and write the vault without deleting, consume the queue and alert', () => {
    expect(actionsOf(template, 'VaultSnapshotRole')).toEqual([
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:GetAuthorizationToken',
      'ecr:GetDownloadUrlForLayer',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:AbortMultipartUpload',
      's3:GetObject',
      's3:ListBucket',
      's3:ListMultipartUploadParts',
      's3:PutObject',
      'sns:Publish',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
  });

  it('scopes each permission to its resource; only GetAuthorizationToken is on *', () => {
    const byAction = (action: string) => statementsWith(template, 'VaultSnapshotRole', action)[0];
    expect(byAction('ecr:GetAuthorizationToken')?.Resource).toBe('*');
    expect(byAction('ecr:BatchGetImage')?.Resource).toEqual({
      'Fn::Join': ['', ['arn:aws:ecr:us-east-1:', { Ref: 'AWS::AccountId' }, ':repository/*']],
    });
    expect(byAction('s3:PutObject')?.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^VaultBucket/), 'Arn'] }, '/*']],
    });
    expect(byAction('sns:Publish')?.Resource).toEqual({ Ref: expect.stringMatching(/^VaultAlertTopic/) });
    expect(byAction('kms:Decrypt')?.Resource).toEqual([
      { 'Fn::GetAtt': [expect.stringMatching(/^VaultKey/), 'Arn'] },
      { 'Fn::GetAtt': [expect.stringMatching(/^VaultMessagingKey/), 'Arn'] },
    ]);
    for (const s of statementsOf(template, 'VaultSnapshotRole')) expect(s.Effect).toBe('Allow');
  });

  it('has no managed policies (no AWSLambdaBasicExecutionRole): only its own log group', () => {
    const role = resourceOf(template, 'AWS::IAM::Role', 'VaultSnapshotRole');
    expect((role.Properties as Record<string, unknown>).ManagedPolicyArns).toBeUndefined();
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });
});

describe('reconcile Lambda', () => {
  it('runs lambdas/reconcile.ts on Node.js 24, arm64, 15 minutes', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Enqueues'),
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 1024,
      Timeout: 900,
    });
  });

  it('gets the vault, queue, topic and repositories from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Enqueues'),
      Environment: {
        Variables: {
          VAULT_BUCKET: ref(VAULT_BUCKET),
          VAULT_PREFIX: '',
          QUEUE_URL: ref('VaultSnapshotQueue'),
          ALERT_TOPIC_ARN: ref('VaultAlertTopic'),
          REPOSITORY_PREFIXES: '*',
          POWERTOOLS_SERVICE_NAME: 'imagevault-reconcile',
          POWERTOOLS_METRICS_NAMESPACE: 'imagevault',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
    });
  });

  it('may list repositories and images, read the vault, write index, history and provenance, enqueue and alert', () => {
    expect(actionsOf(template, 'VaultReconcileRole')).toEqual([
      'ecr:DescribeImages',
      'ecr:DescribeRepositories',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sns:Publish',
      'sqs:SendMessage',
    ]);
    const put = statementsOf(template, 'VaultReconcileRole').find((s) => s.Action === 's3:PutObject');
    const keys = (put?.Resource as { 'Fn::Join': [string, unknown[]] }[]).map((r) => r['Fn::Join'][1][1]);
    expect(keys).toEqual(['/imagevault/provenance/*', '/imagevault/repositories/*', '/index.json']);
    const send = statementsOf(template, 'VaultReconcileRole').find((s) => s.Action === 'sqs:SendMessage');
    expect(send?.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^VaultSnapshotQueue/), 'Arn'] });
  });

  it('runs every 6 hours', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(6 hours)',
      Targets: [
        Match.objectLike({ Arn: getAtt('VaultReconcileFunction'), RetryPolicy: { MaximumRetryAttempts: 2 } }),
      ],
    });
  });

  it('runs once after deployment, asynchronously, after the queue, snapshot Lambda and vault exist', () => {
    template.hasResource('Custom::Trigger', {
      Properties: Match.objectLike({
        InvocationType: 'Event',
        HandlerArn: ref('VaultReconcileFunctionCurrentVersion'),
      }),
      DependsOn: Match.arrayWith([
        Match.stringLikeRegexp('^VaultSnapshotFunctionSqsEventSource'),
        Match.stringLikeRegexp('^VaultSnapshotQueue'),
        Match.stringLikeRegexp('^VaultBucket'),
      ]),
    });
  });
});

describe('alerts', () => {
  it('has a KMS-encrypted topic that refuses publishing without TLS, with no subscriptions by default', () => {
    template.hasResourceProperties('AWS::SNS::Topic', {
      DisplayName: 'imagevault alerts',
      KmsMasterKeyId: getAtt('VaultMessagingKey'),
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('lets CloudWatch alarms of this account and region publish to the topic (its policy replaces the default)', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: {
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              ArnLike: {
                'aws:SourceArn': {
                  'Fn::Join': ['', ['arn:aws:cloudwatch:us-east-1:', { Ref: 'AWS::AccountId' }, ':alarm:*']],
                },
              },
            },
          }),
        ]),
      },
    });
  });

  it('lets CloudWatch alarms (this account only) encrypt with the messaging key', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'imagevault queues and alert topic',
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
  });

  it.each([
    [
      'a message in the DLQ',
      'ApproximateNumberOfMessagesVisible',
      'AWS/SQS',
      1,
      'GreaterThanOrEqualToThreshold',
    ],
    ['snapshot Lambda errors', 'Errors', 'AWS/Lambda', 1, 'GreaterThanOrEqualToThreshold'],
    ['replication more than 15 minutes behind', 'ReplicationLatency', 'AWS/S3', 900, 'GreaterThanThreshold'],
    ['failed replication', 'OperationsFailedReplication', 'AWS/S3', 1, 'GreaterThanOrEqualToThreshold'],
  ])('alarms to the topic on %s', (_what, metric, namespace, threshold, comparison) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: metric,
      Namespace: namespace,
      Threshold: threshold,
      ComparisonOperator: comparison,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [ref('VaultAlertTopic')],
      AlarmDescription: Match.stringLikeRegexp('Next step'),
    });
  });

  it('watches the DLQs, the five Lambdas and the replication rule by their dimensions', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt('VaultSnapshotDeadLetterQueue', 'QueueName') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('VaultReconcileFunction') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('VaultUpstreamFunction') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ReplicationLatency',
      Statistic: 'Maximum',
      Dimensions: [
        { Name: 'DestinationBucket', Value: replicaOutput('ReplicaBucket') },
        { Name: 'RuleId', Value: 'imagevault-replica' },
        { Name: 'SourceBucket', Value: ref(VAULT_BUCKET) },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('VaultIdentityFunction') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt('VaultIdentityDeadLetterQueue', 'QueueName') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('VaultScanFunction') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt('VaultScanDeadLetterQueue', 'QueueName') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('VaultInventoryScanInventoryFunction') }],
    });
    // and the self-test's alarm (test/infra/selftest.test.ts)
    template.resourceCountIs('AWS::CloudWatch::Alarm', 12);
  });

  it('has a dashboard with the queue, the DLQ, Lambda duration and errors, bytes copied and replication latency', () => {
    const dashboard = resourceOf(template, 'AWS::CloudWatch::Dashboard', 'VaultDashboard');
    const body = JSON.stringify((dashboard.Properties as Record<string, unknown>).DashboardBody);
    for (const metric of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'Duration',
      'Errors',
      '\\"imagevault\\",\\"BytesCopied\\",\\"service\\",\\"imagevault-snapshot\\"',
      'ReplicationLatency',
      'OperationsPendingReplication',
    ]) {
      expect(body).toContain(metric);
    }
  });
});
