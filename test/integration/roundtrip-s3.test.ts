/**
 * The same lost-registry story with the vault in real S3 (radosgw, versioned bucket): snapshot, restore into an
 * empty registry with identical bytes, history, and a verify that re-hashes through S3.
 */
import { ListObjectVersionsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { pushStandardFixtures, skopeoInspectRaw, type PushedFixtures } from '../../fixtures';
import { s3ProcessEnv, startRegistry, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

describe('snapshot → lose the registry → restore (S3 store on radosgw)', () => {
  const bucket = `vault-${Date.now()}`;
  const store = `s3://${bucket}/team-a`;
  let fx: PushedFixtures;
  let client: S3Client;
  const saved = { ...process.env };

  beforeAll(async () => {
    Object.assign(process.env, s3ProcessEnv());
    ({ client } = await testBucket(bucket));
    fx = await pushStandardFixtures(testbed().registry, tempDir(), { repoPrefix: 's3rt' });
  });

  afterAll(() => {
    process.env = saved;
    client.destroy();
  });

  it('snapshots, copies nothing the second time, and restores byte-identical images', async () => {
    const images = [fx.multiLayer, fx.index, fx.docker, fx.shared[0], fx.shared[1]];
    await cliJson('--store', store, 'snapshot', ...images.map((i) => i.ref));
    const again = await cliJson<{ snapshots: { copy: { bytes: { copied: number } } }[] }>(
      '--store',
      store,
      'snapshot',
      ...images.map((i) => i.ref),
    );
    expect(again.snapshots.map((s) => s.copy.bytes.copied)).toEqual(images.map(() => 0));

    const fresh = startRegistry(`s3-fresh-${Date.now()}`);
    for (const img of images) {
      const r = await cliJson<{ verifiedDigest: string }>(
        '--store',
        store,
        'restore',
        `${img.repo}:1`,
        '--to',
        `${fresh}/${img.repo}:1`,
      );
      expect(r.verifiedDigest).toBe(img.digest);
      expect(await skopeoInspectRaw(`${fresh}/${img.repo}:1`)).toEqual(img.manifestBytes);
    }
    expect(await skopeoInspectRaw(`${fresh}/${fx.multiLayer.repo}@${fx.signature.digest}`)).toEqual(
      fx.signature.manifestBytes,
    );
  });

  it('keeps blobs under the OCI layout keys below the prefix', async () => {
    const v = await client.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: `team-a/blobs/sha256/${fx.docker.digest.slice(7)}`,
      }),
    );
    expect(v.Versions).toHaveLength(1);
  });

  it('verify re-hashes through S3 and names a blob that was replaced behind its back', async () => {
    expect((await cli('--store', store, 'verify')).code).toBe(0);
    const layer = fx.shared[0].layers[0];
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `team-a/blobs/sha256/${layer.digest.slice(7)}`,
        Body: Buffer.alloc(layer.size, 1),
      }),
    );
    const bad = await cli('--store', store, 'verify');
    expect(bad.code).toBe(4);
    expect(bad.stdout).toContain(`CORRUPT ${layer.digest}`);
  });
});
