import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DigestMismatchError, MediaType, type Descriptor } from '../../lib/oci';
import { RegistryClient, RegistryError, referrersTag, type Repository } from '../../lib/registry';
import { startRegistry, testbed } from '../testbed/env';

/*
 * Against the real registry of the test bed (Debian docker-registry, CNCF distribution 2.8.2): the distribution
 * API as a registry really speaks it, plus skopeo as an independent client reading what we pushed.
 */

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const anonymous = async () => undefined;

function blob(
  content: Buffer,
  mediaType: string = MediaType.OciLayer,
): { desc: Descriptor; content: Buffer } {
  return { desc: { mediaType, digest: sha256(content), size: content.length }, content };
}

async function readStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Pushes a random layer, its config and an OCI image manifest; returns the manifest's descriptor and bytes. */
async function pushImage(
  repo: Repository,
  extra: Record<string, unknown> = {},
): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const layer = blob(randomBytes(4096));
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [layer.desc.digest] },
      }),
    ),
    MediaType.OciConfig,
  );
  await repo.push(layer.desc, Readable.from([layer.content]));
  await repo.push(config.desc, Readable.from([config.content]));
  // Indented JSON: the registry and skopeo must hand back these bytes, not a re-serialisation.
  const bytes = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: config.desc,
        layers: [layer.desc],
        ...extra,
      },
      null,
      3,
    ),
  );
  const desc = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  await repo.push(desc, Readable.from([bytes]));
  return { desc, bytes };
}

