import type { S3Client } from '@aws-sdk/client-s3';
import { LayoutBuilder, pushLayout, type BuiltImage } from '../../fixtures';
import { startFaultyProxy, type FaultyProxy } from '../testbed/faulty-proxy';
import { s3ProcessEnv, s3env, testBucket, testbed } from '../testbed/env';
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

  describe('a hung S3 endpoint (the faulty proxy in front of radosgw)', () => {
    let s3proxy: FaultyProxy;

    beforeAll(async () => {
      s3proxy = await startFaultyProxy(new URL(s3env().endpoint).host, { maxHoldMs: 20_000 });
    });

    afterAll(() => s3proxy.close());

    afterEach(() => {
      const before: Record<string, string | undefined> = { ...saved, ...s3ProcessEnv() };
      for (const k of ['AWS_ENDPOINT_URL_S3', 'IMAGEVAULT_TIMEOUT', 'IMAGEVAULT_IDLE_TIMEOUT']) {
        if (before[k] === undefined) delete process.env[k];
        else process.env[k] = before[k];
      }
    });

    it("fails within IMAGEVAULT_TIMEOUT (each of the SDK's three attempts), naming the store and the object", async () => {
      // Prepare: every request for the vault gets no answer for 20 s; a one-second timeout
      const store = `s3://${bucket}/hung`;
      s3proxy.inject({
        path: new RegExp(`^/${bucket}/hung/`),
        times: 100,
        fault: { kind: 'delay', ms: 20_000 },
      });
      process.env.AWS_ENDPOINT_URL_S3 = `http://${s3proxy.address}`;
      process.env.IMAGEVAULT_TIMEOUT = '1';
      const started = Date.now();
      // Act
      const r = await cli('--store', store, 'snapshot', '--no-base', `${registry}/faults/s3:1`);
      // Assess
      const elapsed = Date.now() - started;
      expect(r.code).toBe(1);
      expect(elapsed).toBeLessThan(8_000);
      expect(s3proxy.counts.delay).toBe(3);
      expect(r.stderr).toMatch(
        new RegExp(`HeadObject s3://${bucket}/hung/oci-layout failed: .*timed? ?out`, 'i'),
      );
    });

    it('a body that stalls fails within IMAGEVAULT_IDLE_TIMEOUT, naming the blob and the vault as the source', async () => {
      // Prepare: the vault holds the image; then the big blob's body stops after 1 MiB on its way out of S3
      const store = `s3://${bucket}/stalled`;
      expect((await cli('--store', store, 'snapshot', '--no-base', `${registry}/faults/s3:1`)).code).toBe(0);
      s3proxy.inject({
        path: new RegExp(`^/${bucket}/stalled/blobs/sha256/${big.slice(7)}$`),
        method: 'GET',
        fault: { kind: 'hang', afterBytes: MiB },
      });
      process.env.AWS_ENDPOINT_URL_S3 = `http://${s3proxy.address}`;
      process.env.IMAGEVAULT_IDLE_TIMEOUT = '1';
      const started = Date.now();
      // Act
      const r = await cli(
        '--store',
        store,
        'restore',
        'faults/s3:1',
        '--to',
        `${registry}/faults/s3-stalled:1`,
      );
      // Assess
      expect(r.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(s3proxy.counts.hang).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`fetch ${big} .* at source: .*1000 ms of inactivity`));
    });
  });
});
