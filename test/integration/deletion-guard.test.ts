/**
 * The deletion-guard story, end to end: an image is pushed to the test bed's registry (standing in for ECR's data
 * plane) and snapshotted by the snapshot function from its push event into a versioned radosgw bucket; the in-use
 * inventory records it running; its manifest is DELETEd from the registry; the DELETE event goes through the same
 * handler. skopeo, an independent client, is the oracle of what the registry serves. SNS and ECR's control plane
 * (DescribeRepositories, DescribeImages) are mocked from recorded shapes.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  type DescribeImagesCommandInput,
  type ImageDetail,
} from '@aws-sdk/client-ecr';
import type { S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrImages } from '../../lib/aws/ecr-images';
import { EcrRepositories } from '../../lib/aws/ecr-repositories';
import { SqsEventQueue } from '../../lib/aws/event-queue';
import { createSnapshotHandler, type SnapshotHandler } from '../../lib/aws/handlers/snapshot';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { Inventory } from '../../lib/content/inventory';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { RepositoryFilter } from '../../lib/events';
import { staticCredentials } from '../../lib/registry/auth';
import { Registries } from '../../lib/registry';
import { DeletionGuard } from '../../lib/services/deletion-guard';
import { Reconciler } from '../../lib/services/reconcile';
import { LayoutBuilder, pushLayout, recordRunning, skopeoDigest, type BuiltImage } from '../../fixtures';
import { s3ProcessEnv, testBucket, testbed } from '../testbed/env';
import { ACCOUNT, REGION, ecrEvent, sqsRecord } from '../unit/aws/ecr-events';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:imagevault-alerts`;
const QUEUE = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/imagevault-snapshots`;
const PREFIX = 'guard';

interface Published {
  subject: string;
  message: string;
  kind: string;
  severity: string;
}

describe('deletion guard (real registry, radosgw, skopeo)', () => {
  const bucket = `deletion-guard-${Date.now()}`;
  const sns = mockClient(SNSClient);
  const ecr = mockClient(ECRClient);
  const sqs = mockClient(SQSClient);
  let s3: S3Client;
  let vault: Vault;
  let registry: string;
  let dir: string;
  let seq = 0;
  /** Every registry request the snapshot function made (`PUT /v2/…`), to see what it pushed. */
  let requests: string[] = [];
  const pushes = () => requests.filter((r) => !/^(GET|HEAD) /.test(r));

  const published = (): Published[] =>
    sns.commandCalls(PublishCommand).map((c) => {
      const i = c.args[0].input;
      return {
        subject: i.Subject!,
        message: i.Message!,
        kind: i.MessageAttributes!.kind.StringValue!,
        severity: i.MessageAttributes!.severity.StringValue!,
      };
    });

  /** The snapshot function's handler, its deletion guard restoring or not. */
  const handler = (autoRestore: boolean, control?: EcrRepositories): SnapshotHandler => {
    const publisher = new SnsAlertPublisher(new SNSClient({ region: REGION }), TOPIC);
    return createSnapshotHandler({
      vault,
      registries: () =>
        new Registries({
          credentials: staticCredentials({}),
          onRequest: (r) => requests.push(`${r.method} ${new URL(r.url, 'http://registry').pathname}`),
        }),
      publisher,
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'imagevault-test', serviceName: 'snapshot' }),
      registryFor: () => registry,
      repositories: RepositoryFilter.parse(`${PREFIX}/`),
      detectBases: false,
      guard: new DeletionGuard({
        vault,
        inUse: new Inventory(vault.store),
        publisher,
        autoRestore,
        ...(control && { repositories: control }),
      }),
    });
  };

  const run = async (h: SnapshotHandler, ...records: SQSRecord[]) =>
    expect(await h({ Records: records })).toEqual({ batchItemFailures: [] });

  /** An image of two small layers, pushed to the registry as repository:tag. */
  const pushed = async (repository: string, tag: string): Promise<BuiltImage> => {
    const b = new LayoutBuilder(dir);
    const name = `img-${++seq}`;
    const image = await b.image({
      name,
      layers: [await b.layer({ sizeBytes: 4096 }), await b.layer({ sizeBytes: 64 * 1024 })],
    });
    await pushLayout(dir, name, `${registry}/${repository}:${tag}`);
    return image;
  };

  /** The push, snapshotted through its ECR event: the vault now holds the image and the tag. */
  const pushedAndSnapshotted = async (repository: string, tag: string): Promise<BuiltImage> => {
    const image = await pushed(repository, tag);
    await run(
      handler(false),
      sqsRecord(ecrEvent({ id: `push-${seq}`, repository, digest: image.digest, tag })),
    );
    expect(await vault.image(repository, image.digest)).toBeDefined();
    return image;
  };

  /** DELETE of the manifest by digest, as a lifecycle rule or cleanup does; skopeo then finds it gone. */
  const deleteFromRegistry = async (repository: string, digest: string): Promise<void> => {
    const res = await fetch(`http://${registry}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await expect(skopeoDigest(`${registry}/${repository}@${digest}`)).rejects.toThrow(/manifest unknown/i);
  };

  /** DELETE of every blob too, as ECR's garbage collection of an image's layers does: the restore must upload them. */
  const deleteBlobs = async (repository: string, image: BuiltImage): Promise<void> => {
    for (const d of [image.config, ...image.layers]) {
      const res = await fetch(`http://${registry}/v2/${repository}/blobs/${d.digest}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
      const head = await fetch(`http://${registry}/v2/${repository}/blobs/${d.digest}`, { method: 'HEAD' });
      expect(head.status).toBe(404);
    }
  };

  const deleteEvent = (repository: string, digest: string, tag?: string) =>
    sqsRecord(
      ecrEvent({
        id: `delete-${++seq}`,
        action: 'DELETE',
        repository,
        digest,
        ...(tag && { tag }),
        time: '2026-03-02T10:00:00Z',
      }),
    );

  const restoreCommand = (repository: string, digest: string, tag: string) =>
    `imagevault restore ${repository}@${digest} --to ${registry}/${repository}:${tag} --store ${vault.url}`;

  beforeAll(async () => {
    ({ client: s3 } = await testBucket(bucket));
    vault = new Vault(new S3ObjectStore({ bucket, prefix: 'vault', client: s3 }));
    registry = testbed().registry;
    dir = tempDir();
  });

  beforeEach(() => {
    for (const m of [sns, ecr, sqs]) m.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  });

  afterAll(() => s3.destroy());

  it('restores a running image deleted from the registry, same digest, tag set again, and says so in a critical alert', async () => {
    // Prepare: pushed, snapshotted, running in ECS, then deleted from the registry
    const repository = `${PREFIX}/api`;
    const image = await pushedAndSnapshotted(repository, 'v1');
    const where = await recordRunning(
      vault,
      { repository, digest: image.digest },
      { cluster: 'prod', service: 'api', registry },
    );
    await deleteFromRegistry(repository, image.digest);
    await deleteBlobs(repository, image);
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-2' });

    // Act: the DELETE event reaches the snapshot function, autoRestoreInUse on
    const event = deleteEvent(repository, image.digest, 'v1');
    requests = [];
    await run(handler(true), event);

    // Assess: every blob was uploaded again (none was left in the registry)
    for (const d of [image.config, ...image.layers]) {
      const head = await fetch(`http://${registry}/v2/${repository}/blobs/${d.digest}`, { method: 'HEAD' });
      expect([d.digest, head.status]).toEqual([d.digest, 200]);
    }
    // one critical alert naming where it runs, the task, the snapshot and the restore command
    const alerts = published();
    expect(alerts).toHaveLength(1);
    const [alert] = alerts;
    expect(alert).toMatchObject({ kind: 'in-use-deleted', severity: 'critical' });
    expect(alert.subject).toBe(
      `[imagevault] IN USE image DELETED, restored: ${repository}:v1 (${image.digest.slice(0, 19)}...)`,
    );
    expect(where).toBe('ecs:eu-west-1/prod/api');
    expect(alert.message).toContain(
      `  ${where} (arn:aws:ecs:eu-west-1:111122223333:task/prod/0123456789abcdef)`,
    );
    expect(alert.message).toContain(`Last snapshot: ${image.digest}, snapshotted `);
    expect(alert.message).toContain(`reports the same digest: ${image.digest}.`);
    expect(alert.message).toContain('Tag v1: set again.');
    expect(alert.message).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
    // and the oracle: the registry serves the same bytes again, by digest and by tag
    expect(await skopeoDigest(`${registry}/${repository}@${image.digest}`)).toBe(image.digest);
    expect(await skopeoDigest(`${registry}/${repository}:v1`)).toBe(image.digest);

    expect(pushes()).toEqual(
      expect.arrayContaining([
        `PUT /v2/${repository}/manifests/${image.digest}`,
        `PUT /v2/${repository}/manifests/v1`,
      ]),
    );

    // Act again: a second delivery of the event (SQS delivers again when the first failed, its alert perhaps)
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-3' });
    requests = [];
    await run(handler(true), { ...event, attributes: { ...event.attributes, ApproximateReceiveCount: '2' } });

    // Assess: it is back, said as a warning; nothing is pushed twice
    expect(pushes()).toEqual([]);
    expect(published().map((p) => [p.kind, p.severity, p.subject.slice(0, 40)])).toEqual([
      ['in-use-deleted', 'warning', '[imagevault] IN USE image DELETED, back:'],
    ]);
    expect(published()[0].message).toContain('It is in the registry again, by digest and with its tags');
  });

  it('with autoRestoreInUse off alerts with the exact restore command and pushes nothing; the command works', async () => {
    // Prepare
    const repository = `${PREFIX}/worker`;
    const image = await pushedAndSnapshotted(repository, 'stable');
    await recordRunning(
      vault,
      { repository, digest: image.digest },
      { cluster: 'prod', service: 'worker', registry },
    );
    await deleteFromRegistry(repository, image.digest);
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-4' });

    // Act
    requests = [];
    await run(handler(false), deleteEvent(repository, image.digest, 'stable'));
    expect(pushes()).toEqual([]);

    // Assess: the alert gives the command; the registry still has nothing
    const [alert, ...more] = published();
    expect(more).toEqual([]);
    expect(alert).toMatchObject({ kind: 'in-use-deleted', severity: 'critical' });
    expect(alert.subject).toMatch(/^\[imagevault\] IN USE image DELETED: guard\/worker:stable \(sha256:/);
    expect(alert.message).toContain('ecs:eu-west-1/prod/worker');
    expect(alert.message).toContain('autoRestoreInUse is off, so nothing was pushed back');
    const command = restoreCommand(repository, image.digest, 'stable');
    expect(alert.message).toContain(`\n  ${command}\n`);
    await expect(skopeoDigest(`${registry}/${repository}@${image.digest}`)).rejects.toThrow(
      /manifest unknown/i,
    );

    // Act: a person pastes the command (the CLI in-process, the vault on radosgw through the standard variables)
    const saved = { ...process.env };
    Object.assign(process.env, s3ProcessEnv());
    let result;
    try {
      result = await cli(...command.split(' ').slice(1));
    } finally {
      for (const k of Object.keys(s3ProcessEnv())) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }

    // Assess: restored, verified by the oracle
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(await skopeoDigest(`${registry}/${repository}@${image.digest}`)).toBe(image.digest);
    expect(await skopeoDigest(`${registry}/${repository}:stable`)).toBe(image.digest);
  });

  it('gives a deleted image that runs nowhere only the ordinary image-deleted alert, and restores nothing', async () => {
    // Prepare: snapshotted, never seen running
    const repository = `${PREFIX}/batch`;
    const image = await pushedAndSnapshotted(repository, 'nightly');
    await deleteFromRegistry(repository, image.digest);
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-5' });

    // Act
    await run(handler(true), deleteEvent(repository, image.digest, 'nightly'));

    // Assess
    expect(published().map((p) => [p.kind, p.severity])).toEqual([['image-deleted', 'warning']]);
    await expect(skopeoDigest(`${registry}/${repository}@${image.digest}`)).rejects.toThrow(
      /manifest unknown/i,
    );
  });

  it('restores the digest but leaves a tag an immutable repository now gives another image, and says why', async () => {
    // Prepare: prod → A (running), A deleted, then prod pushed again as B before the DELETE is handled
    const repository = `${PREFIX}/frozen`;
    const a = await pushedAndSnapshotted(repository, 'prod');
    await recordRunning(
      vault,
      { repository, digest: a.digest },
      { cluster: 'prod', service: 'frozen', registry },
    );
    await deleteFromRegistry(repository, a.digest);
    const b = await pushed(repository, 'prod');
    ecr.on(DescribeRepositoriesCommand).resolves({
      repositories: [{ repositoryName: repository, registryId: ACCOUNT, imageTagMutability: 'IMMUTABLE' }],
    });
    const control = new EcrRepositories({
      client: () => new ECRClient({ region: REGION }),
      locate: (host) => (host === registry ? { account: ACCOUNT, region: REGION } : undefined),
    });
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-6' });

    // Act
    await run(handler(true, control), deleteEvent(repository, a.digest, 'prod'));

    // Assess: A is back by digest, prod still B, and the alert says both
    expect(await skopeoDigest(`${registry}/${repository}@${a.digest}`)).toBe(a.digest);
    expect(await skopeoDigest(`${registry}/${repository}:prod`)).toBe(b.digest);
    const [alert] = published();
    expect(alert.kind).toBe('in-use-deleted');
    expect(alert.message).toContain(`reports the same digest: ${a.digest}.`);
    expect(alert.message).toContain(
      `Tag prod: NOT restored: the repository's tags are immutable and prod already points to ${b.digest}`,
    );
    expect(ecr.commandCalls(DescribeRepositoriesCommand).map((c) => c.args[0].input.repositoryNames)).toEqual(
      [[repository]],
    );
  });

  it('says in one line why a restore failed, with the command to do it by hand', async () => {
    // Prepare: running and deleted, but the repository is gone from ECR's control plane
    const repository = `${PREFIX}/gone`;
    const image = await pushedAndSnapshotted(repository, 'v2');
    await recordRunning(
      vault,
      { repository, digest: image.digest },
      { cluster: 'prod', service: 'gone', registry },
    );
    await deleteFromRegistry(repository, image.digest);
    ecr.on(DescribeRepositoriesCommand).rejects(
      Object.assign(new Error(`The repository with name '${repository}' does not exist`), {
        name: 'RepositoryNotFoundException',
      }),
    );
    const control = new EcrRepositories({
      client: () => new ECRClient({ region: REGION }),
      locate: (host) => (host === registry ? { account: ACCOUNT, region: REGION } : undefined),
    });
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-7' });

    // Act
    await run(handler(true, control), deleteEvent(repository, image.digest, 'v2'));

    // Assess
    const [alert] = published();
    expect(alert.subject).toMatch(/^\[imagevault\] IN USE image DELETED: /);
    expect(alert.message).toMatch(
      new RegExp(`the restore FAILED: repository ${repository} no longer exists in ${registry}; [^\\n]+\\n`),
    );
    expect(alert.message).toContain(`  ${restoreCommand(repository, image.digest, 'v2')}`);
    await expect(skopeoDigest(`${registry}/${repository}@${image.digest}`)).rejects.toThrow(
      /manifest unknown/i,
    );
  });

  describe('reconcile: a running digest gone from ECR without an event', () => {
    const repository = `${PREFIX}/recon`;
    let image: BuiltImage;
    let ecrImages: ImageDetail[];

    const reconciler = () =>
      new Reconciler({
        ecr: new EcrImages(new ECRClient({ region: REGION })),
        queue: new SqsEventQueue(new SQSClient({ region: REGION }), QUEUE),
        vault,
        publisher: new SnsAlertPublisher(new SNSClient({ region: REGION }), TOPIC),
        region: REGION,
        repositories: RepositoryFilter.parse(repository),
        registryFor: () => registry,
        inUse: new Inventory(vault.store),
        logger: new Logger({ logLevel: 'SILENT' }),
        writeLayoutIndex: false,
        refreshProvenance: false,
      });

    /** What reconcile put on the snapshot queue, as SQS records for the snapshot handler. */
    const enqueued = () =>
      sqs
        .commandCalls(SendMessageBatchCommand)
        .flatMap((c) => c.args[0].input.Entries!)
        .map((e) => sqsRecord(e.MessageBody!));

    beforeEach(() => {
      ecr.on(DescribeRepositoriesCommand).resolves({
        repositories: [{ repositoryName: repository, registryId: ACCOUNT }],
      });
      ecr
        .on(DescribeImagesCommand)
        .callsFake(async (input: DescribeImagesCommandInput) =>
          input.repositoryName === repository ? { imageDetails: ecrImages } : { imageDetails: [] },
        );
    });

    it('sends it to the guard: the same critical alert, no registry-drift mail for its tag, then the restore', async () => {
      // Prepare: pushed, snapshotted, running; then gone from the registry and from ECR's list, no event
      image = await pushedAndSnapshotted(repository, 'main');
      await recordRunning(
        vault,
        { repository, digest: image.digest },
        { cluster: 'prod', service: 'recon', registry },
      );
      await deleteFromRegistry(repository, image.digest);
      ecrImages = [];
      sns.reset();
      sns.on(PublishCommand).resolves({ MessageId: 'm-8' });

      // Act: reconcile
      const summary = await reconciler().run('scheduled');

      // Assess: the tag recorded as deleted, one DELETE for the guard, no alert of reconcile's own
      expect(summary).toMatchObject({ deleted: 1, inUseDeleted: 1, enqueued: 1 });
      expect(published()).toEqual([]);
      const records = enqueued();
      expect(records.map((r) => JSON.parse(r.body).detail['action-type'])).toEqual(['DELETE']);

      // Act: the snapshot function handles it, autoRestoreInUse off
      await run(handler(false), ...records);

      // Assess: the same alert kind as the event path, found by reconcile, the tag named, the command given
      const [alert, ...more] = published();
      expect(more).toEqual([]);
      expect(alert).toMatchObject({ kind: 'in-use-deleted', severity: 'critical' });
      expect(alert.message).toContain('found by reconcile (no DELETE event reached the vault)');
      expect(alert.message).toContain('ecs:eu-west-1/prod/recon');
      expect(alert.message).toContain(`  ${restoreCommand(repository, image.digest, 'main')}`);

      // Act: the next delivery with the restore on
      sns.reset();
      sns.on(PublishCommand).resolves({ MessageId: 'm-9' });
      await run(handler(true), ...records);

      // Assess: restored, the same digest by digest and by tag
      expect(published().map((p) => p.subject)).toEqual([
        expect.stringMatching(/IN USE image DELETED, restored: guard\/recon:main/),
      ]);
      expect(await skopeoDigest(`${registry}/${repository}@${image.digest}`)).toBe(image.digest);
      expect(await skopeoDigest(`${registry}/${repository}:main`)).toBe(image.digest);
    });

    it('finds nothing to guard once the image is back in ECR', async () => {
      // Prepare: ECR lists it again, and its push event (ECR sends one for the restore's PutImage) was handled
      ecrImages = [
        {
          registryId: ACCOUNT,
          repositoryName: repository,
          imageDigest: image.digest,
          imageTags: ['main'],
          imagePushedAt: new Date('2026-01-01T00:00:00Z'),
        },
      ];
      await run(
        handler(false),
        sqsRecord(
          ecrEvent({
            id: 'restore-push',
            repository,
            digest: image.digest,
            tag: 'main',
            time: new Date().toISOString(),
          }),
        ),
      );
      sns.reset();
      sns.on(PublishCommand).resolves({ MessageId: 'm-10' });

      // Act
      const summary = await reconciler().run('scheduled');

      // Assess
      expect(summary).toMatchObject({ inUseDeleted: 0, enqueued: 0, deleted: 0, gaps: 0 });
      expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
      expect(published()).toEqual([]);
    });
  });
});
