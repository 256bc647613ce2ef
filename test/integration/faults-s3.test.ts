import type { S3Client } from '@aws-sdk/client-s3';
import { LayoutBuilder, pushLayout, type BuiltImage } from '../fixtures';
import { startFaultyProxy, type FaultyProxy } from '../testbed/faulty-proxy';
import { s3ProcessEnv, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

/*
 * The faults of faults.test.ts with the vault in real S3 (radosgw): the source body now breaks off inside a multipart
 * upload, which must still resume, and a failure must still be the source's, not S3's.
 */

const MiB = 1024 * 1024;

describe('snapshots through a faulty network into an S3 vault', () => {
  const registry = testbed().registry;
  const bucket = `faults-${Date.now()}`;
  let proxy: FaultyProxy;
  let image: BuiltImage;
  let big: string;
  let client: S3Client;
  const saved = { ...process.env };

  beforeAll(async () => {
    Object.assign(process.env, s3ProcessEnv());
    ({ client } = await testBucket(bucket));
    const dir = tempDir();
    const b = new LayoutBuilder(dir);
    // Larger than one multipart part (16 MiB), so the break comes in the middle of a multipart upload.
    const layers = [await b.layer({ sizeBytes: 20 * MiB }), await b.layer({ sizeBytes: 4096 })];
    image = await b.image({ name: 'faults-s3', layers });
    big = layers[0].digest;
    await pushLayout(dir, 'faults-s3', `${registry}/faults/s3:1`);
    proxy = await startFaultyProxy(registry);
  });

  afterAll(async () => {
    process.env = saved;
    client.destroy();
    await proxy.close();
  });

  beforeEach(() => proxy.reset());

  const bigPath = () => new RegExp(`/v2/faults/s3/blobs/${big}$`);
  const bigGets = () => proxy.requests.filter((r) => r.method === 'GET' && bigPath().test(r.path));

  it('a reset mid-blob is resumed with Range and the S3 vault verifies', async () => {
    // Prepare
    const store = `s3://${bucket}/resumed`;
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'reset', afterBytes: 18 * MiB } });
    // Act
    const r = await cli('--store', store, 'snapshot', '--no-base', `${proxy.address}/faults/s3:1`);
    // Assess
    expect(r.code).toBe(0);
    expect(bigGets().map((g) => g.status)).toEqual([200, 206]);
    expect((await cli('--store', store, 'verify')).code).toBe(0);
    const list = await cli('--store', store, '--json', 'list', 'faults/s3');
    expect(list.stdout).toContain(image.digest);
  });

  it('a reset storm mid-body is reported at the source, not as an S3 failure', async () => {
    const store = `s3://${bucket}/storm`;
    proxy.inject({
      path: bigPath(),
      method: 'GET',
      times: 100,
      fault: { kind: 'reset', afterBytes: 2 * MiB },
    });
    const r = await cli('--store', store, 'snapshot', '--no-base', `${proxy.address}/faults/s3:1`);
    expect(r.code).toBe(1);
    expect(bigGets()).toHaveLength(5);
    const failure = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(big));
    expect(failure[0]).toMatch(/fetch sha256:[0-9a-f]{64} .* at source: GET .*response body: .*5 attempts/);
  });
});
