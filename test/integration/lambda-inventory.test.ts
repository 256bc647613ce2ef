/**
 * The inventory function's handler over recorded control planes — ECS and Lambda (aws-sdk-client-mock, the
 * responses of test/unit/aws/recorded), EKS's DescribeCluster (mocked) and a Kubernetes API server on loopback over
 * TLS answering the pod list from test/unit/kubernetes/recorded to an EKS token only — into a vault in a versioned
 * radosgw bucket; the snapshot queue mocked. The token is checked by recomputing its SigV4 signature here, as STS
 * would.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { DescribeTasksCommand, ECSClient, ListClustersCommand, ListTasksCommand } from '@aws-sdk/client-ecs';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { GetFunctionCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { EcsInventoryScanner } from '../../lib/aws/ecs-inventory';
import { EksClusterScanner, eksToken } from '../../lib/aws/eks-inventory';
import { SqsEventQueue } from '../../lib/aws/event-queue';
import { createInventoryHandler } from '../../lib/aws/handlers/inventory';
import { LambdaInventoryScanner } from '../../lib/aws/lambda-inventory';
import { Inventory } from '../../lib/content/inventory';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { parseImageEvent, RepositoryFilter } from '../../lib/events';
import { MediaType } from '../../lib/oci';
import { testBucket } from '../testbed/env';
import { kubeApiserverCert } from '../testbed/kube-apiserver-cert';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const QUEUE = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/imagevault-snapshots`;
const FUNCTION_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:imagevault-inventory`;
const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const digest = (byte: string) => `sha256:${byte.repeat(32)}`;
const recorded = (dir: string, name: string) =>
  readFileSync(path.join(__dirname, '..', 'unit', dir, 'recorded', `${name}.json`), 'utf8');
const aws = (name: string) => JSON.parse(recorded('aws', name)) as object;
const pods = [1, 2, 3].map((n) => recorded('kubernetes', `pods-${n}`));
const tokens = pods.map((p) => JSON.parse(p).metadata.continue as string | undefined);

/**
 * Whether a bearer token is an EKS token for `cluster` that STS would accept from CREDENTIALS: the SigV4 query
 * signature recomputed independently of the signer under test (canonical request, string to sign, derived key).
 */
