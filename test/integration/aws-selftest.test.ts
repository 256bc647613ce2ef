/**
 * `imagevault aws selftest` against the test bed: a real registry plays ECR's data plane, radosgw the vault and
 * replica buckets, and the real snapshot handler writes the vault when the (mocked) ECR push event would have fired.
 * The control planes — CloudFormation, CloudWatch, EventBridge, ECR's repository calls — are mocked with
 * aws-sdk-client-mock through the real SDK adapter (lib/aws/selftest.ts), so every call is a real SDK command.
 * S3 replication is played by the test: radosgw has none, so HeadObject's replication status is set by a middleware
 * on the self-test's S3 client, and the "replicated" object is really copied into the replica bucket first.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  DescribeAlarmHistoryCommand,
  DescribeAlarmsCommand,
  GetMetricStatisticsCommand,
  SetAlarmStateCommand,
  type AlarmHistoryItem,
} from '@aws-sdk/client-cloudwatch';
import {
  BatchDeleteImageCommand,
  CreateRepositoryCommand,
  DeleteRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  RepositoryNotFoundException,
  type ImageFailure,
} from '@aws-sdk/client-ecr';
import {
  DescribeRuleCommand,
  EventBridgeClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, S3Client as S3, type S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { RepositoryFilter } from '../../lib/events';
import { AwsSelfTest } from '../../lib/aws/selftest';
import { runSelfTest } from '../../lib/cli/commands/aws-selftest';
import type { CommandContext } from '../../lib/cli/context';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { Digest, MANIFEST_MEDIA_TYPES } from '../../lib/oci';
import { Repository, staticCredentials } from '../../lib/registry';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { Registries } from '../../lib/registry';
import { SelfTest } from '../../lib/services/selftest';
import type { SelfTestDeps, SelfTestOptions, SelfTestReport } from '../../lib/services/selftest-model';
import { createSnapshotHandler } from '../../lib/aws/handlers/snapshot';
import { s3ClientConfig, startRegistry, testBucket } from '../testbed/env';
import { ACCOUNT, REGION, ecrEvent, sqsRecord } from '../unit/aws/ecr-events';
import { cli } from './cli-helpers';

const REPLICA_REGION = 'us-east-2';
const STACK_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/ImageVault/0f1e2d3c-aaaa-bbbb-cccc-000000000001`;
const REPLICA_STACK_ID = `arn:aws:cloudformation:${REPLICA_REGION}:${ACCOUNT}:stack/ImageVaultReplica/0f1e2d3c-aaaa-bbbb-cccc-000000000002`;
const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:ImageVault-VaultAlertTopic-X1`;
const ALARM = 'ImageVault-VaultSelfTestAlarm1A2B3C4D-0123456789AB';
const PREFIX = 'team-a';

const cfn = mockClient(CloudFormationClient);
const cw = mockClient(CloudWatchClient);
const events = mockClient(EventBridgeClient);
const ecr = mockClient(ECRClient);
const sns = mockClient(SNSClient);

/** What the mocked control planes hold; each test starts from the healthy deployment and changes one thing. */
interface World {
  outputs: Record<string, string>;
  repositories: Set<string>;
  alarm: { state: string; actionsEnabled: boolean; history: AlarmHistoryItem[]; publishFails?: string };
  rules: Record<string, { State: string; ScheduleExpression: string }>;
  /** How many push events reach the snapshot handler (Infinity: all of them). */
  eventsFlow: number;
  replication: 'replicate' | 'failed' | 'none';
  batchDeleteFails?: string;
}

