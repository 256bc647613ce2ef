import { inspectorScanDocumented, withDigest } from '../provenance/scan-events';

const ENV = {
  VAULT_BUCKET: 'imagevault-vault',
  VAULT_PREFIX: '',
  ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:imagevault-alerts',
  REPOSITORY_PREFIXES: '*',
  QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/imagevault-snapshots',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'secret',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

const saved = process.env;
afterEach(() => {
  process.env = saved;
});

/**
 * Loads a handler module afresh, as a cold start with `env` as the environment (kept until the test ends: the SDK
 * reads its region lazily). Modules, the AWS SDK included, are a fresh set: `before` mocks that set's clients.
 */
function load<T>(path: string, env: Record<string, string | undefined>, before?: () => void): T {
  process.env = { ...saved, ...env };
  let mod: T | undefined;
  jest.isolateModules(() => {
    before?.();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(path) as T;
  });
  return mod!;
}

type SnapshotModule = typeof import('../../../lambdas/snapshot');
type ReconcileModule = typeof import('../../../lambdas/reconcile');

describe('Function: snapshot handler module', () => {
  it('builds its handler from the environment at cold start', () => {
    // Act
    const mod = load<SnapshotModule>('../../../lambdas/snapshot', ENV);

    // Assess
    expect(typeof mod.handler).toBe('function');
  });

  it('fails its cold start naming a missing variable', () => {
    expect(() => load('../../../lambdas/snapshot', { ...ENV, VAULT_BUCKET: undefined })).toThrow(
      /^VAULT_BUCKET: environment variable is required but not set$/,
    );
  });

  it('fails its cold start naming a malformed IMAGEVAULT_TIMEOUT or IMAGEVAULT_IDLE_TIMEOUT', () => {
    expect(() => load('../../../lambdas/snapshot', { ...ENV, IMAGEVAULT_TIMEOUT: '0' })).toThrow(
      /^IMAGEVAULT_TIMEOUT: must be a number of seconds greater than 0, got "0"$/,
    );
    expect(() => load('../../../lambdas/reconcile', { ...ENV, IMAGEVAULT_IDLE_TIMEOUT: 'soon' })).toThrow(
      /^IMAGEVAULT_IDLE_TIMEOUT: /,
    );
  });

  it('fails its cold start naming a malformed MAX_RECEIVE_COUNT', () => {
    expect(() => load('../../../lambdas/snapshot', { ...ENV, MAX_RECEIVE_COUNT: 'three' })).toThrow(
      /^MAX_RECEIVE_COUNT: /,
    );
  });
});

describe('Function: reconcile handler module', () => {
  /* eslint-disable @typescript-eslint/no-require-imports -- the SDK copy the isolated module sees */
  const mocks = () => {
    const { mockClient: mock } = require('aws-sdk-client-mock') as typeof import('aws-sdk-client-mock');
    const ecr = mock((require('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr')).ECRClient);
    const sqs = mock((require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs')).SQSClient);
    const s3 = mock((require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3')).S3Client);
    const sns = mock((require('@aws-sdk/client-sns') as typeof import('@aws-sdk/client-sns')).SNSClient);
    const ecrCmds = require('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr');
    const sqsCmds = require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs');
    const s3Cmds = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
    /* eslint-enable @typescript-eslint/no-require-imports */
    ecr
      .on(ecrCmds.DescribeRepositoriesCommand)
      .resolves({ repositories: [{ repositoryName: 'app', registryId: '123456789012' }] });
    ecr.on(ecrCmds.DescribeImagesCommand).resolves({
      imageDetails: [
        { imageDigest: `sha256:${'a'.repeat(64)}`, imagePushedAt: new Date('2020-01-01T00:00:00Z') },
      ],
    });
    s3.on(s3Cmds.ListObjectsV2Command).resolves({});
    s3.on(s3Cmds.GetObjectCommand).rejects(
      Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }),
    );
    s3.on(s3Cmds.PutObjectCommand).resolves({});
    sqs.on(sqsCmds.SendMessageBatchCommand).resolves({});
    return {
      sent: () => sqs.commandCalls(sqsCmds.SendMessageBatchCommand).map((c) => c.args[0].input),
      written: () => s3.commandCalls(s3Cmds.PutObjectCommand).map((c) => c.args[0].input.Key),
      published: () => sns.calls().length,
    };
  };

  it('runs a scheduled reconcile for an EventBridge scheduled event and returns the summary', async () => {
    // Prepare
    let m!: ReturnType<typeof mocks>;
    const { handler } = load<ReconcileModule>('../../../lambdas/reconcile', ENV, () => (m = mocks()));

    // Act
    const summary = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} });

    // Assess
    expect(summary).toEqual({
      mode: 'scheduled',
      repositories: 1,
      images: 1,
      enqueued: 1,
      gaps: 0,
      deleted: 0,
      recent: 0,
      provenanceUpdated: 0,
      inUseDeleted: 0,
    });
    const batch = m.sent()[0];
    expect(batch.QueueUrl).toBe(ENV.QUEUE_URL);
    expect(JSON.parse(batch.Entries![0].MessageBody!)).toMatchObject({
      source: 'imagevault.reconcile',
      region: 'eu-west-1',
      detail: { 'repository-name': 'app', 'action-type': 'PUSH' },
    });
    // The layout index is rewritten once, at the end; an untagged missing image is no gap, so no alert.
    expect(m.written()).toEqual(['index.json']);
    expect(m.published()).toBe(0);
  });

  it('rejects an invocation that is not a reconcile trigger', async () => {
    // Prepare
    const { handler } = load<ReconcileModule>('../../../lambdas/reconcile', ENV, () => mocks());

    // Act + Assess
    await expect(handler({ mode: 'now' })).rejects.toThrow(/not a reconcile trigger/);
  });
});