describe('Integration: RegistryClient against docker-registry', () => {
  const host = testbed().registry;
  const run = Date.now().toString(36);
  let client: RegistryClient;
  const warnings: string[] = [];

  beforeAll(() => {
    client = new RegistryClient(host, { credentials: anonymous, warn: (line) => warnings.push(line) });
  });

  afterAll(() => client.close());

  it('pushes a blob monolithically, then finds, fetches and range-fetches it', async () => {
    // Prepare
    const repo = client.repository(`it-${run}/mono`);
    const b = blob(randomBytes(300_000));

    // Act
    await repo.push(b.desc, Readable.from([b.content.subarray(0, 100_000), b.content.subarray(100_000)]));

    // Assess
    expect(await repo.exists(b.desc)).toBe(true);
    expect((await readStream(await repo.fetch(b.desc))).equals(b.content)).toBe(true);
    expect(
      (await readStream(await repo.fetchRange(b.desc, 1000, 1999))).equals(b.content.subarray(1000, 2000)),
    ).toBe(true);
  });

  it('pushes a blob in chunks', async () => {
    const chunked = new RegistryClient(host, { credentials: anonymous, chunkSize: 64 * 1024 });
    try {
      const repo = chunked.repository(`it-${run}/chunked`);
      const b = blob(randomBytes(200_000)); // three full chunks and a short one
      await repo.push(b.desc, Readable.from([b.content]));
      expect((await readStream(await repo.fetch(b.desc))).equals(b.content)).toBe(true);
    } finally {
      await chunked.close();
    }
  });

  it('streams a blob far larger than any buffer in the path', async () => {
    // Prepare: 256 MiB generated on the fly, hashed as it is generated
    const size = 256 * 1024 * 1024;
    const piece = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    for (let i = 0; i < size / piece.length; i++) hash.update(piece);
    const desc = { mediaType: MediaType.OciLayer, digest: `sha256:${hash.digest('hex')}`, size };
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < size / piece.length; i++) yield piece;
      })(),
    );
    const repo = client.repository(`it-${run}/big`);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);

    // Act
    try {
      await repo.push(desc, source);
      let fetched = 0;
      for await (const c of await repo.fetch(desc)) fetched += (c as Buffer).length;
      expect(fetched).toBe(size);
    } finally {
      clearInterval(sampler);
    }

    // Assess: growth stays far below the blob (GC lag and socket buffers, not the content)
    expect(peak - before).toBeLessThan(size / 2);
  });

  it('refuses a blob whose content does not match its digest, and stores nothing under it', async () => {
    // Prepare
    const repo = client.repository(`it-${run}/wrong`);
    const claimed = blob(randomBytes(1000)).desc;

    // Act
    const err = await repo.push(claimed, Readable.from([randomBytes(1000)])).catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as Error).message).toContain(claimed.digest);
    expect(await repo.exists(claimed)).toBe(false);
  });

  it('pushes an image, resolves it by tag and digest, and returns the exact manifest bytes', async () => {
    // Prepare
    const repo = client.repository(`it-${run}/app`);
    const image = await pushImage(repo);

    // Act
    await repo.tag(image.desc, '1.0');
    const byTag = await repo.resolve('1.0');
    const byDigest = await repo.resolve(image.desc.digest);
    const fetched = await repo.fetchManifest('1.0');

    // Assess
    expect(byTag).toEqual(image.desc);
    expect(byDigest).toEqual(image.desc);
    expect(fetched.descriptor).toEqual(image.desc);
    expect(fetched.bytes.equals(image.bytes)).toBe(true);
    expect(await repo.exists(image.desc)).toBe(true);
    expect((await readStream(await repo.fetch(image.desc))).equals(image.bytes)).toBe(true);
  });

  it('serves skopeo the byte-identical manifest', async () => {
    // Prepare
    const repo = client.repository(`it-${run}/skopeo`);
    const image = await pushImage(repo);
    await repo.pushManifest('v1', image.bytes, image.desc.mediaType);

    // Act
    const raw = execFileSync('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${host}/it-${run}/skopeo:v1`,
    ]);

    // Assess
    expect(raw.equals(image.bytes)).toBe(true);
  });

  it('pushes and reads a Docker schema 2 manifest', async () => {
    const repo = client.repository(`it-${run}/docker`);
    const config = blob(
      Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'),
      MediaType.DockerConfig,
    );
    await repo.push(config.desc, Readable.from([config.content]));
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.DockerManifest,
        config: config.desc,
        layers: [],
      }),
    );
    await repo.pushManifest('d1', bytes, MediaType.DockerManifest);
    const got = await repo.fetchManifest('d1');
    expect(got.descriptor).toEqual({
      mediaType: MediaType.DockerManifest,
      digest: sha256(bytes),
      size: bytes.length,
    });
    expect(got.bytes.equals(bytes)).toBe(true);
  });

  it('reports a missing manifest with the spec error code', async () => {
    const err = (await client
      .repository(`it-${run}/app`)
      .fetchManifest('nope')
      .catch((e: unknown) => e)) as RegistryError;
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code()).toBe('MANIFEST_UNKNOWN');
    expect(err.message).toBe(
      `GET http://${host}/v2/it-${run}/app/manifests/nope: 404 MANIFEST_UNKNOWN: manifest unknown`,
    );
  });

  it('mounts a blob from another repository (201), and says false for one it does not have', async () => {
    // Prepare
    const src = client.repository(`it-${run}/mount-src`);
    const dst = client.repository(`it-${run}/mount-dst`);
    const b = blob(randomBytes(5000));
    await src.push(b.desc, Readable.from([b.content]));

    // Act
    const mounted = await dst.mount(b.desc, src.name);
    const missing = await dst.mount(blob(randomBytes(10)).desc, src.name);

    // Assess
    expect(mounted).toBe(true);
    expect(await dst.exists(b.desc)).toBe(true);
    expect(missing).toBe(false);
  });

  it('lists every tag with a small page size', async () => {
    // Prepare
    const paged = new RegistryClient(host, { credentials: anonymous, pageSize: 2 });
    try {
      const repo = paged.repository(`it-${run}/tags`);
      const image = await pushImage(repo);
      const tags = ['a', 'b', 'c', 'd', 'e'];
      for (const t of tags) await repo.tag(image.desc, t);

      // Act
      const listed = await collect(repo.tags());

      // Assess (distribution 2.8.2 ignores `n` on tags/list and answers in one page; the Link chain itself is
      // exercised by the catalog test below and the unit tests)
      expect(listed.sort()).toEqual(tags);
    } finally {
      await paged.close();
    }
  });

  it('keeps the referrers fallback tag when pushing an artifact with a subject', async () => {
    // Prepare
    const repo = client.repository(`it-${run}/referrers`);
    const subject = await pushImage(repo);
    const empty = blob(Buffer.from('{}'), MediaType.OciEmpty);

    // Act
    const sbom = await pushImage(repo, {
      artifactType: 'application/vnd.example.sbom.v1+json',
      subject: subject.desc,
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    await repo.push(empty.desc, Readable.from([empty.content]));
    const sigBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { ...empty.desc, mediaType: 'application/vnd.example.signature.config.v1+json' },
        layers: [empty.desc],
        subject: subject.desc,
      }),
    );
    const sig = { mediaType: MediaType.OciManifest, digest: sha256(sigBytes), size: sigBytes.length };
    await repo.push(sig, Readable.from([sigBytes]));

    // Assess: distribution 2.8.2 has no referrers API, so both come from the fallback tag
    const tag = referrersTag(subject.desc.digest);
    const index = await repo.fetchManifest(tag);
    expect(index.descriptor.mediaType).toBe(MediaType.OciIndex);
    const expected = [
      {
        ...sbom.desc,
        artifactType: 'application/vnd.example.sbom.v1+json',
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
      },
      { ...sig, artifactType: 'application/vnd.example.signature.config.v1+json' },
    ];
    expect(JSON.parse(index.bytes.toString()).manifests).toEqual(expected);
    expect(await repo.referrers(subject.desc)).toEqual(expected);
    expect(await repo.referrers(sbom.desc)).toEqual([]);
    // The fallback is said, once for the client: a registry without the API must not hide it.
    expect(warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${host.replace(/[.]/g, '\\.')} has no referrers API \\(GET /v2/it-${run}/referrers/referrers/sha256:[0-9a-f]{64} answers 404\\)`,
        ),
      ),
    ]);
  });

  it('lists the catalog of a fresh registry', async () => {
    // Prepare
    const fresh = new RegistryClient(startRegistry(`catalog-${run}`), {
      credentials: anonymous,
      pageSize: 1,
    });
    try {
      for (const name of ['one', 'two/sub', 'three']) {
        const b = blob(Buffer.from(name));
        await fresh.repository(name).push(b.desc, Readable.from([b.content]));
      }

      // Act
      const repos = await collect(fresh.catalog());

      // Assess: one repository per page, so two Link hops
      expect(repos.sort()).toEqual(['one', 'three', 'two/sub']);
      const firstPage = await fetch(`http://${fresh.registry}/v2/_catalog?n=1`);
      expect(await firstPage.json()).toEqual({ repositories: ['one'] });
      expect(firstPage.headers.get('link')).toMatch(/rel="next"/);
    } finally {
      await fresh.close();
    }
  });
});