describe('imagevault aws selftest (control planes mocked; registry, radosgw and the snapshot handler real)', () => {
  const vaultBucket = `selftest-vault-${Date.now()}`;
  const replicaBucket = `selftest-replica-${Date.now()}`;
  let s3: S3Client;
  let ecrHost: string;
  let world: World;
  const deliveries: Promise<unknown>[] = [];
  const regionsOpened: Array<[string, string | undefined]> = [];
  let pushSpy: jest.SpyInstance;

  const defaultOutputs = (): Record<string, string> => ({
    VaultBucketName: vaultBucket,
    VaultStoreUrl: `s3://${vaultBucket}/${PREFIX}`,
    ProtectedRepositories: `${PREFIX}/`,
    AlertTopicArn: TOPIC,
    SelfTestAlarmName: ALARM,
    ReconcileScheduleName: 'ImageVault-VaultReconcileSchedule-R1',
    UpstreamScheduleName: 'ImageVault-VaultUpstreamSchedule-U1',
    ReconcileFunctionName: 'ImageVault-VaultReconcileFunction-F1',
    UpstreamFunctionName: 'ImageVault-VaultUpstreamFunction-F2',
    ReplicaStackName: 'ImageVaultReplica',
    ReplicaRegion: REPLICA_REGION,
  });

  beforeAll(async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    ({ client: s3 } = await testBucket(vaultBucket));
    await testBucket(replicaBucket);
    ecrHost = startRegistry(`selftest-ecr-${Date.now()}`);
    const handler = createSnapshotHandler({
      vault: new Vault(new S3ObjectStore({ bucket: vaultBucket, prefix: PREFIX, client: s3 })),
      registries: new Registries({ credentials: staticCredentials({}) }),
      publisher: new SnsAlertPublisher(new SNSClient({ region: REGION }), TOPIC),
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'imagevault-test', serviceName: 'snapshot' }),
      registryFor: () => ecrHost,
      repositories: RepositoryFilter.parse(`${PREFIX}/`),
      detectBases: false,
    });
    // ECR sends "ECR Image Action" PUSH when a manifest is put under a tag: so does this stand-in, after the PUT,
    // without waiting (EventBridge → SQS → Lambda is asynchronous), to the real snapshot handler.
    const original = Repository.prototype.pushManifest;
    pushSpy = jest.spyOn(Repository.prototype, 'pushManifest').mockImplementation(async function (
      this: Repository,
      reference,
      bytes,
      mediaType,
    ) {
      await original.call(this, reference, bytes, mediaType);
      if (this.registry !== ecrHost || reference.startsWith('sha256:') || world.eventsFlow <= 0) return;
      world.eventsFlow--;
      const event = ecrEvent({
        id: `evt-${reference}`,
        repository: this.name,
        digest: Digest.of(bytes).toString(),
        tag: reference,
        time: new Date().toISOString(),
      });
      deliveries.push(
        new Promise((r) => setTimeout(r, 50)).then(() => handler({ Records: [sqsRecord(event)] })),
      );
    });
  });

  afterAll(() => {
    pushSpy.mockRestore();
    s3.destroy();
  });

  beforeEach(() => {
    world = {
      outputs: defaultOutputs(),
      repositories: new Set(),
      alarm: { state: 'OK', actionsEnabled: true, history: [] },
      rules: {
        'ImageVault-VaultReconcileSchedule-R1': { State: 'ENABLED', ScheduleExpression: 'rate(6 hours)' },
        'ImageVault-VaultUpstreamSchedule-U1': { State: 'ENABLED', ScheduleExpression: 'rate(1 hour)' },
      },
      eventsFlow: Infinity,
      replication: 'replicate',
    };
    regionsOpened.length = 0;
    for (const m of [cfn, cw, events, ecr, sns]) (m as { reset(): void }).reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    cfn.on(DescribeStacksCommand).callsFake((input: { StackName: string }) => {
      const outputs = (o: Record<string, string>): Output[] =>
        Object.entries(o).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue }));
      const created = new Date(Date.now() - 24 * 3600_000);
      if (input.StackName === 'ImageVault') {
        return {
          Stacks: [
            {
              StackId: STACK_ID,
              StackName: 'ImageVault',
              StackStatus: 'UPDATE_COMPLETE',
              CreationTime: created,
              Outputs: outputs(world.outputs),
            },
          ],
        };
      }
      if (input.StackName === 'ImageVaultReplica') {
        return {
          Stacks: [
            {
              StackId: REPLICA_STACK_ID,
              StackName: 'ImageVaultReplica',
              StackStatus: 'CREATE_COMPLETE',
              CreationTime: created,
              Outputs: outputs({ ReplicaBucketName: replicaBucket }),
            },
          ],
        };
      }
      throw Object.assign(new Error(`Stack with id ${input.StackName} does not exist`), {
        name: 'ValidationError',
      });
    });
    ecr.on(DescribeRepositoriesCommand).callsFake((input: { repositoryNames: string[] }) => {
      const name = input.repositoryNames[0];
      if (!world.repositories.has(name))
        throw new RepositoryNotFoundException({ message: 'does not exist', $metadata: {} });
      return { repositories: [{ repositoryName: name, imageTagMutability: 'MUTABLE' }] };
    });
    ecr.on(CreateRepositoryCommand).callsFake((input: { repositoryName: string }) => {
      world.repositories.add(input.repositoryName);
      return { repository: { repositoryName: input.repositoryName, imageTagMutability: 'MUTABLE' } };
    });
    ecr
      .on(BatchDeleteImageCommand)
      .callsFake(async (input: { repositoryName: string; imageIds: Array<{ imageTag: string }> }) => {
        if (world.batchDeleteFails)
          throw Object.assign(new Error(world.batchDeleteFails), { name: 'AccessDeniedException' });
        return deleteTags(
          input.repositoryName,
          input.imageIds.map((i) => i.imageTag),
        );
      });
    ecr.on(DeleteRepositoryCommand).callsFake((input: { repositoryName: string }) => {
      world.repositories.delete(input.repositoryName);
      return { repository: { repositoryName: input.repositoryName } };
    });
    cw.on(DescribeAlarmsCommand).callsFake((input: { AlarmNames: string[] }) => ({
      MetricAlarms: input.AlarmNames.includes(ALARM)
        ? [
            {
              AlarmName: ALARM,
              StateValue: world.alarm.state,
              ActionsEnabled: world.alarm.actionsEnabled,
              AlarmActions: [TOPIC],
            },
          ]
        : [],
    }));
    // CloudWatch runs the ALARM action on a change into ALARM, and records it in the alarm's history.
    cw.on(SetAlarmStateCommand).callsFake((input: { AlarmName: string; StateValue: string }) => {
      const changed = world.alarm.state !== input.StateValue;
      world.alarm.state = input.StateValue;
      if (changed && input.StateValue === 'ALARM') {
        const failed = world.alarm.publishFails;
        world.alarm.history.unshift({
          AlarmName: input.AlarmName,
          Timestamp: new Date(),
          HistoryItemType: 'Action',
          HistorySummary: `${failed ? 'Failed to execute' : 'Successfully executed'} action ${TOPIC}`,
          HistoryData: JSON.stringify({
            actionState: failed ? 'Failed' : 'Succeeded',
            error: failed ?? null,
            notificationResource: TOPIC,
          }),
        });
      }
      return {};
    });
    cw.on(DescribeAlarmHistoryCommand).callsFake((input: { StartDate: Date }) => ({
      AlarmHistoryItems: world.alarm.history.filter((h) => h.Timestamp! >= input.StartDate),
    }));
    cw.on(GetMetricStatisticsCommand).callsFake((input: { EndTime: Date }) => ({
      Datapoints: [{ Timestamp: new Date(input.EndTime.getTime() - 3600_000), Sum: 1 }],
    }));
    events.on(DescribeRuleCommand).callsFake((input: { Name: string }) => {
      const rule = world.rules[input.Name];
      if (!rule)
        throw new ResourceNotFoundException({ message: `Rule ${input.Name} does not exist.`, $metadata: {} });
      return { Name: input.Name, ...rule };
    });
  });

  afterEach(async () => {
    await Promise.all(deliveries.splice(0));
  });

  /** ECR's BatchDeleteImage on the stand-in registry: every tag's manifest deleted by digest. */
  async function deleteTags(repository: string, tags: string[]): Promise<{ failures: ImageFailure[] }> {
    const failures: ImageFailure[] = [];
    const digests = new Set<string>();
    for (const tag of tags) {
      const digest = await registryDigest(repository, tag);
      if (digest) digests.add(digest);
      else
        failures.push({
          imageId: { imageTag: tag },
          failureCode: 'ImageNotFound',
          failureReason: 'not found',
        });
    }
    for (const d of digests) {
      const res = await fetch(`http://${ecrHost}/v2/${repository}/manifests/${d}`, { method: 'DELETE' });
      if (res.status !== 202) throw new Error(`DELETE ${d}: ${res.status}`);
    }
    return { failures };
  }

  async function registryDigest(repository: string, tag: string): Promise<string | undefined> {
    const res = await fetch(`http://${ecrHost}/v2/${repository}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
  }

  /** The self-test's S3 store: radosgw, with S3 replication played on HeadObject (see the file's comment). */
  function openStore(url: string, region: string | undefined): Promise<S3ObjectStore> {
    regionsOpened.push([url, region]);
    const { bucket } = S3ObjectStore.fromUrl(url, s3);
    return Promise.resolve(S3ObjectStore.fromUrl(url, replicatingClient(bucket)));
  }

  const heads = new Map<string, number>();
  /** A client of its own (a middleware is per client) on the test bed's radosgw. */
  function replicatingClient(bucket: string): S3Client {
    const client = new S3(s3ClientConfig());
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'HeadObjectCommand') return result;
        const output = result.output as { ReplicationStatus?: string };
        const key = (args.input as { Key: string }).Key;
        if (bucket === replicaBucket) {
          output.ReplicationStatus = 'REPLICA';
        } else if (world.replication === 'failed') {
          output.ReplicationStatus = 'FAILED';
        } else if (world.replication === 'replicate' && key.startsWith(`${PREFIX}/blobs/`)) {
          const seen = (heads.get(key) ?? 0) + 1;
          heads.set(key, seen);
          if (seen === 1) output.ReplicationStatus = 'PENDING';
          else {
            await replicate(key);
            output.ReplicationStatus = 'COMPLETED';
          }
        }
        return result;
      },
      { step: 'initialize', name: 'playsS3Replication' },
    );
    return client;
  }

  /** What S3 replication does for one object: the same key in the replica bucket. */
  async function replicate(key: string): Promise<void> {
    const got = await s3.send(new GetObjectCommand({ Bucket: vaultBucket, Key: key }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    await s3.send(new PutObjectCommand({ Bucket: replicaBucket, Key: key, Body: body }));
  }

  function deps(registries = new Registries({ credentials: staticCredentials({}) })): SelfTestDeps {
    return {
      aws: new AwsSelfTest({
        locate: (host) => (host === ecrHost ? { account: ACCOUNT, region: REGION } : undefined),
      }),
      registries,
      openStore,
      registryHost: (where) => {
        expect(where).toEqual({ account: ACCOUNT, region: REGION });
        return ecrHost;
      },
    };
  }

  const fast: SelfTestOptions = {
    snapshotTimeoutMs: 30_000,
    replicationTimeoutMs: 10_000,
    alertTimeoutMs: 5_000,
    pollMs: 100,
  };

  const run = (options: SelfTestOptions = {}, d = deps()) =>
    new SelfTest(d, { region: REGION, ...fast, ...options }).run();
  const statuses = (r: SelfTestReport) => Object.fromEntries(r.steps.map((s) => [s.step, s.status]));
  const stepOf = (r: SelfTestReport, name: string) => r.steps.find((s) => s.step === name)!;
  const alarmStates = () => cw.commandCalls(SetAlarmStateCommand).map((c) => c.args[0].input.StateValue);

  /** Every control-plane call of a run, as service:Action — what a deployed policy must allow. */
  function callsMade(): string[] {
    const names = new Set<string>();
    for (const [service, stub] of [
      ['cloudformation', cfn],
      ['cloudwatch', cw],
      ['events', events],
      ['ecr', ecr],
    ] as const) {
      for (const call of (stub as { calls(): Array<{ args: unknown[] }> }).calls())
        names.add(`${service}:${(call.args[0] as object).constructor.name.replace(/Command$/, '')}`);
    }
    return [...names].sort();
  }

  it('passes every step on a healthy deployment, prints the report, and leaves nothing behind', async () => {
    // Prepare: the CLI's own presentation, on the CLI's context shape.
    let stdout = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += chunk.toString();
      return true;
    });
    const registries = new Registries({ credentials: staticCredentials({}) });
    const ctx = {
      opts: () => ({ store: 'unused', json: false, insecure: false, concurrency: 4, progress: false }),
      registries: () => registries,
      vault: () => Promise.reject(new Error('the self-test opens the stack’s vault, not --store')),
    } as CommandContext;
    process.exitCode = undefined;

    // Act
    let report: SelfTestReport;
    try {
      report = await runSelfTest(
        ctx,
        { stack: 'ImageVault', region: REGION, snapshotTimeout: 30, replicationTimeout: 10, alertTimeout: 5 },
        deps(registries),
        100,
      );
    } finally {
      write.mockRestore();
    }

    // Assess: every step, in order
    expect(report.steps.map((s) => [s.step, s.status])).toEqual([
      ['stacks', 'PASS'],
      ['push', 'PASS'],
      ['snapshot', 'PASS'],
      ['replica', 'PASS'],
      ['restore', 'PASS'],
      ['alert', 'PASS'],
      ['reconcile-schedule', 'PASS'],
      ['upstream-schedule', 'PASS'],
      ['cleanup', 'PASS'],
    ]);
    expect(report.ok).toBe(true);
    expect(process.exitCode).toBeUndefined();
    const { repository, tags, digest } = report.image!;
    expect(repository).toBe(`${PREFIX}/imagevault-selftest`);
    expect(report.image!.repositoryCreated).toBe(true);
    // The snapshot is the real handler's: the tag history and the image record, in the stack's vault.
    const vault = new Vault(new S3ObjectStore({ bucket: vaultBucket, prefix: PREFIX, client: s3 }));
    expect((await vault.history(repository, tags[0]))[0]).toMatchObject({
      action: 'push',
      descriptor: { digest },
      source: { kind: 'ecr-event' },
    });
    // The replica holds the manifest's bytes (the store was opened in each stack's region).
    const replicaCopy = await s3.send(
      new GetObjectCommand({ Bucket: replicaBucket, Key: `${PREFIX}/blobs/sha256/${digest.slice(7)}` }),
    );
    expect(Digest.of(Buffer.from(await replicaCopy.Body!.transformToByteArray())).toString()).toBe(digest);
    expect(regionsOpened).toEqual([
      [`s3://${vaultBucket}/${PREFIX}`, REGION],
      [`s3://${replicaBucket}/${PREFIX}`, REPLICA_REGION],
    ]);
    expect(stepOf(report, 'restore').detail).toContain(`same digest ${digest}`);
    // The test alert: ALARM, then back to OK; the mail named.
    expect(alarmStates()).toEqual(['ALARM', 'OK']);
    expect(report.mail).toEqual({
      topicArn: TOPIC,
      subject: `ALARM: "${ALARM}" in <the long name of ${REGION}>`,
    });
    expect(stepOf(report, 'reconcile-schedule').detail).toMatch(/rate\(6 hours\)\) is ENABLED; .* last ran/);
    // Cleanup: both tags gone from the registry, the repository it created deleted.
    for (const tag of tags) expect(await registryDigest(repository, tag)).toBeUndefined();
    expect(ecr.commandCalls(BatchDeleteImageCommand)[0].args[0].input).toEqual({
      registryId: ACCOUNT,
      repositoryName: repository,
      imageIds: tags.map((imageTag) => ({ imageTag })),
    });
    expect(world.repositories.size).toBe(0);
    expect(ecr.commandCalls(DeleteRepositoryCommand)[0].args[0].input).toMatchObject({ force: true });
    // The text report: one line per step, the mail, the verdict.
    expect(stdout).toMatch(
      /^PASS {2}stacks {14}ImageVault \(UPDATE_COMPLETE\) in us-west-2, account 123456789012$/m,
    );
    expect(stdout).toContain(`mail: subject ALARM: "${ALARM}"`);
    expect(stdout).toMatch(/self-test passed: 9 passed, 0 skipped\n$/);
    // The calls a deployed policy must allow (README's self-test policy lists these).
    expect(callsMade()).toEqual([
      'cloudformation:DescribeStacks',
      'cloudwatch:DescribeAlarmHistory',
      'cloudwatch:DescribeAlarms',
      'cloudwatch:GetMetricStatistics',
      'cloudwatch:SetAlarmState',
      'ecr:BatchDeleteImage',
      'ecr:CreateRepository',
      'ecr:DeleteRepository',
      'ecr:DescribeRepositories',
      'events:DescribeRule',
    ]);
  });

  it('fails the snapshot step when no snapshot arrives in time, says what to check, and still cleans up', async () => {
    // Prepare: the event path is broken: nothing reaches the snapshot handler.
    world.eventsFlow = 0;
    const lines: string[] = [];

    // Act
    const report = await run({ snapshotTimeoutMs: 1_000, progress: (l) => lines.push(l) });

    // Assess
    expect(statuses(report)).toMatchObject({
      push: 'PASS',
      snapshot: 'FAIL',
      replica: 'SKIP',
      restore: 'SKIP',
      alert: 'PASS',
      cleanup: 'PASS',
    });
    expect(report.ok).toBe(false);
    const snapshot = stepOf(report, 'snapshot');
    expect(snapshot.detail).toBe(
      `no snapshot of ${PREFIX}/imagevault-selftest:${report.image!.tags[0]} in s3://${vaultBucket}/${PREFIX} after 1 s`,
    );
    expect(snapshot.fix).toMatch(/dead-letter queue.*snapshot Lambda's log.*--snapshot-timeout/);
    // Progress while waiting, bounded by the timeout.
    expect(lines.some((l) => /^waiting for the snapshot of .* \(\d+ s of 1 s\)$/.test(l))).toBe(true);
    // The pushed tag is deleted, the restore's (never pushed) is not there to delete, the repository is removed.
    expect(await registryDigest(report.image!.repository, report.image!.tags[0])).toBeUndefined();
    expect(world.repositories.size).toBe(0);
    expect(alarmStates()).toEqual(['ALARM', 'OK']);
  });

  it('passes the restore without the restored push’s snapshot, saying so, when that event never comes', async () => {
    world.eventsFlow = 1;
    const report = await run({ snapshotTimeoutMs: 1_500 });
    expect(statuses(report)).toMatchObject({ snapshot: 'PASS', restore: 'PASS', cleanup: 'PASS' });
    expect(stepOf(report, 'restore').detail).toMatch(
      /same digest sha256:[0-9a-f]{64}; no snapshot of that push within 2 s \(if one comes after the cleanup/,
    );
  });

  it('fails the replica step when S3 reports replication FAILED, with the fix; the rest still runs', async () => {
    world.replication = 'failed';
    const report = await run();
    const replica = stepOf(report, 'replica');
    expect(replica.status).toBe('FAIL');
    expect(replica.detail).toMatch(
      /^S3 reports replication FAILED for blobs\/sha256\/[0-9a-f]{64} of s3:\/\//,
    );
    expect(replica.fix).toMatch(/replication role's permissions on the replica bucket and its KMS key/);
    expect(statuses(report)).toMatchObject({ snapshot: 'PASS', restore: 'PASS', cleanup: 'PASS' });
    expect(report.ok).toBe(false);
  });

  it('fails the replica step when the manifest never gets a replication status (no rule covers it)', async () => {
    world.replication = 'none';
    const report = await run({ replicationTimeoutMs: 500 });
    expect(stepOf(report, 'replica')).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/has no replication status after 1 s: S3 does not replicate it$/),
      fix: expect.stringMatching(/replication rule/),
    });
  });

  it('fails the alert step when the stack has no test alarm output, and sets no alarm state', async () => {
    delete world.outputs.SelfTestAlarmName;
    const report = await run();
    expect(stepOf(report, 'alert')).toMatchObject({
      status: 'FAIL',
      detail: 'the stack has no SelfTestAlarmName output (no test alarm)',
      fix: expect.stringMatching(/npx cdk deploy --all/),
    });
    expect(alarmStates()).toEqual([]);
    expect(report.mail).toBeUndefined();
    expect(stepOf(report, 'cleanup').status).toBe('PASS');
  });

  it('fails the alert step with CloudWatch’s own record when the topic refuses the publish', async () => {
    world.alarm.publishFails =
      'CloudWatch Alarms is not authorized to perform: SNS:Publish on resource because no resource-based policy allows the SNS:Publish action';
    const report = await run();
    const alert = stepOf(report, 'alert');
    expect(alert.status).toBe('FAIL');
    expect(alert.detail).toContain(`Failed to execute action ${TOPIC}`);
    expect(alert.detail).toContain('no resource-based policy allows');
    expect(alert.fix).toMatch(/cloudwatch.amazonaws.com sns:Publish/);
    expect(alarmStates()).toEqual(['ALARM', 'OK']);
  });

  it('resets an alarm left in ALARM first, so the test alert is a real change of state', async () => {
    world.alarm.state = 'ALARM';
    const report = await run();
    expect(stepOf(report, 'alert').status).toBe('PASS');
    expect(alarmStates()).toEqual(['OK', 'ALARM', 'OK']);
  });

  it('fails a schedule step when its rule is disabled, naming the command that enables it', async () => {
    world.rules['ImageVault-VaultUpstreamSchedule-U1'].State = 'DISABLED';
    const report = await run();
    expect(stepOf(report, 'upstream-schedule')).toMatchObject({
      status: 'FAIL',
      detail: "the upstream check's schedule ImageVault-VaultUpstreamSchedule-U1 is DISABLED",
      fix: `aws events enable-rule --name ImageVault-VaultUpstreamSchedule-U1 --region ${REGION}`,
    });
    expect(stepOf(report, 'reconcile-schedule').status).toBe('PASS');
  });

  it('fails a schedule step when the function was not invoked in two periods of an old stack', async () => {
    cw.on(GetMetricStatisticsCommand).resolves({ Datapoints: [] });
    const report = await run();
    expect(stepOf(report, 'reconcile-schedule')).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/ImageVault-VaultReconcileFunction-F1 was not invoked in the last 12 h$/),
    });
    // Over two periods of the schedule, five-minute sums of AWS/Lambda Invocations.
    const input = cw.commandCalls(GetMetricStatisticsCommand)[0].args[0].input;
    expect(input).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: 'ImageVault-VaultReconcileFunction-F1' }],
      Period: 300,
      Statistics: ['Sum'],
    });
    expect(input.EndTime!.getTime() - input.StartTime!.getTime()).toBe(12 * 3600_000);
  });

  it('cleans up after a push that failed half-way: the repository it created is deleted', async () => {
    // Prepare: the registry refuses the connection (a closed port) after the repository was created.
    const dead = new Registries({ credentials: staticCredentials({}), retry: { maxAttempts: 1 } });
    const d: SelfTestDeps = {
      ...deps(dead),
      registryHost: () => '127.0.0.1:9',
      aws: new AwsSelfTest({ locate: () => ({ account: ACCOUNT, region: REGION }) }),
    };

    // Act
    const report = await run({}, d);

    // Assess
    expect(statuses(report)).toMatchObject({
      push: 'FAIL',
      snapshot: 'SKIP',
      restore: 'SKIP',
      cleanup: 'PASS',
    });
    expect(stepOf(report, 'push').fix).toMatch(/ECR push rights/);
    expect(ecr.commandCalls(CreateRepositoryCommand)).toHaveLength(1);
    expect(ecr.commandCalls(DeleteRepositoryCommand)).toHaveLength(1);
    expect(world.repositories.size).toBe(0);
    expect(stepOf(report, 'cleanup').detail).toMatch(
      /delete tags .*; delete repository team-a\/imagevault-selftest/,
    );
  });

  it('reports a cleanup that failed, naming what is left, and fails the run', async () => {
    // An error that echoes a credential (as some services' messages do) is printed without it.
    world.batchDeleteFails =
      'User is not authorized to perform: ecr:BatchDeleteImage (request Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWxmdGVzdCJ9.c2lnbmF0dXJlc2lnbmF0dXJl)';
    const report = await run();
    const cleanup = stepOf(report, 'cleanup');
    expect(cleanup.detail).not.toContain('eyJ');
    expect(cleanup.detail).toContain('[REDACTED]');
    expect(cleanup.status).toBe('FAIL');
    expect(cleanup.detail).toMatch(
      /^delete tags selftest-.* of team-a\/imagevault-selftest: AccessDeniedException: User is not authorized/,
    );
    // The other cleanups still ran.
    expect(cleanup.detail).toMatch(
      /done: set alarm .* back to OK; delete repository team-a\/imagevault-selftest/,
    );
    expect(report.ok).toBe(false);
  });

  it('refuses a scratch repository outside the protected prefixes (no event would reach the vault)', async () => {
    const report = await run({ repository: 'elsewhere/selftest' });
    expect(stepOf(report, 'push')).toMatchObject({
      status: 'FAIL',
      detail: 'elsewhere/selftest is not under the protected prefixes (team-a/): no snapshot would follow',
    });
    expect(ecr.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
  });

  it('says to name the region when the SDK has none', async () => {
    // The SDK's own error for a client without a region, on the first call (DescribeStacks).
    cfn.on(DescribeStacksCommand).rejects(new Error('Region is missing'));
    const report = await run({ region: undefined });
    expect(report.steps[0]).toMatchObject({
      step: 'stacks',
      status: 'FAIL',
      detail: 'Region is missing',
      fix: "name the vault stack's region: --region (or AWS_REGION)",
    });
  });

  it('through the CLI: a missing stack fails with exit code 1 and a JSON report, every other step skipped', async () => {
    const r = await cli('--json', 'aws', 'selftest', '--stack', 'NoSuchStack', '--region', REGION);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as SelfTestReport;
    expect(report.ok).toBe(false);
    expect(report.steps[0]).toMatchObject({
      step: 'stacks',
      status: 'FAIL',
      detail: `stack NoSuchStack not found in ${REGION}`,
      fix: expect.stringMatching(/--stack/),
    });
    expect(report.steps.slice(1, -1).every((s) => s.status === 'SKIP')).toBe(true);
    expect(report.steps.at(-1)).toMatchObject({
      step: 'cleanup',
      status: 'PASS',
      detail: 'nothing to clean up',
    });
    expect(r.stderr).toBe('');
  });
});
