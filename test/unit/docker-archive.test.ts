import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import type { Vault } from '../../lib/content';
import { Digest, MediaType, type Descriptor, type Platform } from '../../lib/oci';
import { DockerArchiveError, exportDockerArchive } from '../../lib/services/docker-archive';
import { randomChunks } from '../../fixtures/random';
import { descOf, tempDir, tempVault } from './helpers';

const run = promisify(execFile);

// ---- fixtures: small real images written straight into a vault ----

/** A real tar layer holding `files`, as tar-stream writes it (what skopeo and docker load must unpack). */
async function tarLayer(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) {
    pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, Buffer.from(content));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

interface TestLayer {
  desc: Descriptor;
  diffId: string;
}

interface TestImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: TestLayer[];
}

async function put(vault: Vault, mediaType: string, data: Buffer): Promise<Descriptor> {
  const d = descOf(mediaType, data);
  await vault.push(d, Readable.from([data]));
  return d;
}

/** Pushes `tarBytes` as a layer, gzip-compressed or plain, and returns it with its diff ID. */
async function putLayer(
  vault: Vault,
  tarBytes: Buffer,
  opts: { gzip: boolean; docker?: boolean },
): Promise<TestLayer> {
  const mediaType = opts.docker
    ? opts.gzip
      ? MediaType.DockerLayerGzip
      : 'application/vnd.docker.image.rootfs.diff.tar'
    : opts.gzip
      ? MediaType.OciLayerGzip
      : MediaType.OciLayer;
  const desc = await put(vault, mediaType, opts.gzip ? gzipSync(tarBytes) : tarBytes);
  return { desc, diffId: Digest.of(tarBytes).toString() };
}

/** Config (with rootfs.diff_ids of the uncompressed tars) and manifest for `layers`, pushed into the vault. */
async function putImage(
  vault: Vault,
  layers: TestLayer[],
  opts: { platform?: Platform; docker?: boolean; diffIds?: string[] } = {},
): Promise<TestImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const configJson = {
    ...platform,
    created: '1970-01-01T00:00:00Z',
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `layer ${i}` })),
  };
  const config = await put(
    vault,
    opts.docker ? MediaType.DockerConfig : MediaType.OciConfig,
    Buffer.from(JSON.stringify(configJson)),
  );
  const mediaType = opts.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, config, layers: layers.map((l) => l.desc) }),
  );
  return { manifest: await put(vault, mediaType, manifestBytes), config, layers };
}

/** amd64 and arm64/v8 images under one OCI index, plus a buildx-style attestation entry (unknown/unknown). */
async function putMultiPlatform(
  vault: Vault,
): Promise<{ index: Descriptor; amd64: TestImage; arm64: TestImage }> {
  const shared = await putLayer(vault, await tarLayer({ 'etc/os-release': 'ID=fixture\n' }), { gzip: true });
  const amd64 = await putImage(vault, [
    shared,
    await putLayer(vault, await tarLayer({ 'bin/app': 'amd64 app' }), { gzip: false }),
  ]);
  const arm64 = await putImage(
    vault,
    [shared, await putLayer(vault, await tarLayer({ 'bin/app': 'arm64 app' }), { gzip: true })],
    {
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
  );
  const attestation = await putImage(vault, [], { platform: { os: 'unknown', architecture: 'unknown' } });
  const index = await put(
    vault,
    MediaType.OciIndex,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          { ...amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm64.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          {
            ...attestation.manifest,
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: {
              'vnd.docker.reference.type': 'attestation-manifest',
              'vnd.docker.reference.digest': amd64.manifest.digest,
            },
          },
        ],
      }),
    ),
  );
  return { index, amd64, arm64 };
}

function blobFile(vault: Vault, digest: string): string {
  return path.join(fileURLToPath(vault.url), 'blobs', 'sha256', Digest.parse(digest).hex);
}

