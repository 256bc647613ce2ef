import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { Digest, MANIFEST_MEDIA_TYPES, MediaType, type Descriptor } from '../../lib/oci';
import {
  COSIGN_SIGNATURE_TYPE,
  EMPTY_TAR,
  LayoutBuilder,
  REF_NAME,
  pushStandardFixtures,
  referrersTag,
  skopeoDigest,
  skopeoInspectRaw,
  type PushedFixtures,
  type PushedImage,
} from '../../fixtures';
import { testbed } from '../testbed/env';

const EMPTY_GZIP_DIGEST = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return `sha256:${hash.digest('hex')}`;
}

async function registryBlob(registry: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${registry}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The files inside a tar, with their sizes. */
async function tarEntries(data: Buffer): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      let size = 0;
      for await (const chunk of entry) size += (chunk as Buffer).length;
      out.push({ name: entry.header.name, size });
    }
  })();
  await pipeline(Readable.from([data]), extract);
  await done;
  return out;
}

function json<T>(bytes: Buffer): T {
  return JSON.parse(bytes.toString('utf8')) as T;
}

describe('test fixtures, checked with skopeo against the real registry', () => {
  const registry = testbed().registry;
  let dir: string;
  let fx: PushedFixtures;
  let tagged: [string, PushedImage][];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'imagevault-fixtures-'));
    fx = await pushStandardFixtures(registry, dir, { repoPrefix: 'fixtures-test' });
    tagged = [
      ['multiLayer', fx.multiLayer],
      ['index', fx.index],
      ['shared[0]', fx.shared[0]],
      ['shared[1]', fx.shared[1]],
      ['docker', fx.docker],
      ['plainTar', fx.plainTar],
      ['withEmptyLayer', fx.withEmptyLayer],
    ];
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('every pushed manifest is served byte for byte, under the digest it was built with', async () => {
    for (const [kind, img] of tagged) {
      const raw = await skopeoInspectRaw(img.ref);
      expect({ kind, equal: raw.equals(img.manifestBytes) }).toEqual({ kind, equal: true });
      expect(await skopeoDigest(img.ref)).toBe(img.digest);
      expect(Digest.of(img.manifestBytes).toString()).toBe(img.digest);
    }
  });

  test('the layout on disk holds every blob of every graph, each hashing to its name', async () => {
    const b = new LayoutBuilder(dir);
    const all = [...tagged.map(([, img]) => img), fx.signature];
    for (const digest of new Set(all.flatMap((img) => img.blobs))) {
      expect(await sha256File(b.blobPath(digest))).toBe(digest);
    }
    const names = b.refs().map((d) => d.annotations?.[REF_NAME]);
    for (const img of all) expect(names).toContain(img.name);
  });

  test('layer blobs in the registry are the bytes built', async () => {
    for (const [, img] of tagged.filter(([, i]) => i.manifests === undefined)) {
      for (const layer of img.layers) {
        const blob = await registryBlob(registry, img.repo, layer.digest);
        expect(Digest.of(blob).toString()).toBe(layer.digest);
        expect(blob.length).toBe(layer.size);
      }
    }
  });

  test('the Docker schema2 image keeps its media types in the registry', async () => {
    const res = await fetch(`http://${registry}/v2/${fx.docker.repo}/manifests/${fx.docker.reference}`, {
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    expect(res.headers.get('content-type')).toBe(MediaType.DockerManifest);
    expect(res.headers.get('docker-content-digest')).toBe(fx.docker.digest);
    const manifest = json<{ mediaType: string; config: Descriptor; layers: Descriptor[] }>(
      await skopeoInspectRaw(fx.docker.ref),
    );
    expect(manifest.mediaType).toBe(MediaType.DockerManifest);
    expect(manifest.config.mediaType).toBe(MediaType.DockerConfig);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([
      MediaType.DockerLayerGzip,
      MediaType.DockerLayerGzip,
    ]);
  });

  test('the index lists amd64 and arm64, and both images are pushed intact', async () => {
    const index = json<{ mediaType: string; manifests: Descriptor[] }>(await skopeoInspectRaw(fx.index.ref));
    expect(index.mediaType).toBe(MediaType.OciIndex);
    expect(index.manifests.map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    for (const child of fx.index.manifests ?? []) {
      const raw = await skopeoInspectRaw(`${registry}/${fx.index.repo}@${child.digest}`);
      expect(raw.equals(child.manifestBytes)).toBe(true);
    }
    expect(index.manifests.map((m) => m.digest)).toEqual(fx.index.manifests?.map((m) => m.digest));
  });

  test('the shared pair shares exactly its first two layers', () => {
    const [a, b] = fx.shared.map((img) => img.layers.map((l) => l.digest));
    expect(a.slice(0, 2)).toEqual(b.slice(0, 2));
    expect(a[2]).not.toBe(b[2]);
  });

  test('plain tar layers stay uncompressed and hold one file of the requested size', async () => {
    for (const layer of fx.plainTar.layers) {
      expect(layer.mediaType).toBe(MediaType.OciLayer);
      const blob = await registryBlob(registry, fx.plainTar.repo, layer.digest);
      expect(await tarEntries(blob)).toEqual([{ name: 'fixture.bin', size: 32 * 1024 }]);
    }
  });

  test('gzip layers decompress to the tar their config diff_id names', async () => {
    const config = json<{ rootfs: { diff_ids: string[] } }>(
      await registryBlob(registry, fx.multiLayer.repo, fx.multiLayer.config.digest),
    );
    for (const [i, layer] of fx.multiLayer.layers.entries()) {
      const tarBytes = gunzipSync(await registryBlob(registry, fx.multiLayer.repo, layer.digest));
      expect(Digest.of(tarBytes).toString()).toBe(config.rootfs.diff_ids[i]);
    }
  });

  test('the empty-layer image carries the canonical gzipped empty tar and an empty_layer history entry', async () => {
    expect(fx.withEmptyLayer.layers[1].digest).toBe(EMPTY_GZIP_DIGEST);
    expect(
      gunzipSync(await registryBlob(registry, fx.withEmptyLayer.repo, EMPTY_GZIP_DIGEST)).equals(EMPTY_TAR),
    ).toBe(true);
    const config = json<{ history: { empty_layer?: boolean }[]; rootfs: { diff_ids: string[] } }>(
      await registryBlob(registry, fx.withEmptyLayer.repo, fx.withEmptyLayer.config.digest),
    );
    expect(config.history.filter((h) => h.empty_layer)).toHaveLength(1);
    expect(config.rootfs.diff_ids[1]).toBe(Digest.of(EMPTY_TAR).toString());
  });

  test('the signature is a referrer of multiLayer, listed in the sha256-<hex> fallback tag', async () => {
    const raw = await skopeoInspectRaw(fx.signature.ref);
    expect(raw.equals(fx.signature.manifestBytes)).toBe(true);
    const manifest = json<{ artifactType: string; subject: Descriptor; config: Descriptor }>(raw);
    expect(manifest.artifactType).toBe(COSIGN_SIGNATURE_TYPE);
    expect(manifest.config).toEqual({
      mediaType: MediaType.OciEmpty,
      digest: Digest.of(Buffer.from('{}')).toString(),
      size: 2,
    });
    expect(manifest.subject).toEqual({
      mediaType: MediaType.OciManifest,
      digest: fx.multiLayer.digest,
      size: fx.multiLayer.size,
    });

    expect(fx.referrersTag).toBe(referrersTag(fx.multiLayer.digest));
    const list = json<{ mediaType: string; manifests: Descriptor[] }>(
      await skopeoInspectRaw(`${registry}/${fx.multiLayer.repo}:${fx.referrersTag}`),
    );
    expect(list.mediaType).toBe(MediaType.OciIndex);
    expect(list.manifests).toEqual([
      expect.objectContaining({
        mediaType: MediaType.OciManifest,
        digest: fx.signature.digest,
        size: fx.signature.size,
        artifactType: COSIGN_SIGNATURE_TYPE,
      }),
    ]);
  });

  test('pushing the standard fixtures again changes nothing (deterministic content, idempotent referrer tag)', async () => {
    const again = await pushStandardFixtures(registry, path.join(dir, 'again'), {
      repoPrefix: 'fixtures-test',
    });
    expect(again.multiLayer.digest).toBe(fx.multiLayer.digest);
    expect(again.index.digest).toBe(fx.index.digest);
    const list = json<{ manifests: Descriptor[] }>(
      await skopeoInspectRaw(`${registry}/${fx.multiLayer.repo}:${fx.referrersTag}`),
    );
    expect(list.manifests).toHaveLength(1);
  });
});

describe('layer generation', () => {
  const MiB = 1024 * 1024;
  let dirs: string[] = [];
  const tempLayout = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'imagevault-layer-'));
    dirs.push(d);
    return new LayoutBuilder(d);
  };

  afterEach(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  });

  test('a 64 MiB seeded layer is byte-identical across runs and is generated as a stream', async () => {
    const runs: { digest: string; fileHash: string; ms: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const b = tempLayout();
      const start = process.hrtime.bigint();
      const layer = await b.layer({ sizeBytes: 64 * MiB, seed: 'determinism' });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      runs.push({ digest: layer.digest, fileHash: await sha256File(b.blobPath(layer.digest)), ms });
    }
    expect(runs[1].digest).toBe(runs[0].digest);
    expect(runs[0].fileHash).toBe(runs[0].digest);
    expect(runs[1].fileHash).toBe(runs[1].digest);

    const b = tempLayout();
    const gzStart = process.hrtime.bigint();
    const gz = await b.layer({ sizeBytes: 16 * MiB, seed: 'determinism', gzip: true });
    const gzMs = Number(process.hrtime.bigint() - gzStart) / 1e6;
    const gzAgain = await tempLayout().layer({ sizeBytes: 16 * MiB, seed: 'determinism', gzip: true });
    expect(gzAgain.digest).toBe(gz.digest);

    const best = Math.min(...runs.map((r) => r.ms));
    console.log(
      `fixture layer generation: 64 MiB tar at ${((64 * 1000) / best).toFixed(0)} MiB/s, ` +
        `16 MiB tar+gzip at ${((16 * 1000) / gzMs).toFixed(0)} MiB/s`,
    );
  });

  test('unseeded layers are unique, seeded ones differ by seed', async () => {
    const b = tempLayout();
    const a = await b.layer({ sizeBytes: 4096 });
    const c = await b.layer({ sizeBytes: 4096 });
    expect(a.digest).not.toBe(c.digest);
    const s1 = await b.layer({ sizeBytes: 4096, seed: 'one' });
    const s2 = await b.layer({ sizeBytes: 4096, seed: 'two' });
    expect(s1.digest).not.toBe(s2.digest);
  });

  test('an uncompressed layer names its own tar as diff_id; the empty layer is the canonical 1024 zero bytes', async () => {
    const b = tempLayout();
    const plain = await b.layer({ sizeBytes: 1000, seed: 'x' });
    expect(plain.diffId).toBe(plain.digest);
    expect(await tarEntries(readFileSync(b.blobPath(plain.digest)))).toEqual([
      { name: 'fixture.bin', size: 1000 },
    ]);
    const empty = await b.layer({ sizeBytes: 0, empty: true });
    expect(empty).toEqual({
      mediaType: MediaType.OciLayer,
      digest: Digest.of(EMPTY_TAR).toString(),
      size: 1024,
      diffId: Digest.of(EMPTY_TAR).toString(),
    });
  });

  test('history must match the layers', async () => {
    const b = tempLayout();
    const layer = await b.layer({ sizeBytes: 10, seed: 'h' });
    await expect(
      b.image({ layers: [layer], history: [{ created_by: 'a' }, { created_by: 'b' }] }),
    ).rejects.toThrow(/history has 2 non-empty entries for 1 layers/);
  });
});
