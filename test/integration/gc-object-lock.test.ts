/**
 * Retention and gc on radosgw with versioning and Object Lock (default retention on every new version): the plan
 * says what Object Lock keeps until when; gc's deletes are delete markers, locked versions are reported as retained
 * (never an error) and stay readable by version; dropping the marker undeletes; verify stays clean.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { blobKey, Vault } from '../../lib/content';
import { S3ObjectStore } from '../../lib/content/s3';
import type { GcReport } from '../../lib/services/gc';
import type { RetentionPlan } from '../../lib/services/retention';
import { putImage, type TestImage } from '../../fixtures/vault-images';
import { s3ProcessEnv, testBucket } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

describe('retention and gc on a bucket with Object Lock (radosgw)', () => {
  const bucket = `gc-lock-${Date.now()}`;
  const prefix = 'vault';
  const store = `s3://${bucket}/${prefix}`;
  const saved = { ...process.env };
  let client: S3Client;
  let vault: Vault;
  const images: TestImage[] = [];
  const policy = path.join(tempDir(), 'retention.json');

  beforeAll(async () => {
    Object.assign(process.env, s3ProcessEnv());
    ({ client } = await testBucket(bucket, { objectLock: true }));
    await client.send(
      new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
        },
      }),
    );
    vault = new Vault(S3ObjectStore.fromUrl(store));
    await vault.init();
    // Three pushes of :app; keepLast 1 forgets the first two (their own layer, config and manifest each).
    for (const [i, seed] of ['one', 'two', 'three'].entries()) {
      const img = await putImage(vault, [Buffer.from('shared'), Buffer.from(`locked ${seed}`)]);
      const at = new Date(Date.UTC(2026, 0, 1 + i)).toISOString();
      await vault.putImage({
        repository: 'lock/app',
        descriptor: img.manifest,
        firstSnapshotAt: at,
        lastSnapshotAt: at,
        blobs: 4,
        bytes: 1,
        referrers: [],
        extensions: {},
      });
      await vault.recordTag({
        repository: 'lock/app',
        tag: 'app',
        action: 'push',
        descriptor: img.manifest,
        observedAt: at,
        source: { kind: 'test' },
      });
      images.push(img);
    }
    writeFileSync(policy, JSON.stringify({ rules: [{ prefix: 'lock/', keepLast: 1 }] }));
  });

  afterAll(() => {
    process.env = saved;
    client.destroy();
  });

  const versions = async (digest: string) =>
    await client.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `${prefix}/${blobKey(digest)}` }),
    );

  it('the plan says what Object Lock keeps until when', async () => {
    const plan = await cliJson<RetentionPlan>('--store', store, 'retention', 'plan', '--policy', policy);
    expect(plan.forget).toHaveLength(2);
    expect(plan.freed.blobs).toBe(6);
    expect(plan.locked).toHaveLength(6);
    const until = Date.parse(plan.locked[0].until);
    expect(until).toBeGreaterThan(Date.now() + 23 * 3600_000);
    expect(plan.locked[0].mode).toBe('GOVERNANCE');
    const human = await cli('--store', store, 'retention', 'plan', '--policy', policy);
    expect(human.stdout).toMatch(/Object Lock keeps 6 of them .* until 20\d\d-/);
  });

  it('gc deletes with markers, reports locked versions as retained, and verify stays clean', async () => {
    await cliJson('--store', store, 'retention', 'apply', '--policy', policy);
    await cliJson('--store', store, 'gc', '--grace', '0');
    const r = await cli('--json', '--store', store, 'gc', '--grace', '0');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as GcReport;
    expect(report.swept[0].deleted.blobs).toBe(6);
    expect(report.swept[0].versioned).toBe(true);
    expect(report.swept[0].retained).toHaveLength(6);
    const human = await cli('--store', store, 'gc', '--dry-run', '--grace', '0');
    expect(human.code).toBe(0);

    const layer = [...images[0].blobs.keys()][1];
    expect(await vault.store.head(blobKey(layer))).toBeUndefined();
    const v = await versions(layer);
    expect(v.DeleteMarkers?.[0]?.IsLatest).toBe(true);
    expect(v.Versions).toHaveLength(1);
    // The locked version cannot be deleted by id (no governance bypass), and reads back.
    await expect(
      client.send(
        new DeleteObjectCommand({
          Bucket: bucket,
          Key: `${prefix}/${blobKey(layer)}`,
          VersionId: v.Versions![0].VersionId,
        }),
      ),
    ).rejects.toThrow();
    const old = await client.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: `${prefix}/${blobKey(layer)}`,
        VersionId: v.Versions![0].VersionId,
      }),
    );
    expect(Buffer.from(await old.Body!.transformToByteArray()).toString()).toBe('locked one');
    // The kept image and the shared layer are untouched.
    for (const d of images[2].blobs.keys()) expect(await vault.store.head(blobKey(d))).toBeDefined();
    expect((await cli('--store', store, 'verify')).code).toBe(0);

    // Undelete: dropping the marker makes the blob current again.
    await client.send(
      new DeleteObjectCommand({
        Bucket: bucket,
        Key: `${prefix}/${blobKey(layer)}`,
        VersionId: v.DeleteMarkers![0].VersionId,
      }),
    );
    expect((await vault.store.head(blobKey(layer)))?.size).toBe('locked one'.length);
  });
});
