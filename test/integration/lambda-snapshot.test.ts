/**
 * The snapshot Lambda's handler with real ECR event JSON, against the test bed's real registry (standing in for
 * ECR's data plane) and a versioned bucket on radosgw; SNS is mocked (aws-sdk-client-mock).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Context, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { RepositoryFilter, reconcileEvent } from '../../lib/events';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { ProvenanceLog } from '../../lib/provenance/log';
import { staticCredentials } from '../../lib/registry/auth';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { Registries } from '../../lib/registry';
import { createSnapshotHandler, type SnapshotHandler } from '../../lib/aws/handlers/snapshot';
import { pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { testBucket, testbed } from '../testbed/env';
import {
  ACCOUNT,
  REGION,
  ecrEvent,
  pullThroughCacheEvent,
  replicationEvent,
  sqsRecord,
} from '../unit/aws/ecr-events';
import { tempDir } from '../unit/helpers';

const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:imagevault-alerts`;
const PREFIX = 'lambda-snap';

describe('Function: createSnapshotHandler (real registry, radosgw)', () => {
  const bucket = `lambda-snap-${Date.now()}`;
  const sns = mockClient(SNSClient);
  let s3: S3Client;
  let vault: Vault;
  let fx: PushedFixtures;
  let registry: string;
  let handler: SnapshotHandler;
  let metrics: Metrics;
  let metricCalls: jest.SpyInstance;
  const savedMetricsDisabled = process.env.POWERTOOLS_METRICS_DISABLED;

  /** BytesCopied values recorded since the last call. */
  const bytesCopied = () => {
    const values = metricCalls.mock.calls.filter((c) => c[0] === 'BytesCopied').map((c) => c[2] as number);
    metricCalls.mockClear();
    return values;
  };
  const run = (...records: SQSRecord[]) => handler({ Records: records });

  beforeAll(async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    ({ client: s3 } = await testBucket(bucket));
    vault = new Vault(new S3ObjectStore({ bucket, prefix: 'vault', client: s3 }));
    registry = testbed().registry;
    fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: PREFIX });
    metrics = new Metrics({ namespace: 'imagevault-test', serviceName: 'snapshot' });
    metricCalls = jest.spyOn(metrics, 'addMetric');
    handler = createSnapshotHandler({
      vault,
      registries: new Registries({ credentials: staticCredentials({}) }),
      publisher: new SnsAlertPublisher(new SNSClient({ region: REGION }), TOPIC),
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics,
      // The real registry stands in for <account>.dkr.ecr.<region>.amazonaws.com.
      registryFor: (account, region) => {
        expect([account, region]).toEqual([ACCOUNT, REGION]);
        return registry;
      },
      repositories: RepositoryFilter.parse(`${PREFIX}/`),
      maxReceiveCount: 3,
    });
  });

  beforeEach(() => {
    metricCalls.mockClear();
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  });

  afterAll(() => {
    if (savedMetricsDisabled === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = savedMetricsDisabled;
    s3.destroy();
  });

  it('snapshots a multi-arch push: the untagged children, then the tagged index, each by digest', async () => {
    // Prepare: ECR sends one event per manifest; the children are pushed (and announced) first.
    const [amd64, arm64] = fx.index.manifests!;
    const repository = fx.index.repo;
    const records = [
      sqsRecord(
        ecrEvent({ id: 'evt-child-amd64', repository, digest: amd64.digest, time: '2026-03-01T10:00:00Z' }),
      ),
      sqsRecord(
        ecrEvent({ id: 'evt-child-arm64', repository, digest: arm64.digest, time: '2026-03-01T10:00:01Z' }),
      ),
      sqsRecord(
        ecrEvent({
          id: 'evt-index',
          repository,
          digest: fx.index.digest,
          tag: '1',
          time: '2026-03-01T10:00:02Z',
        }),
      ),
    ];

    // Act
    const response = await run(...records);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const blobsCopied = metricCalls.mock.calls
      .filter((c) => c[0] === 'BlobsCopied')
      .map((c) => c[2] as number);
    const copied = bytesCopied();
    expect(blobsCopied[2]).toBe(0);
    expect(copied[0]).toBeGreaterThan(0);
    expect(copied[1]).toBeGreaterThan(0);
    // The children, and so every blob, are already in the vault: the index copies only its own manifest.
    expect(copied[2]).toBe(fx.index.size);
    for (const d of [amd64.digest, arm64.digest, fx.index.digest]) {
      expect(await vault.image(repository, d)).toBeDefined();
    }
    for (const blob of fx.index.blobs) {
      expect(await vault.store.head(`blobs/sha256/${blob.slice('sha256:'.length)}`)).toBeDefined();
    }
    const history = await vault.history(repository, '1');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      action: 'push',
      descriptor: { digest: fx.index.digest, mediaType: fx.index.mediaType, size: fx.index.size },
      observedAt: '2026-03-01T10:00:02.000Z',
      source: { kind: 'ecr-event', id: 'evt-index' },
    });
    // No tag history for the untagged children.
    expect(await vault.tags(repository)).toEqual(['1']);
  });

  it('snapshots images that arrive without a push: a pull-through cache sync and a replication', async () => {
    // Prepare: the docker image as if a cache rule had pulled it from upstream, another as if replicated in.
    const cached = fx.docker;
    const replicated = fx.withEmptyLayer;
    const records = [
      sqsRecord(pullThroughCacheEvent({ repository: cached.repo, digest: cached.digest, tag: 'cached' })),
      sqsRecord(
        replicationEvent({ repository: replicated.repo, digest: replicated.digest, tag: 'replicated' }),
      ),
    ];

    // Act
    const response = await run(...records);

    // Assess: both in the vault, and the history says how each arrived.
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await vault.image(cached.repo, cached.digest)).toBeDefined();
    expect(await vault.image(replicated.repo, replicated.digest)).toBeDefined();
    expect((await vault.history(cached.repo, 'cached')).pop()).toMatchObject({
      action: 'push',
      descriptor: { digest: cached.digest },
      source: { kind: 'pull-through-cache' },
    });
    expect((await vault.history(replicated.repo, 'replicated')).pop()).toMatchObject({
      action: 'push',
      descriptor: { digest: replicated.digest },
      source: { kind: 'replication' },
    });
    // Nobody pushed them here: no CloudTrail PutImage will come, so the pusher is unknown now, not pending for ever.
    const log = ProvenanceLog.of(vault);
    expect((await log.latest(cached.repo, cached.digest))?.statement.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: expect.stringMatching(/^the image came in through a pull-through cache rule/),
    });
    expect((await log.latest(replicated.repo, replicated.digest))?.statement.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: expect.stringMatching(/^the image was replicated into this registry/),
    });
  });

  it('copies 0 bytes and records nothing new on a duplicate delivery of the same event', async () => {
    // Prepare
    const repository = fx.index.repo;
    const again = sqsRecord(
      ecrEvent({
        id: 'evt-index',
        repository,
        digest: fx.index.digest,
        tag: '1',
        time: '2026-03-01T10:00:02Z',
      }),
      2,
    );

    // Act
    const response = await run(again);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(metrics.addMetric).toHaveBeenCalledWith('BlobsCopied', 'Count', 0);
    expect(bytesCopied()).toEqual([0]);
    expect(await vault.history(repository, '1')).toHaveLength(1);
  });

  it('records a new observation for a new push event of the same tag and digest, and for a reconcile event', async () => {
    // Prepare
    const repository = fx.index.repo;
    const repush = ecrEvent({
      id: 'evt-index-2',
      repository,
      digest: fx.index.digest,
      tag: '1',
      time: '2026-03-02T00:00:00Z',
    });
    const reconciled = reconcileEvent({
      account: ACCOUNT,
      region: REGION,
      repository,
      digest: fx.index.digest,
      tag: 'stable',
      time: '2026-03-02T01:00:00.000Z',
      id: 'reconcile-1',
    });

    // Act
    const response = await run(sqsRecord(repush), sqsRecord(reconciled));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(bytesCopied()).toEqual([0, 0]);
    expect((await vault.history(repository, '1')).map((o) => o.source.id)).toEqual([
      'evt-index',
      'evt-index-2',
    ]);
    expect((await vault.history(repository, 'stable'))[0].source).toEqual({
      kind: 'reconcile',
      id: 'reconcile-1',
    });
  });

  it('reports only the failing records in batchItemFailures; the others succeed', async () => {
    // Prepare
    const missing = `sha256:${'0'.repeat(64)}`;
    const good = sqsRecord(
      ecrEvent({ id: 'evt-multi', repository: fx.multiLayer.repo, digest: fx.multiLayer.digest, tag: '1' }),
    );
    const unknownDigest = sqsRecord(
      ecrEvent({ id: 'evt-missing', repository: fx.multiLayer.repo, digest: missing, tag: 'gone' }),
    );
    const garbage = sqsRecord('{"hello": "world"}');

    // Act
    const response = await run(unknownDigest, good, garbage);

    // Assess
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: unknownDigest.messageId },
      { itemIdentifier: garbage.messageId },
    ]);
    expect(await vault.image(fx.multiLayer.repo, fx.multiLayer.digest)).toBeDefined();
    // The signature (an OCI 1.1 referrer of multiLayer) came along.
    expect(
      (await vault.image(fx.multiLayer.repo, fx.multiLayer.digest))!.referrers.map((r) => r.digest),
    ).toEqual([fx.signature.digest]);
    expect(await vault.tags(fx.multiLayer.repo)).toEqual(['1']);
    // Not the last attempt yet: no alert.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('alerts when a record fails on its last attempt (ApproximateReceiveCount ≥ MAX_RECEIVE_COUNT)', async () => {
    // Prepare
    const missing = `sha256:${'0'.repeat(64)}`;
    const last = sqsRecord(
      ecrEvent({
        id: 'evt-missing',
        repository: fx.multiLayer.repo,
        digest: missing,
        tag: 'gone',
        time: '2026-03-01T11:00:00Z',
      }),
      3,
    );
    const good = sqsRecord(
      ecrEvent({ id: 'evt-docker', repository: fx.docker.repo, digest: fx.docker.digest, tag: '1' }),
    );

    // Act
    const response = await run(last, good);

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: last.messageId }]);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    expect(input).toMatchObject({
      TopicArn: TOPIC,
      Subject: `[imagevault] snapshot FAILED: ${fx.multiLayer.repo}:gone (sha256:000000000000...)`,
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'snapshot-failed' },
        repository: { DataType: 'String', StringValue: fx.multiLayer.repo },
        severity: { DataType: 'String', StringValue: 'critical' },
      },
    });
    expect(input.Message).toContain('3 attempts in a row');
    expect(input.Message).toContain('MANIFEST_UNKNOWN');
    expect(input.Message).toContain(
      `imagevault snapshot ${registry}/${fx.multiLayer.repo}@${missing} --store s3://${bucket}/vault`,
    );
  });

  describe('when the invocation runs out of time', () => {
    /** A Lambda context whose remaining time is each value in turn, then the last one. */
    const contextWith = (...remainingMs: number[]) =>
      ({
        getRemainingTimeInMillis: () => (remainingMs.length > 1 ? remainingMs.shift()! : remainingMs[0]),
      }) as unknown as Context;

    it('starts no record it cannot finish: those are batch item failures, the last attempt first', async () => {
      // Prepare: 15 minutes left for the first record, then 1 minute
      const fresh = sqsRecord(
        ecrEvent({ id: 'evt-late-1', repository: fx.docker.repo, digest: fx.docker.digest, tag: 'late-1' }),
      );
      const fresh2 = sqsRecord(
        ecrEvent({ id: 'evt-late-2', repository: fx.docker.repo, digest: fx.docker.digest, tag: 'late-2' }),
      );
      const lastChance = sqsRecord(
        ecrEvent({ id: 'evt-late-3', repository: fx.docker.repo, digest: fx.docker.digest, tag: 'late-3' }),
        3,
      );

      // Act
      const response = await handler({ Records: [fresh, fresh2, lastChance] }, contextWith(900_000, 60_000));

      // Assess: the record on its last attempt went first and was snapshotted; the others were not started
      expect(response.batchItemFailures).toEqual([
        { itemIdentifier: fresh.messageId },
        { itemIdentifier: fresh2.messageId },
      ]);
      expect(await vault.tags(fx.docker.repo)).toContain('late-3');
      expect(await vault.tags(fx.docker.repo)).not.toContain('late-1');
      expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    });

    it('alerts a record it could not start on its last attempt, instead of letting it reach the DLQ unsaid', async () => {
      // Prepare
      const last = sqsRecord(
        ecrEvent({ id: 'evt-late-4', repository: fx.docker.repo, digest: fx.docker.digest, tag: 'late-4' }),
        3,
      );

      // Act: a batch whose every record fails ends the invocation in an error (Powertools), which fails them all
      const outcome = await handler({ Records: [last] }, contextWith(30_000)).catch((e: unknown) => e);

      // Assess
      expect((outcome as Error).name).toBe('FullBatchFailureError');
      const calls = sns.commandCalls(PublishCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0].args[0].input.Subject).toBe(
        `[imagevault] snapshot FAILED: ${fx.docker.repo}:late-4 (${fx.docker.digest.slice(0, 19)}...)`,
      );
      expect(calls[0].args[0].input.Message).toContain(
        'not started: 30 s of the invocation were left and a record needs 180 s',
      );
    });
  });

  it('alerts when a message it cannot read fails on its last attempt, quoting it without credentials', async () => {
    // Prepare: not an ECR event, and a token in it that must not be mailed around.
    const garbage = sqsRecord('{"hello": "world", "token": "tok-s3cr3t-value"}', 3);
    const good = sqsRecord(
      ecrEvent({ id: 'evt-docker-2', repository: fx.docker.repo, digest: fx.docker.digest, tag: '1' }),
    );

    // Act
    const response = await run(garbage, good);

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: garbage.messageId }]);
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    expect(input).toMatchObject({
      TopicArn: TOPIC,
      Subject: '[imagevault] unreadable event on the snapshot queue',
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'event-unreadable' },
        severity: { DataType: 'String', StringValue: 'critical' },
      },
    });
    expect(input.Message).toContain('3 attempts in a row');
    expect(input.Message).toContain(garbage.messageId);
    expect(input.Message).toContain('"hello": "world"');
    expect(input.Message).not.toContain('tok-s3cr3t-value');
  });

  it('ignores repositories outside REPOSITORY_PREFIXES and failed pushes', async () => {
    // Prepare
    const outside = sqsRecord(
      ecrEvent({ id: 'evt-outside', repository: 'elsewhere/app', digest: fx.plainTar.digest, tag: '1' }),
    );
    const failedPush = sqsRecord(
      ecrEvent({
        id: 'evt-failed',
        repository: fx.plainTar.repo,
        digest: fx.plainTar.digest,
        tag: '1',
        result: 'FAILURE',
      }),
    );

    // Act
    const response = await run(outside, failedPush);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(bytesCopied()).toEqual([]);
    expect(await vault.image(fx.plainTar.repo, fx.plainTar.digest)).toBeUndefined();
  });

  it('records a delete in the history, keeps the snapshot, and alerts naming it', async () => {
    // Prepare
    const repository = fx.index.repo;
    const del = sqsRecord(
      ecrEvent({
        id: 'evt-delete',
        repository,
        digest: fx.index.digest,
        tag: '1',
        action: 'DELETE',
        time: '2026-03-03T08:00:00Z',
      }),
    );
    const good = sqsRecord(
      ecrEvent({ id: 'evt-shared', repository: fx.shared[0].repo, digest: fx.shared[0].digest, tag: '1' }),
    );

    // Act
    const response = await run(del, good);
    const duplicate = await run(sqsRecord(JSON.parse(del.body), 2), good);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(duplicate.batchItemFailures).toEqual([]);
    const history = await vault.history(repository, '1');
    expect(history.map((o) => [o.action, o.source.id])).toEqual([
      ['push', 'evt-index'],
      ['push', 'evt-index-2'],
      ['delete', 'evt-delete'],
    ]);
    expect(history[2].descriptor.digest).toBe(fx.index.digest);
    // Nothing left the vault: the tag still resolves to its last push, restorable.
    expect((await vault.resolveTag(repository, '1')).descriptor.digest).toBe(fx.index.digest);
    expect(await vault.image(repository, fx.index.digest)).toBeDefined();
    const calls = sns.commandCalls(PublishCommand);
    expect(calls.length).toBeGreaterThanOrEqual(1);
    const input = calls[0].args[0].input;
    expect(input).toMatchObject({
      TopicArn: TOPIC,
      Subject: `[imagevault] image DELETED in ECR: ${repository}:1 (${fx.index.digest.slice(0, 19)}...)`,
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'image-deleted' },
        repository: { DataType: 'String', StringValue: repository },
        severity: { DataType: 'String', StringValue: 'warning' },
      },
    });
    expect(input.Message).toContain(
      `imagevault restore ${repository}@${fx.index.digest} --to ${registry}/${repository}:1 --store s3://${bucket}/vault`,
    );
  });

  it('records the delete of a digest on every tag the vault last saw on it', async () => {
    // Prepare: a delete by digest names no tag.
    const del = sqsRecord(
      ecrEvent({
        id: 'evt-delete-digest',
        repository: fx.shared[0].repo,
        digest: fx.shared[0].digest,
        action: 'DELETE',
      }),
    );
    const untaggedUnknown = sqsRecord(
      ecrEvent({
        id: 'evt-delete-untagged',
        repository: fx.shared[0].repo,
        digest: `sha256:${'1'.repeat(64)}`,
        action: 'DELETE',
      }),
    );

    // Act
    const response = await run(del, untaggedUnknown);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect((await vault.history(fx.shared[0].repo, '1')).pop()).toMatchObject({
      action: 'delete',
      source: { kind: 'ecr-event', id: 'evt-delete-digest' },
    });
    // One alert: the lifecycle-style delete of an untagged image the vault never held is not alerted.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });
});
