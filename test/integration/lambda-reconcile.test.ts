/**
 * Reconcile over mocked ECR pages (DescribeRepositories, DescribeImages: 2 pages each) against a real vault in a
 * versioned radosgw bucket; SQS and SNS mocked. Checks that exactly the missing images are enqueued, and that a
 * moved tag is alerted.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import {
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  type DescribeImagesCommandInput,
  type DescribeRepositoriesCommandInput,
  type ImageDetail,
} from '@aws-sdk/client-ecr';
import type { S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrImages } from '../../lib/aws/ecr-images';
import { SqsEventQueue } from '../../lib/aws/event-queue';
import { RepositoryFilter, parseImageEvent } from '../../lib/events';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { Digest, MediaType } from '../../lib/oci';
import { ProvenanceLog, recordProvenance } from '../../lib/provenance';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { Reconciler, type ReconcileDeps } from '../../lib/services/reconcile';
import { testBucket } from '../testbed/env';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const REGISTRY = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;
const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:imagevault-alerts`;
const QUEUE = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/imagevault-snapshots`;
const NOW = new Date('2026-03-01T06:00:00.000Z');
const LONG_AGO = new Date('2026-01-01T00:00:00.000Z');

const digest = (name: string) => Digest.of(Buffer.from(name)).toString();
const A = digest('A');
const B = digest('B');
const C = digest('C');
const D = digest('D');
const E = digest('E');
const F = digest('F');
const G = digest('G');

const detail = (d: string, tags: string[] = [], pushedAt = LONG_AGO): ImageDetail => ({
  registryId: ACCOUNT,
  repositoryName: 'app',
  imageDigest: d,
  ...(tags.length > 0 && { imageTags: tags }),
  imagePushedAt: pushedAt,
  imageManifestMediaType: MediaType.OciManifest,
});

describe('Class: Reconciler (mocked ECR pages, radosgw vault)', () => {
  const ecr = mockClient(ECRClient);
  const sqs = mockClient(SQSClient);
  const sns = mockClient(SNSClient);
  const bucket = `lambda-reconcile-${Date.now()}`;
  let s3: S3Client;
  let vault: Vault;

  const reconciler = (overrides: Partial<ReconcileDeps> = {}) =>
    new Reconciler({
      ecr: new EcrImages(new ECRClient({ region: REGION })),
      queue: new SqsEventQueue(new SQSClient({ region: REGION }), QUEUE),
      vault,
      publisher: new SnsAlertPublisher(new SNSClient({ region: REGION }), TOPIC),
      region: REGION,
      repositories: RepositoryFilter.parse('app,team/'),
      logger: new Logger({ logLevel: 'SILENT' }),
      now: () => NOW,
      ...overrides,
    });

  /** What was put on the queue, as (repository, digest, tag) and parsed by the snapshot function's own parser. */
  const enqueued = () =>
    sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries!)
      .map((e) => parseImageEvent(e.MessageBody!))
      .map((e) => ({
        repository: e.repository,
        digest: e.digest,
        tag: e.tag,
        origin: e.origin,
        time: e.time,
      }));

  const snapshotted = async (repository: string, d: string) =>
    vault.putImage({
      repository,
      descriptor: { mediaType: MediaType.OciManifest, digest: d, size: 100 },
      firstSnapshotAt: LONG_AGO.toISOString(),
      lastSnapshotAt: LONG_AGO.toISOString(),
      blobs: 2,
      bytes: 1000,
      referrers: [],
      extensions: {},
    });
  const tagged = async (repository: string, tag: string, d: string, observedAt = LONG_AGO) =>
    vault.recordTag({
      repository,
      tag,
      action: 'push',
      descriptor: { mediaType: MediaType.OciManifest, digest: d, size: 100 },
      observedAt: observedAt.toISOString(),
      source: { kind: 'ecr-event', id: `seed-${tag}` },
    });

  beforeAll(async () => {
    ({ client: s3 } = await testBucket(bucket));
    vault = new Vault(new S3ObjectStore({ bucket, prefix: '', client: s3 }));
    await vault.init();
    // What the vault knows: app:v1 → A, app:latest → A (ECR has since moved latest to B), D untagged, team/web:main → G.
    await snapshotted('app', A);
    await snapshotted('app', B);
    await snapshotted('app', D);
    await snapshotted('team/web', G);
    await tagged('app', 'v1', A);
    await tagged('app', 'latest', A);
    await tagged('team/web', 'main', G);
  });

  beforeEach(() => {
    for (const m of [ecr, sqs, sns]) m.reset();
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    ecr.on(DescribeRepositoriesCommand).callsFake(async (input: DescribeRepositoriesCommandInput) =>
      input.nextToken === undefined
        ? {
            repositories: [
              { repositoryName: 'app', registryId: ACCOUNT },
              { repositoryName: 'other/x', registryId: ACCOUNT },
            ],
            nextToken: 'repos-2',
          }
        : { repositories: [{ repositoryName: 'team/web', registryId: ACCOUNT }] },
    );
    ecr.on(DescribeImagesCommand).callsFake(async (input: DescribeImagesCommandInput) => {
      if (input.repositoryName === 'team/web') {
        return { imageDetails: [{ ...detail(G, ['main']), repositoryName: 'team/web' }] };
      }
      if (input.repositoryName !== 'app')
        throw new Error(`unexpected DescribeImages for ${input.repositoryName}`);
      return input.nextToken === undefined
        ? {
            imageDetails: [
              detail(A, ['v1']), // in the vault, tag current: nothing to do
              detail(B, ['latest']), // in the vault, but latest moved from A to B without an event: gap
              detail(C), // untagged, missing: enqueue by digest
            ],
            nextToken: 'images-2',
          }
        : {
            imageDetails: [
              detail(D), // untagged, in the vault: nothing
              detail(E, ['v2', 'stable']), // missing, tags never seen
              detail(F, ['hot'], new Date(NOW.getTime() - 60_000)), // pushed a minute ago: its event is on its way
            ],
          };
    });
  });

  afterAll(() => s3.destroy());

  it('walks every page, enqueues exactly the missing images and moved tags, and alerts on each gap', async () => {
    // Act
    const summary = await reconciler().run('scheduled');

    // Assess
    expect(summary).toEqual({
      mode: 'scheduled',
      repositories: 2,
      images: 7,
      enqueued: 4,
      gaps: 3,
      deleted: 0,
      recent: 1,
      provenanceUpdated: 0,
      inUseDeleted: 0,
    });
    expect(ecr.commandCalls(DescribeRepositoriesCommand).map((c) => c.args[0].input.nextToken)).toEqual([
      undefined,
      'repos-2',
    ]);
    expect(
      ecr
        .commandCalls(DescribeImagesCommand)
        .map((c) => [c.args[0].input.repositoryName, c.args[0].input.nextToken]),
    ).toEqual([
      ['app', undefined],
      ['app', 'images-2'],
      ['team/web', undefined],
    ]);
    expect(ecr.commandCalls(DescribeImagesCommand)[0].args[0].input).toMatchObject({
      registryId: ACCOUNT,
      maxResults: 1000,
    });
    const time = NOW.toISOString();
    expect(enqueued()).toEqual([
      { repository: 'app', digest: B, tag: 'latest', origin: 'reconcile', time },
      { repository: 'app', digest: C, tag: undefined, origin: 'reconcile', time },
      { repository: 'app', digest: E, tag: 'v2', origin: 'reconcile', time },
      { repository: 'app', digest: E, tag: 'stable', origin: 'reconcile', time },
    ]);
    const alerts = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(alerts.map((a) => a.Subject)).toEqual([
      `[imagevault] reconcile GAP: app:latest (${B.slice(0, 19)}...)`,
      `[imagevault] reconcile GAP: app:v2 (${E.slice(0, 19)}...)`,
      `[imagevault] reconcile GAP: app:stable (${E.slice(0, 19)}...)`,
    ]);
    expect(alerts[0].MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'reconcile-gap' },
      repository: { DataType: 'String', StringValue: 'app' },
      severity: { DataType: 'String', StringValue: 'warning' },
    });
    expect(alerts[0].Message).toContain(`Vault says:    ${A}, observed ${LONG_AGO.toISOString()}`);
    expect(alerts[0].Message).toContain(
      `imagevault restore app@${A} --to ${REGISTRY}/app:latest --store s3://${bucket}`,
    );
  });

  it('rewrites the OCI layout index from the history at the end of the run', async () => {
    // Act
    await reconciler().run('scheduled');

    // Assess
    const index = JSON.parse((await vault.store.getBytes('index.json'))!.toString('utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(
      index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]).sort(),
    ).toEqual([
      ['app:latest', A],
      ['app:v1', A],
      ['team/web:main', G],
    ]);
  });

  it('in a backfill, enqueues tags never seen without alerting, but still alerts on a moved tag', async () => {
    // Act
    const summary = await reconciler().run('backfill');

    // Assess
    expect(summary).toMatchObject({ enqueued: 4, gaps: 1 });
    const alerts = sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Subject);
    expect(alerts).toEqual([`[imagevault] reconcile GAP: app:latest (${B.slice(0, 19)}...)`]);
  });

  it('sends one alert listing every gap when there are more than maxGapAlerts', async () => {
    // Act
    await reconciler({ maxGapAlerts: 2 }).run('scheduled');

    // Assess
    const alerts = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(alerts).toHaveLength(1);
    expect(alerts[0].Subject).toBe('[imagevault] reconcile found 3 GAPS in 1 repository');
    expect(alerts[0].Message).toContain('app:stable');
  });

  it('still rewrites the index and refreshes provenance when an alert cannot be published', async () => {
    // Prepare: SNS refuses every publish (a message over its limit, a topic policy, a throttle)
    sns.on(PublishCommand).rejects(new Error('Invalid parameter: Message too long'));
    const index = jest.spyOn(vault, 'writeLayoutIndex');
    const refresh = jest.spyOn(ProvenanceLog.prototype, 'repositories');

    try {
      // Act
      const summary = await reconciler().run('scheduled');

      // Assess
      expect(summary).toMatchObject({ gaps: 3, enqueued: 4 });
      expect(sns.commandCalls(PublishCommand)).toHaveLength(3);
      expect(index).toHaveBeenCalledTimes(1);
      expect(refresh).toHaveBeenCalledTimes(1);
    } finally {
      index.mockRestore();
      refresh.mockRestore();
    }
  });

  it('enqueues nothing once the vault has caught up', async () => {
    // Prepare: what the snapshot function would have done with the messages.
    await snapshotted('app', C);
    await snapshotted('app', E);
    await tagged('app', 'latest', B, NOW);
    await tagged('app', 'v2', E, NOW);
    await tagged('app', 'stable', E, NOW);

    // Act
    const summary = await reconciler().run('scheduled');

    // Assess
    expect(summary).toEqual({
      mode: 'scheduled',
      repositories: 2,
      images: 7,
      enqueued: 0,
      gaps: 0,
      deleted: 0,
      recent: 1,
      provenanceUpdated: 0,
      inUseDeleted: 0,
    });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('reports tags deleted in ECR without an event (registry drift) once, with the snapshot to restore', async () => {
    // Prepare: the vault holds app:old (and a whole repository team/gone) that ECR no longer lists
    await tagged('app', 'old', D, LONG_AGO);
    await snapshotted('team/gone', G);
    await tagged('team/gone', 'main', G, LONG_AGO);

    // Act
    const first = await reconciler().run('scheduled');
    const alerts = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    sns.resetHistory();
    const second = await reconciler().run('scheduled');

    // Assess
    expect(first.deleted).toBe(2);
    const drift = alerts.filter((a) => a.MessageAttributes?.kind?.StringValue === 'registry-drift');
    expect(drift.map((a) => a.MessageAttributes?.repository?.StringValue).sort()).toEqual([
      'app',
      'team/gone',
    ]);
    expect(drift.find((a) => a.MessageAttributes?.repository?.StringValue === 'app')!.Message).toContain(D);
    expect((await vault.history('app', 'old')).map((o) => o.action)).toEqual(['push', 'delete']);
    expect(second.deleted).toBe(0);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('counts archived images as present in ECR: not deleted, not alerted, not enqueued (they cannot be pulled)', async () => {
    // Prepare: the vault holds app:cold → D; ECR archived it, so only a status filter of ANY lists it
    await tagged('app', 'cold', D, LONG_AGO);
    const listAll = ecr.commandCalls(DescribeImagesCommand).length; // 0 after reset
    ecr.on(DescribeImagesCommand).callsFake(async (input: DescribeImagesCommandInput) => {
      if (input.repositoryName === 'team/web')
        return { imageDetails: [{ ...detail(G, ['main']), repositoryName: 'team/web' }] };
      const active = [detail(A, ['v1'])];
      const archived: ImageDetail[] = [
        { ...detail(D, ['cold']), imageStatus: 'ARCHIVED' },
        { ...detail(digest('H'), ['thawing']), imageStatus: 'ACTIVATING' },
      ];
      return { imageDetails: input.filter?.imageStatus === 'ANY' ? [...active, ...archived] : active };
    });

    // Act
    const summary = await reconciler().run('scheduled');

    // Assess
    expect(listAll).toBe(0);
    expect(summary.images).toBe(4);
    expect((await vault.history('app', 'cold')).map((o) => o.action)).toEqual(['push']);
    const messages = sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Message ?? '');
    expect(messages.filter((m) => m.includes('app:cold') || m.includes('thawing'))).toEqual([]);
    expect(enqueued().filter((e) => e.digest === D || e.tag === 'thawing')).toEqual([]);
    expect(ecr.commandCalls(DescribeImagesCommand)[0].args[0].input.filter).toEqual({ imageStatus: 'ANY' });
  });

  it('asks again what provenance records left pending: an identity CloudTrail never sent becomes unknown', async () => {
    // Prepare: app@A recorded an hour after its push, when CloudTrail could still have been on its way
    const recorded = await recordProvenance(vault, 'app', A, {
      now: new Date(LONG_AGO.getTime() + 3600_000),
    });
    expect(recorded.statement.predicate.push.identityStatus).toBe('pending');

    // Act
    const first = await reconciler().run('scheduled');
    const second = await reconciler().run('scheduled');

    // Assess: one entry appended, in radosgw, and nothing more on the next run
    expect(first.provenanceUpdated).toBe(1);
    expect(second.provenanceUpdated).toBe(0);
    const entries = await new ProvenanceLog(vault.store).entries('app');
    expect(entries.map((e) => e.statement.predicate.push.identityStatus)).toEqual(['pending', 'unknown']);
    expect(entries[1].statement.predicate.snapshot).toMatchObject({
      replication: 'not-replicated',
      versionIds: { record: expect.any(String) },
    });
  });
});