/** Every entry of a (small) tar, by name. */
async function readTar(file: string): Promise<Map<string, { type: string; data: Buffer }>> {
  const out = new Map<string, { type: string; data: Buffer }>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      out.set(entry.header.name, { type: entry.header.type, data: Buffer.concat(chunks) });
    }
  })();
  Readable.from([readFileSync(file)]).pipe(extract);
  await done;
  return out;
}

// ---- skopeo, the independent oracle ----

async function skopeo(args: string[]): Promise<string> {
  try {
    return (await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

interface Inspected {
  Architecture: string;
  Os: string;
  Variant?: string;
  Layers: string[];
  RepoTags: string[];
}

async function inspect(transport: string): Promise<Inspected> {
  return JSON.parse(await skopeo(['inspect', transport])) as Inspected;
}

/**
 * Copies the archive into an OCI layout with skopeo and returns what skopeo wrote: manifest and config bytes. With
 * `preserveDigests`, skopeo must copy the image unmodified or fail; without, it converts to an OCI manifest, which
 * re-serialises the config (containers/image marshals it again) and compresses the layers.
 */
async function skopeoCopyToOci(
  archive: string,
  opts: { preserveDigests: boolean },
): Promise<{
  manifest: { mediaType: string; config: Descriptor; layers: Descriptor[] };
  configBytes: Buffer;
}> {
  const dir = tempDir();
  await skopeo([
    'copy',
    '--quiet',
    ...(opts.preserveDigests ? ['--preserve-digests'] : []),
    `docker-archive:${archive}`,
    `oci:${dir}:x`,
  ]);
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const blob = (d: string) => readFileSync(path.join(dir, 'blobs', 'sha256', Digest.parse(d).hex));
  const manifest = JSON.parse(blob(index.manifests[0].digest).toString('utf8')) as {
    mediaType: string;
    config: Descriptor;
    layers: Descriptor[];
  };
  return { manifest, configBytes: blob(manifest.config.digest) };
}

describe('Function: exportDockerArchive', () => {
  describe('a single-platform image', () => {
    let vault: Vault;
    let image: TestImage;
    let file: string;

    beforeAll(async () => {
      vault = await tempVault();
      const gz = await putLayer(
        vault,
        await tarLayer({ 'etc/hello': 'hello\n', 'etc/motd': 'gzip layer\n' }),
        { gzip: true },
      );
      const plain = await putLayer(vault, await tarLayer({ 'app/run.sh': '#!/bin/sh\necho plain\n' }), {
        gzip: false,
      });
      image = await putImage(vault, [gz, plain]);
      file = path.join(tempDir(), 'app.tar');
    });

    it('writes the archive and reports what it wrote', async () => {
      // Act
      const r = await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Assess
      expect(r).toEqual({
        file,
        manifest: image.manifest,
        config: image.config.digest,
        layers: 2,
        bytes: statSync(file).size,
        repoTags: ['app:1.0'],
      });
      expect(readdirSync(path.dirname(file))).toEqual(['app.tar']);
    });

    it('lays the archive out as docker save does, with every blob byte-for-byte as stored', async () => {
      // Prepare
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Act
      const entries = await readTar(file);
      // Assess
      const hex = (d: Descriptor) => `blobs/sha256/${Digest.parse(d.digest).hex}`;
      expect(JSON.parse(entries.get('manifest.json')!.data.toString())).toEqual([
        { Config: hex(image.config), RepoTags: ['app:1.0'], Layers: image.layers.map((l) => hex(l.desc)) },
      ]);
      for (const d of [image.config, image.manifest, ...image.layers.map((l) => l.desc)]) {
        expect(
          createHash('sha256')
            .update(entries.get(hex(d))!.data)
            .digest('hex'),
        ).toBe(Digest.parse(d.digest).hex);
      }
      expect(JSON.parse(entries.get('oci-layout')!.data.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
      expect(JSON.parse(entries.get('index.json')!.data.toString()).manifests).toEqual([
        {
          ...image.manifest,
          platform: { os: 'linux', architecture: 'amd64' },
          annotations: {
            'io.containerd.image.name': 'docker.io/library/app:1.0',
            'org.opencontainers.image.ref.name': '1.0',
          },
        },
      ]);
      expect(entries.get('blobs/')?.type).toBe('directory');
      expect(entries.get('blobs/sha256/')?.type).toBe('directory');
    });

    it('is read by skopeo as a docker-archive: layer count, diff IDs, architecture and tag', async () => {
      // Prepare
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Act
      const info = await inspect(`docker-archive:${file}`);
      const byTag = await inspect(`docker-archive:${file}:app:1.0`);
      // Assess: skopeo decompresses gzip layers and checks each against its diff ID
      expect(info.Architecture).toBe('amd64');
      expect(info.Os).toBe('linux');
      expect(info.Layers).toEqual(image.layers.map((l) => l.diffId));
      expect(byTag.Layers).toHaveLength(2);
    });

    it('survives skopeo copy docker-archive → oci with the config bytes, and so the image ID, unchanged', async () => {
      // Prepare
      const r = await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Act
      const copied = await skopeoCopyToOci(file, { preserveDigests: true });
      // Assess: skopeo serves the layers uncompressed, so each arrives under its diff ID
      expect(copied.manifest.config.digest).toBe(r.config);
      expect(Digest.of(copied.configBytes).toString()).toBe(image.config.digest);
      expect(copied.manifest.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    });

    it('survives skopeo copy docker-archive → oci with conversion to an OCI manifest, config content unchanged', async () => {
      // Prepare
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Act
      const copied = await skopeoCopyToOci(file, { preserveDigests: false });
      // Assess
      expect(copied.manifest.mediaType).toBe(MediaType.OciManifest);
      const ours = JSON.parse(readFileSync(blobFile(vault, image.config.digest), 'utf8'));
      expect(JSON.parse(copied.configBytes.toString('utf8'))).toEqual(ours);
      expect(copied.manifest.layers).toHaveLength(2);
    });

    it('is also an OCI archive skopeo reads (the Docker 25 layout)', async () => {
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      const info = await inspect(`oci-archive:${file}`);
      // oci-archive serves the layers as stored, so the gzip one keeps its compressed digest
      expect(info.Layers).toEqual(image.layers.map((l) => l.desc.digest));
    });

    it('writes the same bytes every time: entry times are fixed', async () => {
      const other = path.join(tempDir(), 'again.tar');
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      await exportDockerArchive(vault, image.manifest, other, { repoTag: 'app:1.0' });
      expect(readFileSync(other).equals(readFileSync(file))).toBe(true);
    });

    it('writes no RepoTags when no tag is given (docker load keeps the image by ID)', async () => {
      const r = await exportDockerArchive(vault, image.manifest, file, {});
      const entries = await readTar(file);
      expect(r.repoTags).toEqual([]);
      expect(JSON.parse(entries.get('manifest.json')!.data.toString())[0].RepoTags).toEqual([]);
      expect(JSON.parse(entries.get('index.json')!.data.toString()).manifests[0].annotations).toBeUndefined();
    });

    it('writes RepoTags in the familiar form and keeps other registries', async () => {
      expect(
        (await exportDockerArchive(vault, image.manifest, file, { repoTag: 'docker.io/library/app:2' }))
          .repoTags,
      ).toEqual(['app:2']);
      expect(
        (await exportDockerArchive(vault, image.manifest, file, { repoTag: 'team/app:2' })).repoTags,
      ).toEqual(['team/app:2']);
      expect(
        (await exportDockerArchive(vault, image.manifest, file, { repoTag: 'reg.example:5000/app:2' }))
          .repoTags,
      ).toEqual(['reg.example:5000/app:2']);
    });

    it('throws naming the image when the repo tag has no tag', async () => {
      const p = exportDockerArchive(vault, image.manifest, path.join(tempDir(), 'x.tar'), { repoTag: 'app' });
      await expect(p).rejects.toThrow(DockerArchiveError);
      await expect(p).rejects.toThrow(`cannot export ${image.manifest.digest}`);
    });
  });

  describe('a Docker schema2 image', () => {
    it('is exported and read back by skopeo with its config unchanged', async () => {
      // Prepare
      const vault = await tempVault();
      const image = await putImage(
        vault,
        [
          await putLayer(vault, await tarLayer({ a: 'a' }), { gzip: true, docker: true }),
          await putLayer(vault, await tarLayer({ b: 'b' }), { gzip: false, docker: true }),
        ],
        { docker: true },
      );
      const file = path.join(tempDir(), 'docker.tar');
      // Act
      await exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:schema2' });
      // Assess
      expect((await inspect(`docker-archive:${file}`)).Layers).toEqual(image.layers.map((l) => l.diffId));
      expect((await skopeoCopyToOci(file, { preserveDigests: true })).manifest.config.digest).toBe(
        image.config.digest,
      );
    });
  });

  describe('a multi-platform index', () => {
    let vault: Vault;
    let images: Awaited<ReturnType<typeof putMultiPlatform>>;

    beforeAll(async () => {
      vault = await tempVault();
      images = await putMultiPlatform(vault);
    });

    it('exports linux/amd64 by default', async () => {
      const file = path.join(tempDir(), 'amd64.tar');
      const r = await exportDockerArchive(vault, images.index, file, { repoTag: 'multi:1' });
      expect(r.manifest.digest).toBe(images.amd64.manifest.digest);
      expect(r.config).toBe(images.amd64.config.digest);
      expect((await inspect(`docker-archive:${file}`)).Architecture).toBe('amd64');
    });

    it('exports the platform asked for', async () => {
      // Act
      const file = path.join(tempDir(), 'arm64.tar');
      const r = await exportDockerArchive(vault, images.index, file, { platform: 'linux/arm64/v8' });
      // Assess
      expect(r.manifest.digest).toBe(images.arm64.manifest.digest);
      expect(r.manifest.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
      const info = await inspect(`docker-archive:${file}`);
      expect(info.Architecture).toBe('arm64');
      expect(info.Layers).toEqual(images.arm64.layers.map((l) => l.diffId));
      expect((await skopeoCopyToOci(file, { preserveDigests: true })).manifest.config.digest).toBe(
        images.arm64.config.digest,
      );
    });

    it.each(['linux/arm64', 'linux/aarch64', 'linux/arm64/v8'])(
      'takes %s as the arm64/v8 image',
      async (platform) => {
        const r = await exportDockerArchive(vault, images.index, path.join(tempDir(), 'a.tar'), { platform });
        expect(r.manifest.digest).toBe(images.arm64.manifest.digest);
      },
    );

    it('throws listing the available platforms, without the attestation, and writes nothing', async () => {
      // Prepare
      const dir = tempDir();
      // Act
      const p = exportDockerArchive(vault, images.index, path.join(dir, 's390x.tar'), {
        platform: 'linux/s390x',
      });
      // Assess
      await expect(p).rejects.toThrow(DockerArchiveError);
      await expect(p).rejects.toThrow(
        `cannot export ${images.index.digest} as a docker-archive: index has no linux/s390x image; available platforms: linux/amd64, linux/arm64/v8`,
      );
      await expect(p).rejects.not.toThrow(/unknown/);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('throws on a platform that is not os/architecture[/variant]', async () => {
      const p = exportDockerArchive(vault, images.index, path.join(tempDir(), 'x.tar'), {
        platform: 'amd64',
      });
      await expect(p).rejects.toThrow('invalid platform "amd64"');
    });
  });

  describe('when the vault cannot supply the image', () => {
    it('throws naming the image and the corrupt layer, and leaves no file at the target', async () => {
      // Prepare: a layer blob rotted in place — same size, other bytes
      const vault = await tempVault();
      const good = await putLayer(vault, await tarLayer({ ok: 'fine' }), { gzip: true });
      const bad = await putLayer(vault, await tarLayer({ data: 'x'.repeat(100_000) }), { gzip: false });
      const image = await putImage(vault, [good, bad]);
      const stored = blobFile(vault, bad.desc.digest);
      writeFileSync(stored, Buffer.alloc(statSync(stored).size, 0x5a));
      const dir = tempDir();
      const file = path.join(dir, 'rotten.tar');
      // Act
      const p = exportDockerArchive(vault, image.manifest, file, { repoTag: 'app:1.0' });
      // Assess
      await expect(p).rejects.toThrow(DockerArchiveError);
      await expect(p).rejects.toThrow(image.manifest.digest);
      await expect(p).rejects.toThrow(bad.desc.digest);
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('keeps an earlier archive at the target when a new export fails', async () => {
      const vault = await tempVault();
      const layer = await putLayer(vault, await tarLayer({ f: 'content' }), { gzip: false });
      const image = await putImage(vault, [layer]);
      const file = path.join(tempDir(), 'kept.tar');
      writeFileSync(file, 'the earlier archive');
      const stored = blobFile(vault, layer.desc.digest);
      writeFileSync(stored, Buffer.alloc(statSync(stored).size));
      await expect(exportDockerArchive(vault, image.manifest, file, {})).rejects.toThrow(layer.desc.digest);
      expect(readFileSync(file, 'utf8')).toBe('the earlier archive');
    });

    it('throws, without hanging, when the archive cannot be written', async () => {
      // Prepare: the file side fails first; the vault side must be stopped, not left waiting for a drain
      const vault = await tempVault();
      const image = await putImage(vault, [
        await putLayer(vault, await tarLayer({ f: 'x'.repeat(4_000_000) }), { gzip: false }),
      ]);
      const file = path.join(tempDir(), 'no-such-dir', 'x.tar');
      // Act
      const p = exportDockerArchive(vault, image.manifest, file, {});
      // Assess
      await expect(p).rejects.toThrow(
        `cannot export ${image.manifest.digest} as a docker-archive to ${file}: ENOENT`,
      );
    });

    it('refuses a non-distributable layer whose content is not in the vault', async () => {
      // Prepare: a Windows-style foreign base layer, recorded by URL only
      const vault = await tempVault();
      const foreign: TestLayer = {
        desc: {
          mediaType: MediaType.DockerForeignLayerGzip,
          digest: `sha256:${'f'.repeat(64)}`,
          size: 1234,
          urls: ['https://mcr.example/base.tar.gz'],
        },
        diffId: `sha256:${'e'.repeat(64)}`,
      };
      const own = await putLayer(vault, await tarLayer({ app: 'app' }), { gzip: true, docker: true });
      const image = await putImage(vault, [foreign, own], {
        docker: true,
        platform: { os: 'windows', architecture: 'amd64' },
      });
      const dir = tempDir();
      // Act
      const p = exportDockerArchive(vault, image.manifest, path.join(dir, 'win.tar'), {});
      // Assess
      await expect(p).rejects.toThrow(
        `layer ${foreign.desc.digest} is non-distributable (${MediaType.DockerForeignLayerGzip}, from https://mcr.example/base.tar.gz)`,
      );
      expect(readdirSync(dir)).toEqual([]);
    });

    it('exports a non-distributable layer that is in the vault, recording it in LayerSources', async () => {
      const vault = await tempVault();
      const base = await putLayer(vault, await tarLayer({ base: 'base' }), { gzip: true });
      const foreign: TestLayer = {
        ...base,
        desc: { ...base.desc, mediaType: MediaType.DockerForeignLayerGzip, urls: ['https://mcr.example/b'] },
      };
      const image = await putImage(vault, [foreign], { docker: true });
      const file = path.join(tempDir(), 'foreign.tar');
      await exportDockerArchive(vault, image.manifest, file, {});
      const item = JSON.parse((await readTar(file)).get('manifest.json')!.data.toString())[0];
      expect(item.LayerSources).toEqual({ [base.diffId]: foreign.desc });
      expect((await inspect(`docker-archive:${file}`)).Layers).toEqual([base.diffId]);
    });

    it('throws naming a layer that is missing from the vault', async () => {
      const vault = await tempVault();
      const layer = await putLayer(vault, await tarLayer({ f: 'gone' }), { gzip: true });
      const image = await putImage(vault, [layer]);
      rmSync(blobFile(vault, layer.desc.digest));
      const p = exportDockerArchive(vault, image.manifest, path.join(tempDir(), 'x.tar'), {});
      await expect(p).rejects.toThrow(`layer ${layer.desc.digest} is not in the vault`);
    });

    it('refuses an image whose config lists a different number of diff IDs than the manifest has layers', async () => {
      const vault = await tempVault();
      const layer = await putLayer(vault, await tarLayer({ f: 'x' }), { gzip: true });
      const image = await putImage(vault, [layer], { diffIds: [] });
      const p = exportDockerArchive(vault, image.manifest, path.join(tempDir(), 'x.tar'), {});
      await expect(p).rejects.toThrow('lists 1 layers but its config has 0 diff IDs');
    });

    it('refuses an artifact that is not a container image', async () => {
      const vault = await tempVault();
      const config = await put(vault, 'application/vnd.example.config+json', Buffer.from('{}'));
      const manifest = await put(
        vault,
        MediaType.OciManifest,
        Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] }),
        ),
      );
      await expect(exportDockerArchive(vault, manifest, path.join(tempDir(), 'x.tar'), {})).rejects.toThrow(
        'is not a container image: its config is application/vnd.example.config+json',
      );
    });
  });

  describe('memory', () => {
    it('streams a layer: what has been read from the vault is never more than a few MiB ahead of the file', async () => {
      // Prepare: a 64 MiB layer (its content need not be a tar: nothing here unpacks it)
      const size = 64 * 1024 * 1024;
      const vault = await tempVault();
      const hash = createHash('sha256');
      for (const chunk of randomChunks(size, 'docker-archive-memory')) hash.update(chunk);
      const digest = `sha256:${hash.digest('hex')}`;
      const layer: TestLayer = { desc: { mediaType: MediaType.OciLayer, digest, size }, diffId: digest };
      await vault.push(layer.desc, Readable.from(randomChunks(size, 'docker-archive-memory')));
      const image = await putImage(vault, [layer]);
      // Count what the export pulls from the vault, and compare with what has reached the temp file. The gap is
      // what sits in memory; GC-independent, unlike sampling the heap.
      let pulled = 0;
      const fetch = vault.fetch.bind(vault);
      jest.spyOn(vault, 'fetch').mockImplementation(async (d) =>
        (await fetch(d)).pipe(
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              pulled += chunk.length;
              done(null, chunk);
            },
          }),
        ),
      );
      const dir = tempDir();
      let maxAhead = 0;
      let samples = 0;
      const sampler = setInterval(() => {
        const tmp = readdirSync(dir).find((n) => n.includes('.tmp-'));
        const written = tmp ? statSync(path.join(dir, tmp), { throwIfNoEntry: false })?.size : undefined;
        if (written === undefined) return;
        samples++;
        maxAhead = Math.max(maxAhead, pulled - written);
      }, 1);
      // Act
      try {
        await exportDockerArchive(vault, image.manifest, path.join(dir, 'big.tar'), {});
      } finally {
        clearInterval(sampler);
      }
      // Assess
      expect(pulled).toBeGreaterThanOrEqual(size);
      expect(statSync(path.join(dir, 'big.tar')).size).toBeGreaterThan(size);
      expect(samples).toBeGreaterThan(0);
      expect(maxAhead).toBeLessThan(16 * 1024 * 1024);
      // 128 MiB of fixtures: not left behind in the temp directory like the small ones
      rmSync(dir, { recursive: true, force: true });
      rmSync(fileURLToPath(vault.url), { recursive: true, force: true });
    });
  });
});
