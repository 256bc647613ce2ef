import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DescribeTasksCommand, ECSClient, ListClustersCommand, ListTasksCommand } from '@aws-sdk/client-ecs';
import { GetFunctionCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { EcsInventoryScanner } from '../../../lib/aws/ecs-inventory';
import { LambdaInventoryScanner } from '../../../lib/aws/lambda-inventory';
import { Inventory } from '../../../lib/content/inventory';
import { scanInventory } from '../../../lib/services/inventory';
import { tempVault } from '../helpers';

/*
 * ECS and Lambda control planes answered from recorded responses (test/unit/aws/recorded: the JSON bodies the
 * services return, several pages each); the pagination, the normalisation to repository@digest and the vault's
 * running records are the code under test.
 */
const recorded = (name: string) =>
  JSON.parse(readFileSync(path.join(__dirname, 'recorded', `${name}.json`), 'utf8'));

const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const digest = (byte: string) => `sha256:${byte.repeat(32)}`;

function ecsControlPlane() {
  const ecs = mockClient(ECSClient);
  ecs.on(ListClustersCommand).callsFake((input) => {
    if (input.nextToken === undefined) return recorded('ecs-ListClusters-1');
    if (input.nextToken === 'eyJ2ZXJzaW9uIjoxLCJwYWdlIjoyfQ==') return recorded('ecs-ListClusters-2');
    throw new Error(`unknown nextToken ${input.nextToken}`);
  });
  ecs.on(ListTasksCommand).callsFake((input) => {
    if (input.desiredStatus !== 'RUNNING') throw new Error('expected desiredStatus RUNNING');
    const cluster = String(input.cluster).split('/').pop();
    if (cluster === 'prod')
      return recorded(
        input.nextToken === 'AQICAHh0b2tlbi1wYWdlLTI=' ? 'ecs-ListTasks-prod-2' : 'ecs-ListTasks-prod-1',
      );
    return recorded(`ecs-ListTasks-${cluster}`);
  });
  ecs.on(DescribeTasksCommand).callsFake((input) => {
    if (input.tasks.length === 0 || input.tasks.length > 100)
      throw new Error('DescribeTasks takes 1..100 tasks');
    return recorded(`ecs-DescribeTasks-${String(input.cluster).split('/').pop()}`);
  });
  return ecs;
}

function lambdaControlPlane() {
  const lambda = mockClient(LambdaClient);
  lambda.on(ListFunctionsCommand).callsFake((input) => {
    if (input.FunctionVersion !== 'ALL') throw new Error('expected FunctionVersion ALL');
    return recorded(input.Marker ? 'lambda-ListFunctions-2' : 'lambda-ListFunctions-1');
  });
  lambda.on(GetFunctionCommand).callsFake((input) => {
    if (input.FunctionName === 'gone') {
      const e = new Error('Function not found: arn:aws:lambda:eu-west-1:123456789012:function:gone');
      e.name = 'ResourceNotFoundException';
      throw e;
    }
    return recorded(`lambda-GetFunction-${input.FunctionName}-${String(input.Qualifier).replace('$', '')}`);
  });
  return lambda;
}

afterEach(() => {
  mockClient(ECSClient).restore();
  mockClient(LambdaClient).restore();
});

describe('Class: EcsInventoryScanner', () => {
  it('reads every page of clusters and tasks and places each container digest by cluster and service', async () => {
    // Prepare
    const ecs = ecsControlPlane();
    const scanner = new EcsInventoryScanner(new ECSClient({ region: 'eu-west-1' }), 'eu-west-1');
    // Act
    const { running, errors } = await scanner.scan();
    // Assess
    expect(errors).toEqual([]);
    expect(ecs.commandCalls(ListClustersCommand)).toHaveLength(2);
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(4);
    const placed = running.map((r) => [r.image, r.digest, r.placement.kind === 'ecs' && r.placement.group]);
    expect(placed).toEqual([
      [`${ECR}/shop/api:1.8.2`, digest('1f'), 'service:api'],
      ['public.ecr.aws/aws-observability/aws-for-fluent-bit:stable', digest('3d'), 'service:api'],
      [`${ECR}/shop/api:1.8.2`, digest('1f'), 'service:api'],
      ['public.ecr.aws/aws-observability/aws-for-fluent-bit:stable', digest('3d'), 'service:api'],
      [`${ECR}/shop/worker@${digest('2e')}`, digest('2e'), 'service:worker'],
      [`${ECR}/shop/worker:pending`, undefined, 'service:worker'],
      [`${ECR}/batch/report:2026-11`, digest('4c'), 'family:nightly-report'],
    ]);
  });

  it('says which cluster could not be read and still scans the others', async () => {
    const ecs = ecsControlPlane();
    ecs.on(ListTasksCommand, { cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/batch' }).rejects(
      Object.assign(new Error('User is not authorized to perform: ecs:ListTasks'), {
        name: 'AccessDeniedException',
      }),
    );
    const { running, errors } = await new EcsInventoryScanner(
      new ECSClient({ region: 'eu-west-1' }),
      'eu-west-1',
    ).scan();
    expect(errors).toEqual([
      'arn:aws:ecs:eu-west-1:123456789012:cluster/batch: AccessDeniedException: User is not authorized to perform: ecs:ListTasks',
    ]);
    expect(running.some((r) => r.digest === digest('1f'))).toBe(true);
    expect(running.some((r) => r.digest === digest('4c'))).toBe(false);
  });
});

describe('Class: LambdaInventoryScanner', () => {
  it('reads every page, keeps only container images, every version, and skips a function deleted meanwhile', async () => {
    const lambda = lambdaControlPlane();
    const { running, errors } = await new LambdaInventoryScanner(
      new LambdaClient({ region: 'eu-west-1' }),
      'eu-west-1',
    ).scan();
    expect(errors).toEqual([]);
    expect(lambda.commandCalls(ListFunctionsCommand)).toHaveLength(2);
    expect(lambda.commandCalls(GetFunctionCommand).map((c) => c.args[0].input.FunctionName)).not.toContain(
      'hello-zip',
    );
    expect(running.map((r) => [r.image, r.placement.kind === 'lambda' && r.placement.functionArn])).toEqual([
      [`${ECR}/media/resize@${digest('5b')}`, 'arn:aws:lambda:eu-west-1:123456789012:function:resize'],
      [`${ECR}/media/resize@${digest('6a')}`, 'arn:aws:lambda:eu-west-1:123456789012:function:resize'],
      [`${ECR}/media/ocr@${digest('79')}`, 'arn:aws:lambda:eu-west-1:123456789012:function:ocr'],
    ]);
  });
});

describe('Function: scanInventory', () => {
  it('records ECS and Lambda sightings by vault repository, reports gaps, and a source failure on its own', async () => {
    // Prepare
    ecsControlPlane();
    const lambda = lambdaControlPlane();
    lambda
      .on(GetFunctionCommand, { FunctionName: 'ocr' })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' }));
    const vault = await tempVault();
    // Act
    const report = await scanInventory({
      vault,
      scanners: [
        new EcsInventoryScanner(new ECSClient({ region: 'eu-west-1' }), 'eu-west-1'),
        new LambdaInventoryScanner(new LambdaClient({ region: 'eu-west-1' }), 'eu-west-1'),
      ],
      now: () => new Date('2026-11-30T12:00:00.000Z'),
    });
    // Assess
    expect(report.sources).toEqual([
      expect.objectContaining({ source: 'ecs:eu-west-1', ok: true, sightings: 6 }),
      expect.objectContaining({
        source: 'lambda:eu-west-1',
        ok: false,
        sightings: 2,
        error:
          'arn:aws:lambda:eu-west-1:123456789012:function:ocr:$LATEST: TooManyRequestsException: Rate exceeded',
      }),
    ]);
    expect(report.sources[0].unresolved).toEqual([
      {
        image: `${ECR}/shop/worker:pending`,
        where: 'ecs:eu-west-1/prod/worker',
        reason: `${ECR}/shop/worker:pending names no digest`,
      },
    ]);
    expect(
      report.running.map((r) => `${r.repository}@${r.digest.slice(7, 11)} ${r.where.join(',')}`),
    ).toEqual([
      'shop/api@1f1f ecs:eu-west-1/prod/api',
      'aws-observability/aws-for-fluent-bit@3d3d ecs:eu-west-1/prod/api',
      'shop/worker@2e2e ecs:eu-west-1/prod/worker',
      'batch/report@4c4c ecs:eu-west-1/batch/family:nightly-report',
      'media/resize@5b5b lambda:eu-west-1/resize',
      'media/resize@6a6a lambda:eu-west-1/resize',
    ]);
    // Nothing was in the vault and no snapshotter was given: every digest is a gap, reported, not snapshotted.
    expect(report.gaps).toHaveLength(6);
    expect(report.gaps.every((g) => !g.snapshotted)).toBe(true);
    const inventory = new Inventory(vault.store);
    const [api] = await inventory.where('shop/api', digest('1f'));
    expect(api.placement).toMatchObject({
      kind: 'ecs',
      cluster: 'prod',
      service: 'api',
      containers: ['api'],
      instances: [
        'arn:aws:ecs:eu-west-1:123456789012:task/prod/00000000000000000000000000000001',
        'arn:aws:ecs:eu-west-1:123456789012:task/prod/00000000000000000000000000000002',
      ],
    });
    expect(api).toMatchObject({ running: true, firstSeen: '2026-11-30T12:00:00.000Z' });
    expect((await inventory.latestScan())?.sources.map((s) => s.ok)).toEqual([true, false]);
  });

  it('fails one source whose listing fails outright and records the others', async () => {
    const ecs = ecsControlPlane();
    ecs.on(ListClustersCommand).rejects(
      Object.assign(new Error('The security token included in the request is invalid.'), {
        name: 'UnrecognizedClientException',
      }),
    );
    lambdaControlPlane();
    const vault = await tempVault();
    const report = await scanInventory({
      vault,
      scanners: [
        new EcsInventoryScanner(new ECSClient({ region: 'eu-west-1' }), 'eu-west-1'),
        new LambdaInventoryScanner(new LambdaClient({ region: 'eu-west-1' }), 'eu-west-1'),
      ],
    });
    expect(report.sources[0]).toEqual({
      source: 'ecs:eu-west-1',
      ok: false,
      sightings: 0,
      error:
        'ecs:ListClusters in eu-west-1: UnrecognizedClientException: The security token included in the request is invalid.',
      unresolved: [],
    });
    expect(report.sources[1]).toMatchObject({ ok: true, sightings: 3 });
  });
});
