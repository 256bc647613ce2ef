import type { Readable } from 'node:stream';
import { Digest, MAX_MANIFEST_BYTES, MediaType, isManifest, verifyBytes, type Descriptor } from '../oci';
import { BLOBS_PREFIX, INDEX_FILE, LAYOUT_FILE } from './keys';
import type { ObjectStore } from './objectstore';
import type { Storage } from './storage';
import { readAll, verified } from './verify';

export { INDEX_FILE, LAYOUT_FILE };
export const REF_NAME = 'org.opencontainers.image.ref.name';

export function blobKey(digest: string): string {
  const d = Digest.parse(digest);
  return `${BLOBS_PREFIX}${d.algorithm}/${d.hex}`;
}

/**
 * An OCI image layout on an ObjectStore: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`. Content in, verified;
 * content out, verified — a blob that rotted on disk fails its reader, naming the digest, instead of being
 * handed on.
 */
export class OciLayout implements Storage {
  constructor(readonly store: ObjectStore) {}

  get url(): string {
    return this.store.url;
  }

  /** Writes the layout marker and an empty index if they are missing. */
  async init(): Promise<void> {
    if (!(await this.store.head(LAYOUT_FILE))) {
      await this.store.putBytes(LAYOUT_FILE, Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    }
    if (!(await this.store.head(INDEX_FILE))) await this.writeIndex([]);
  }

  /** Present with the right size. A truncated blob does not count, so a later copy repairs it. */
  async exists(desc: Descriptor): Promise<boolean> {
    const info = await this.store.head(blobKey(desc.digest));
    return info !== undefined && info.size === desc.size;
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    return verified(
      await this.store.get(blobKey(desc.digest)),
      desc,
      `${this.url}: blob ${desc.digest} is corrupt: `,
    );
  }

  /** A manifest's exact bytes, verified against its descriptor. */
  async fetchBytes(desc: Descriptor): Promise<Buffer> {
    return readAll(await this.fetch(desc), MAX_MANIFEST_BYTES, `manifest ${desc.digest}`);
  }

  async push(desc: Descriptor, content: Readable): Promise<void> {
    await this.pushAndRead(desc, content);
  }

  /** Like push; for manifests also returns the verified bytes, so callers can parse without reading again. */
  async pushAndRead(desc: Descriptor, content: Readable): Promise<Buffer | undefined> {
    const context = `${this.url}: refusing ${desc.digest}: `;
    if (!isManifest(desc.mediaType)) {
      await this.store.putStream(blobKey(desc.digest), verified(content, desc, context), desc.size);
      return undefined;
    }
    const bytes = await readAll(content, MAX_MANIFEST_BYTES, `manifest ${desc.digest}`);
    verifyBytes(bytes, desc.digest, desc.size, context);
    await this.store.putBytes(blobKey(desc.digest), bytes, { contentType: desc.mediaType });
    return bytes;
  }

  async writeIndex(manifests: Descriptor[]): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    await this.store.putBytes(INDEX_FILE, Buffer.from(JSON.stringify(index, null, 2) + '\n'), {
      contentType: MediaType.OciIndex,
    });
  }

  /** Every blob in the layout: digest and stored size (for verification sweeps). */
  async *blobs(): AsyncIterable<{ digest: string; size: number }> {
    for (const alg of ['sha256', 'sha512']) {
      for await (const obj of this.store.list(`${BLOBS_PREFIX}${alg}/`)) {
        const digest = `${alg}:${obj.key.slice(`${BLOBS_PREFIX}${alg}/`.length)}`;
        if (Digest.isValid(digest)) yield { digest, size: obj.size };
      }
    }
  }
}