function verifiesAsEksToken(bearer: string, cluster: string): string | undefined {
  if (!bearer.startsWith('k8s-aws-v1.')) return 'no k8s-aws-v1. prefix';
  const url = new URL(Buffer.from(bearer.slice('k8s-aws-v1.'.length), 'base64url').toString());
  const q = url.searchParams;
  if (url.host !== `sts.${REGION}.amazonaws.com` || q.get('Action') !== 'GetCallerIdentity')
    return `not an STS GetCallerIdentity URL: ${url.host}`;
  if (q.get('X-Amz-SignedHeaders') !== 'host;x-k8s-aws-id') return 'the cluster header is not signed';
  if (q.get('X-Amz-Expires') !== '60') return 'not valid for 60 seconds';
  const enc = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalQuery = [...q.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .sort()
    .join('&');
  const canonical = [
    'GET',
    '/',
    canonicalQuery,
    `host:${url.host}\nx-k8s-aws-id:${cluster}\n`,
    'host;x-k8s-aws-id',
    createHash('sha256').update('').digest('hex'),
  ].join('\n');
  const date = q.get('X-Amz-Date')!;
  const scope = `${date.slice(0, 8)}/${REGION}/sts/aws4_request`;
  if (q.get('X-Amz-Credential') !== `${CREDENTIALS.accessKeyId}/${scope}`) return 'wrong credential scope';
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join(
    '\n',
  );
  let key: Buffer = Buffer.from(`AWS4${CREDENTIALS.secretAccessKey}`);
  for (const part of [date.slice(0, 8), REGION, 'sts', 'aws4_request'])
    key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return signature === q.get('X-Amz-Signature') ? undefined : 'the signature does not verify';
}

let server: Server;
let endpoint: string;
let ca: string;
const refusals: string[] = [];

beforeAll(async () => {
  const tls = kubeApiserverCert();
  server = createServer(tls, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    res.setHeader('content-type', 'application/json');
    const why = verifiesAsEksToken((req.headers.authorization ?? '').replace(/^Bearer /, ''), 'prod-eks');
    if (why) {
      refusals.push(why);
      res.writeHead(401).end(JSON.stringify({ kind: 'Status', code: 401, message: 'Unauthorized' }));
      return;
    }
    if (url.pathname !== '/api/v1/pods') {
      res.writeHead(404).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
      return;
    }
    const at = url.searchParams.has('continue') ? tokens.indexOf(url.searchParams.get('continue')!) + 1 : 0;
    res.writeHead(200).end(pods[at]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ca = tls.cert.toString('base64');
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('Function: eksToken', () => {
  it('signs a GetCallerIdentity URL bound to the cluster, as STS verifies it', async () => {
    const token = await eksToken('prod-eks', REGION, CREDENTIALS, new Date('2026-11-30T12:00:00Z'));
    expect(verifiesAsEksToken(token, 'prod-eks')).toBeUndefined();
    // The same token for another cluster does not verify: the header is signed.
    expect(verifiesAsEksToken(token, 'other')).toBe('the signature does not verify');
  });
});

describe('Function: createInventoryHandler (recorded control planes, radosgw vault)', () => {
  const ecs = mockClient(ECSClient);
  const lambda = mockClient(LambdaClient);
  const eks = mockClient(EKSClient);
  const sqs = mockClient(SQSClient);
  const bucket = `lambda-inventory-${Date.now()}`;
  let vault: Vault;
  let s3: S3Client;

  beforeAll(async () => {
    s3 = (await testBucket(bucket)).client;
  });
  afterAll(() => s3.destroy());

  beforeEach(async () => {
    for (const m of [ecs, lambda, eks, sqs]) m.reset();
    ecs
      .on(ListClustersCommand)
      .callsFake((input) => aws(input.nextToken ? 'ecs-ListClusters-2' : 'ecs-ListClusters-1'));
    ecs.on(ListTasksCommand).callsFake((input) => {
      const cluster = String(input.cluster).split('/').pop();
      if (cluster === 'prod')
        return aws(
          input.nextToken === 'AQICAHh0b2tlbi1wYWdlLTI=' ? 'ecs-ListTasks-prod-2' : 'ecs-ListTasks-prod-1',
        );
      return aws(`ecs-ListTasks-${cluster}`);
    });
    ecs
      .on(DescribeTasksCommand)
      .callsFake((input) => aws(`ecs-DescribeTasks-${String(input.cluster).split('/').pop()}`));
    lambda
      .on(ListFunctionsCommand)
      .callsFake((input) => aws(input.Marker ? 'lambda-ListFunctions-2' : 'lambda-ListFunctions-1'));
    lambda.on(GetFunctionCommand).callsFake((input) => {
      if (input.FunctionName === 'gone')
        throw Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
      return aws(`lambda-GetFunction-${input.FunctionName}-${String(input.Qualifier).replace('$', '')}`);
    });
    eks.on(DescribeClusterCommand, { name: 'prod-eks' }).resolves({
      cluster: { name: 'prod-eks', endpoint, certificateAuthority: { data: ca }, status: 'ACTIVE' },
    });
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    vault = new Vault(
      new S3ObjectStore({ bucket, prefix: `v${Math.random().toString(16).slice(2, 8)}`, client: s3 }),
    );
    await vault.init();
    refusals.length = 0;
  });

  const handler = (clusters = ['prod-eks']) =>
    createInventoryHandler({
      vault,
      scanners: () => [
        new EcsInventoryScanner(new ECSClient({ region: REGION }), REGION),
        new LambdaInventoryScanner(new LambdaClient({ region: REGION }), REGION),
        ...clusters.map(
          (cluster) =>
            new EksClusterScanner(new EKSClient({ region: REGION, credentials: CREDENTIALS }), {
              cluster,
              region: REGION,
            }),
        ),
      ],
      queue: new SqsEventQueue(new SQSClient({ region: REGION }), QUEUE),
      region: REGION,
      repositories: RepositoryFilter.parse('shop/,media/'),
      logger: new Logger({ logLevel: 'SILENT' }),
    });

  it('records what runs on ECS, Lambda and EKS, and enqueues the protected gaps of its own ECR only', async () => {
    // Prepare: the vault holds shop/api@1f already
    await vault.putImage({
      repository: 'shop/api',
      descriptor: { mediaType: MediaType.OciManifest, digest: digest('1f'), size: 100 },
      firstSnapshotAt: '2026-11-01T00:00:00.000Z',
      lastSnapshotAt: '2026-11-01T00:00:00.000Z',
      blobs: 2,
      bytes: 1000,
      referrers: [],
      extensions: {},
    });
    // Act
    const summary = await handler()({}, { invokedFunctionArn: FUNCTION_ARN });
    // Assess
    expect(refusals).toEqual([]);
    expect(summary.sources).toEqual([
      { source: 'ecs:eu-west-1', ok: true, sightings: 6 },
      { source: 'lambda:eu-west-1', ok: true, sightings: 3 },
      expect.objectContaining({ source: 'kubernetes:prod-eks', ok: true }),
    ]);
    const queued = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries!)
      .map((e) => parseImageEvent(e.MessageBody!))
      .map((e) => `${e.origin} ${e.account} ${e.region} ${e.repository}@${e.digest}`)
      .sort();
    expect(queued).toEqual(
      summary.gaps
        .filter((g) => g.queued)
        .map((g) => `reconcile ${ACCOUNT} ${REGION} ${g.image}`)
        .sort(),
    );
    expect(
      summary.gaps
        .filter((g) => g.queued)
        .map((g) => g.image)
        .sort(),
    ).toEqual([
      `media/ocr@${digest('79')}`,
      `media/resize@${digest('5b')}`,
      `media/resize@${digest('6a')}`,
      `shop/migrate@${digest('a1')}`,
      `shop/worker@${digest('2e')}`,
    ]);
    expect(summary.gaps.find((g) => g.image === `batch/report@${digest('4c')}`)).toMatchObject({
      queued: false,
      reason: expect.stringContaining('in a repository the vault does not protect (shop/,media/)'),
    });
    expect(summary.gaps.find((g) => g.image.startsWith('aws-observability/'))).toMatchObject({
      queued: false,
      reason: expect.stringContaining("not in this account's ECR in eu-west-1"),
    });
    // The scan is in the vault, as `imagevault inventory --show` reads it.
    const running = await new Inventory(vault.store).inUseSince(new Date(0));
    expect(running.some((r) => r.digest === digest('a1') && r.where.startsWith('kubernetes:prod-eks/'))).toBe(
      true,
    );
  });

  it('records the scan, then fails the invocation when a source could not be scanned (the errors alarm)', async () => {
    eks.on(DescribeClusterCommand, { name: 'prod-eks' }).rejects(
      Object.assign(new Error('User is not authorized to perform: eks:DescribeCluster'), {
        name: 'AccessDeniedException',
      }),
    );
    await expect(handler()({}, { invokedFunctionArn: FUNCTION_ARN })).rejects.toThrow(
      'inventory: kubernetes:prod-eks: eks:DescribeCluster prod-eks in eu-west-1: AccessDeniedException: User is not authorized to perform: eks:DescribeCluster',
    );
    const sources = await new Inventory(vault.store).inUseSince(new Date(0));
    expect(sources.some((r) => r.where.startsWith('ecs:eu-west-1/'))).toBe(true);
  });
});
