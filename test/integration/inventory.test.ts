/**
 * `imagevault inventory` end to end: ECS's control plane answered from recorded responses (aws-sdk-client-mock),
 * whose tasks run images of the test bed's real registry. A running digest the vault lacks is snapshotted by the
 * scan and is then restorable (checked with skopeo); `provenance show` says where it runs.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DescribeTasksCommand, ECSClient, ListClustersCommand, ListTasksCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { cli, cliJson } from './cli-helpers';
import type { InventoryShow } from '../../lib/cli/commands/inventory';
import type { InventoryReport } from '../../lib/services/inventory';
import { Reference } from '../../lib/oci';
import { Registries, Snapshotter } from '../../lib/services';
import { pushStandardFixtures, skopeoDigest, type PushedFixtures } from '../../fixtures';
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { s3ProcessEnv, startRegistry, testBucket } from '../testbed/env';
import { tempDir, tempVault } from '../unit/helpers';

const recorded = (name: string) =>
  JSON.parse(readFileSync(path.join(__dirname, '../unit/aws/recorded', `${name}.json`), 'utf8'));

describe('imagevault inventory (real registry)', () => {
  let registry: string;
  let fx: PushedFixtures;
  let store: string;
  const missing = `sha256:${'0d'.repeat(32)}`;

  /** The recorded prod cluster, its tasks running: api → multi (held), worker → docker (a gap), a sidecar lost. */
  function ecsRunning(): void {
    const ecs = mockClient(ECSClient);
    ecs
      .on(ListClustersCommand)
      .resolves({ clusterArns: ['arn:aws:ecs:eu-west-1:123456789012:cluster/prod'] });
    ecs.on(ListTasksCommand).resolves(recorded('ecs-ListTasks-prod-2'));
    const page = recorded('ecs-DescribeTasks-prod');
    const [api, , worker] = page.tasks;
    api.containers[0].image = fx.multiLayer.ref;
    api.containers[0].imageDigest = fx.multiLayer.digest;
    api.containers[1].image = `${registry}/inv/lost:1`;
    api.containers[1].imageDigest = missing;
    worker.containers = [{ ...worker.containers[0], image: fx.docker.ref, imageDigest: fx.docker.digest }];
    ecs.on(DescribeTasksCommand).resolves({ tasks: [api, worker], failures: page.failures });
  }

  beforeAll(async () => {
    registry = startRegistry(`inventory-${Date.now()}`);
    fx = await pushStandardFixtures(registry, tempDir('imagevault-inv-layout-'), { repoPrefix: 'inv' });
    const vault = await tempVault();
    store = vault.url;
    await new Snapshotter(vault, new Registries()).snapshot({
      reference: Reference.parse(fx.multiLayer.ref),
    });
  });

  afterEach(() => mockClient(ECSClient).restore());

  it('snapshots a running digest the vault lacks, names the one it cannot get, and says where each runs', async () => {
    // Prepare
    ecsRunning();
    // Act
    const scan = await cli('--store', store, 'inventory', '--ecs', '--region', 'eu-west-1');
    // Assess
    expect(scan.stdout).toContain(
      `HELD    inv/multi@${fx.multiLayer.digest.slice(0, 19)}…  ecs:eu-west-1/prod/api`,
    );
    expect(scan.stdout).toContain(
      `SNAPSHOTTED ${registry}/inv/docker:1@${fx.docker.digest}: was running and not in the vault; restorable now as inv/docker@${fx.docker.digest}`,
    );
    expect(scan.stdout).toContain(
      `NOT SNAPSHOTTED ${registry}/inv/lost:1@${missing}: GET http://${registry}/v2/inv/lost/manifests/${missing}: 404 MANIFEST_UNKNOWN`,
    );
    // The lost sidecar is a failure: exit 1, and its line names the image and the registry's answer.
    expect(scan.code).toBe(1);

    // The gap is restorable now, bit-for-bit.
    const target = startRegistry(`inventory-restore-${Date.now()}`);
    const restore = await cli(
      '--store',
      store,
      'restore',
      `inv/docker@${fx.docker.digest}`,
      '--to',
      `${target}/inv/docker:back`,
    );
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(await skopeoDigest(`${target}/inv/docker:back`)).toBe(fx.docker.digest);

    // Where it runs: in provenance show, and in what the vault knows.
    const show = await cli('--store', store, 'provenance', 'show', `inv/docker@${fx.docker.digest}`);
    expect(show.stdout).toMatch(
      /\n {2}running in: ecs:eu-west-1\/prod\/worker, first seen \S+, last seen \S+\n/,
    );
    const known = await cliJson<InventoryShow>('--store', store, 'inventory', '--show');
    expect(known.images.map((e) => [e.repository, e.where, e.running])).toEqual([
      ['inv/docker', 'ecs:eu-west-1/prod/worker', true],
      ['inv/lost', 'ecs:eu-west-1/prod/api', true],
      ['inv/multi', 'ecs:eu-west-1/prod/api', true],
    ]);
  });

  it('a second scan finds the gap closed and keeps the first sighting', async () => {
    ecsRunning();
    // The lost sidecar is still not in the vault: --no-snapshot reports it, and that alone is no failure.
    const report = await cliJson<InventoryReport>(
      '--store',
      store,
      'inventory',
      '--ecs',
      '--region',
      'eu-west-1',
      '--no-snapshot',
    );
    expect(report.gaps.map((g) => [g.repository, g.snapshotted])).toEqual([['inv/lost', false]]);
    expect(report.running.find((r) => r.repository === 'inv/docker')?.held).toBe(true);
    const known = await cliJson<InventoryShow>('--store', store, 'inventory', '--show');
    const docker = known.images.find((e) => e.repository === 'inv/docker')!;
    expect(docker.firstSeen < docker.lastSeen).toBe(true);
    expect(docker.lastSeen).toBe(known.latestScan?.finishedAt);
  });

  it('says what to scan when nothing is named (exit 2)', async () => {
    const r = await cli('--store', store, 'inventory');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/name what to scan \(--ecs, --lambda, --kubernetes\)/);
  });

  it('keeps every version of a running record on a versioned S3 vault (radosgw), and the scans beside them', async () => {
    // Prepare
    const saved = { ...process.env };
    Object.assign(process.env, s3ProcessEnv());
    const bucket = `inventory-${Date.now()}`;
    const { client } = await testBucket(bucket);
    const s3store = `s3://${bucket}/team`;
    try {
      // Act: two scans, nothing snapshotted (this test is about the records)
      for (let i = 0; i < 2; i++) {
        ecsRunning();
        const r = await cliJson<InventoryReport>(
          '--store',
          s3store,
          'inventory',
          '--ecs',
          '--region',
          'eu-west-1',
          '--no-snapshot',
        );
        expect(r.gaps.map((g) => g.repository).sort()).toEqual(['inv/docker', 'inv/lost', 'inv/multi']);
        mockClient(ECSClient).restore();
      }
      // Assess
      const known = await cliJson<InventoryShow>('--store', s3store, 'inventory', '--show');
      expect(known.images.map((e) => [e.repository, e.running])).toEqual([
        ['inv/docker', true],
        ['inv/lost', true],
        ['inv/multi', true],
      ]);
      const docker = known.images[0];
      expect(docker.firstSeen < docker.lastSeen).toBe(true);
      const hex = fx.docker.digest.slice('sha256:'.length);
      const versions = await client.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          Prefix: `team/imagevault/inventory/running/inv/docker/@sha256/${hex}/`,
        }),
      );
      expect(versions.Versions?.length).toBe(2);
      const scans = await client.send(
        new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'team/imagevault/inventory/scans/' }),
      );
      expect(scans.Versions?.length).toBe(2);
    } finally {
      process.env = saved;
      client.destroy();
    }
  });
});
