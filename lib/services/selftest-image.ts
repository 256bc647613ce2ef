import { Readable } from 'node:stream';
import type { ReadOnlyStorage } from '../content';
import { Digest, MediaType, type Descriptor } from '../oci';

/** The label on the self-test image's config saying which run made it (and that it may be deleted). */
export const SELFTEST_LABEL = 'io.imagevault.selftest';

/**
 * A tiny, real OCI image held in memory: one uncompressed tar layer with one small file, a config naming it in
 * `rootfs.diff_ids`, and a manifest. A ReadOnlyStorage, so the copy engine pushes it like any other source. The run
 * id goes into the config, so every run's manifest has a digest of its own: a wait for "this run's snapshot" or
 * "this run's replica" can never be satisfied by an earlier run's objects.
 */
export class SelfTestImage implements ReadOnlyStorage {
  readonly root: Descriptor;
  private readonly blobs = new Map<string, Buffer>();

  constructor(runId: string, created: Date) {
    const layer = tar('imagevault-selftest.txt', `imagevault self-test ${runId}: safe to delete\n`);
    const layerDesc = this.add(MediaType.OciLayer, layer);
    const config = this.add(
      MediaType.OciConfig,
      json({
        created: created.toISOString(),
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { [SELFTEST_LABEL]: runId } },
        rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
      }),
    );
    this.root = this.add(
      MediaType.OciManifest,
      json({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config,
        layers: [layerDesc],
        annotations: { 'org.opencontainers.image.description': 'imagevault self-test image: safe to delete' },
      }),
    );
  }

  /** The manifest's exact bytes. */
  manifestBytes(): Buffer {
    return this.blobs.get(this.root.digest)!;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc.digest);
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw new Error(`the self-test image has no ${desc.digest}`);
    return Readable.from([bytes]);
  }

  private add(mediaType: string, bytes: Buffer): Descriptor {
    const digest = Digest.of(bytes).toString();
    this.blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A POSIX ustar archive of one regular file: a 512-byte header, the content padded to 512, two zero blocks. */
export function tar(name: string, content: string): Buffer {
  const body = Buffer.from(content, 'utf8');
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    header.write(value.slice(0, length), offset, length, 'ascii');
  const octal = (n: number, digits: number) => `${n.toString(8).padStart(digits, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 7));
  field(108, 8, octal(0, 7));
  field(116, 8, octal(0, 7));
  field(124, 12, octal(body.length, 11));
  field(136, 12, octal(0, 11));
  field(148, 8, ' '.repeat(8));
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const b of header) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024)]);
}
