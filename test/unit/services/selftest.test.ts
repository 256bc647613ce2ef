import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { readAll } from '../../../lib/content';
import { Digest, MediaType, parseManifest, type Descriptor } from '../../../lib/oci';
import { locationOf } from '../../../lib/services/selftest';
import { alarmSubject, periodOf, scratchRepository } from '../../../lib/services/selftest-model';
import { SELFTEST_LABEL, SelfTestImage } from '../../../lib/services/selftest-image';

async function bytesOf(
  image: SelfTestImage,
  digest: string,
  mediaType: string,
  size: number,
): Promise<Buffer> {
  return readAll(await image.fetch({ digest, mediaType, size }), 1 << 20, digest);
}

/** The entries of a tar, read by an independent reader (tar-stream). */
async function entries(data: Buffer): Promise<Array<{ name: string; type: string; body: string }>> {
  const out: Array<{ name: string; type: string; body: string }> = [];
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      out.push({
        name: entry.header.name,
        type: entry.header.type ?? '',
        body: Buffer.concat(chunks).toString(),
      });
    }
  })();
  Readable.from([data]).pipe(extract);
  await done;
  return out;
}

describe('Class: SelfTestImage', () => {
  it('is a valid OCI image: manifest → config naming the layer by diff_id → a tar of one small file', async () => {
    // Prepare
    const image = new SelfTestImage('run-1', new Date('2026-11-30T20:00:00Z'));

    // Act
    const parsed = parseManifest(image.manifestBytes(), image.root.mediaType);
    const manifest = JSON.parse(image.manifestBytes().toString()) as {
      config: Descriptor;
      layers: Descriptor[];
    };

    // Assess
    expect(image.root.mediaType).toBe(MediaType.OciManifest);
    expect(Digest.of(image.manifestBytes()).toString()).toBe(image.root.digest);
    expect(parsed.kind).toBe('manifest');
    const [layer] = manifest.layers;
    expect(manifest.layers).toHaveLength(1);
    expect(layer.mediaType).toBe(MediaType.OciLayer);
    const layerBytes = await bytesOf(image, layer.digest, layer.mediaType, layer.size);
    expect(Digest.of(layerBytes).toString()).toBe(layer.digest);
    expect(layerBytes.length).toBe(layer.size);
    expect(await entries(layerBytes)).toEqual([
      { name: 'imagevault-selftest.txt', type: 'file', body: 'imagevault self-test run-1: safe to delete\n' },
    ]);
    const config = JSON.parse(
      (
        await bytesOf(image, manifest.config.digest, manifest.config.mediaType, manifest.config.size)
      ).toString(),
    ) as { rootfs: { diff_ids: string[] }; config: { Labels: Record<string, string> }; created: string };
    // An uncompressed layer: its diff_id is its digest.
    expect(config.rootfs.diff_ids).toEqual([layer.digest]);
    expect(config.config.Labels[SELFTEST_LABEL]).toBe('run-1');
    expect(config.created).toBe('2026-11-30T20:00:00.000Z');
  });

  it('has a manifest digest of its own for every run, so no earlier run can satisfy a wait', () => {
    const at = new Date('2026-11-30T20:00:00Z');
    expect(new SelfTestImage('run-1', at).root.digest).not.toBe(new SelfTestImage('run-2', at).root.digest);
    expect(new SelfTestImage('run-1', at).root.digest).toBe(new SelfTestImage('run-1', at).root.digest);
  });

  it('says what it does not hold', async () => {
    const image = new SelfTestImage('run-1', new Date());
    await expect(
      image.exists({ digest: `sha256:${'0'.repeat(64)}`, mediaType: MediaType.OciLayer, size: 1 }),
    ).resolves.toBe(false);
    await expect(
      image.fetch({ digest: `sha256:${'0'.repeat(64)}`, mediaType: MediaType.OciLayer, size: 1 }),
    ).rejects.toThrow(/has no sha256:0+/);
  });
});

describe('Function: scratchRepository', () => {
  it.each([
    [undefined, 'imagevault-selftest'],
    ['*', 'imagevault-selftest'],
    ['team-a/', 'team-a/imagevault-selftest'],
    ['team-a/,payments', 'team-a/imagevault-selftest'],
    ['payments', 'payments/imagevault-selftest'],
    ['team-', 'team-imagevault-selftest'],
  ])('under the first protected prefix %p: %s', (prefixes, expected) => {
    expect(scratchRepository(prefixes)).toBe(expected);
  });
});

describe('Function: periodOf', () => {
  it.each([
    ['rate(1 hour)', 3600_000],
    ['rate(6 hours)', 6 * 3600_000],
    ['rate(15 minutes)', 15 * 60_000],
    ['rate(1 day)', 86_400_000],
    ['cron(0 */6 * * ? *)', undefined],
    [undefined, undefined],
  ])('%p is %p ms', (expression, ms) => {
    expect(periodOf(expression)).toBe(ms);
  });
});

describe('Function: locationOf', () => {
  it('reads the account and region from a stack ARN, in any partition', () => {
    expect(locationOf('arn:aws:cloudformation:eu-west-1:111122223333:stack/ImageVault/abc')).toEqual({
      account: '111122223333',
      region: 'eu-west-1',
    });
    expect(locationOf('arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/ImageVault/abc').region).toBe(
      'cn-north-1',
    );
  });

  it('refuses anything else', () => {
    expect(() => locationOf('ImageVault')).toThrow('"ImageVault" is not a CloudFormation stack ARN');
  });
});

describe('Function: alarmSubject', () => {
  it("is CloudWatch's subject, with us-east-1's long name", () => {
    expect(alarmSubject('A', 'us-east-1')).toBe('ALARM: "A" in US East (N. Virginia)');
    expect(alarmSubject('A', 'eu-west-1')).toBe('ALARM: "A" in <the long name of eu-west-1>');
  });
});