type ScanModule = typeof import('../../../lambdas/scan');

describe('Function: scan handler module', () => {
  it('keeps a scan pending in the vault, with the top findings read from ECR', async () => {
    // Prepare
    /* eslint-disable @typescript-eslint/no-require-imports -- the SDK copy the isolated module sees */
    let put!: () => Array<string | undefined>;
    let described!: () => unknown[];
    const { handler } = load<ScanModule>(
      '../../../lambdas/scan',
      {
        VAULT_BUCKET: 'v',
        VAULT_PREFIX: '',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
      },
      () => {
        const { mockClient: mock } = require('aws-sdk-client-mock') as typeof import('aws-sdk-client-mock');
        const ecrCmds = require('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr');
        const s3Cmds = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
        const ecr = mock(ecrCmds.ECRClient);
        const s3 = mock(s3Cmds.S3Client);
        /* eslint-enable @typescript-eslint/no-require-imports */
        ecr.on(ecrCmds.DescribeImageScanFindingsCommand).resolves({
          imageScanStatus: { status: 'ACTIVE' },
          imageScanFindings: {
            enhancedFindings: [
              {
                severity: 'HIGH',
                packageVulnerabilityDetails: {
                  vulnerabilityId: 'CVE-2019-17498',
                  vulnerablePackages: [{ name: 'libssh2', version: '1.4.3' }],
                },
              },
            ],
          },
        });
        s3.on(s3Cmds.ListObjectsV2Command).resolves({});
        s3.on(s3Cmds.GetObjectCommand).rejects(
          Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }),
        );
        s3.on(s3Cmds.HeadObjectCommand).rejects(
          Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }),
        );
        s3.on(s3Cmds.PutObjectCommand).resolves({});
        put = () => s3.commandCalls(s3Cmds.PutObjectCommand).map((c) => c.args[0].input.Key);
        described = () =>
          ecr.commandCalls(ecrCmds.DescribeImageScanFindingsCommand).map((c) => c.args[0].input);
      },
    );
    const digest = `sha256:${'9'.repeat(64)}`;

    // Act
    const result = await handler(
      withDigest(inspectorScanDocumented(), digest, {
        counts: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, TOTAL: 1 },
      }),
    );

    // Assess
    expect(result).toEqual({ status: 'pending', repository: 'inspector2', digest });
    expect(described()).toEqual([
      expect.objectContaining({ registryId: '111122223333', repositoryName: 'inspector2' }),
    ]);
    expect(put()).toEqual([`imagevault/provenance/inspector2/_scans/${'9'.repeat(64)}.json`]);
  });

  it('fails its cold start naming a missing VAULT_BUCKET', () => {
    expect(() => load('../../../lambdas/scan', { VAULT_BUCKET: undefined })).toThrow(
      /^VAULT_BUCKET: environment variable is required but not set$/,
    );
  });
});
