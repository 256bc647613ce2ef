import type { Readable } from 'node:stream';
import { blobKey, ObjectNotFoundError, readAll, type Vault } from '../content';
import { parseManifest, verifyBytes, type Descriptor, type Reference } from '../oci';

/*
 * Where drift reads images from: the vault first, registries second, each read verified against its digest and
 * bounded in size. Base detection, build drift and the upstream diff all read through ImageSource, so that the
 * vault answers first and tests can count what reaches a registry.
 */

/**
 * Configs and provenance statements are read into memory whole. Statements carry every material of a build; 16 MiB
 * is far above any seen, and bounds memory: a 100 MB config once took half a gigabyte.
 */
export const MAX_BLOB_BYTES = 16 * 1024 * 1024;

const tooLargeToRead = (what: string) => (limit: number) =>
  new Error(`${what} is larger than the ${limit / 1048576} MiB that base detection reads into memory`);

/** The reads base detection makes: resolve a tag, fetch a manifest by digest, fetch a blob (config, statement). */
export interface ImageSource {
  /** What `ref` (tag or digest) points at. */
  resolve(ref: Reference): Promise<Descriptor>;
  /** A manifest's bytes, verified against `digest`, from `ref`'s repository. */
  manifest(ref: Reference, digest: string): Promise<Buffer>;
  /** A blob's bytes (an image config, an in-toto statement), verified against `desc`. */
  blob(ref: Reference, desc: Descriptor): Promise<Buffer>;
}

/** The registry calls the RegistrySource makes; `Registries` (lib/services) is one. */
export interface RepositoryOpener {
  get(registry: string): {
    repository(name: string): {
      resolve(reference: string): Promise<Descriptor>;
      fetchManifest(reference: string): Promise<{ descriptor: Descriptor; bytes: Buffer }>;
      fetch(desc: Descriptor): Promise<Readable>;
    };
  };
}

/** Reads from registries, one repository per reference. */
export class RegistrySource implements ImageSource {
  constructor(private readonly registries: RepositoryOpener) {}

  resolve(ref: Reference): Promise<Descriptor> {
    return this.repo(ref).resolve(ref.reference ?? 'latest');
  }

  async manifest(ref: Reference, digest: string): Promise<Buffer> {
    // The client verifies bytes fetched by digest.
    return (await this.repo(ref).fetchManifest(digest)).bytes;
  }

  async blob(ref: Reference, desc: Descriptor): Promise<Buffer> {
    const what = `${ref.name}: blob ${desc.digest}`;
    if (desc.size > MAX_BLOB_BYTES) throw tooLargeToRead(what)(MAX_BLOB_BYTES);
    const bytes = await readAll(await this.repo(ref).fetch(desc), MAX_BLOB_BYTES, tooLargeToRead(what));
    verifyBytes(bytes, desc.digest, desc.size, `${ref.name}: blob ${desc.digest}: `);
    return bytes;
  }

  private repo(ref: Reference) {
    return this.registries.get(ref.registry).repository(ref.repository);
  }
}

/**
 * The vault first (content is addressed by digest, so whatever repository it was snapshotted from it is the same
 * bytes), then `fallback` for what the vault does not hold and for every tag (a tag is a live question).
 */
export class VaultFirstSource implements ImageSource {
  constructor(
    private readonly vault: Vault,
    private readonly fallback?: ImageSource,
  ) {}

  async resolve(ref: Reference): Promise<Descriptor> {
    if (ref.digest) {
      const bytes = await this.held(ref.digest);
      if (bytes) return { mediaType: parseManifest(bytes).mediaType, digest: ref.digest, size: bytes.length };
    }
    return this.next(ref).resolve(ref);
  }

  async manifest(ref: Reference, digest: string): Promise<Buffer> {
    return (await this.held(digest)) ?? this.next(ref).manifest(ref, digest);
  }

  async blob(ref: Reference, desc: Descriptor): Promise<Buffer> {
    return (await this.held(desc.digest)) ?? this.next(ref).blob(ref, desc);
  }

  private async held(digest: string): Promise<Buffer | undefined> {
    let content: Readable;
    try {
      content = await this.vault.store.get(blobKey(digest));
    } catch (e) {
      if (e instanceof ObjectNotFoundError) return undefined;
      throw e;
    }
    // Streamed with a bound: a huge blob fails at the limit instead of filling memory.
    const what = `${this.vault.url}: blob ${digest}`;
    const bytes = await readAll(content, MAX_BLOB_BYTES, tooLargeToRead(what));
    verifyBytes(bytes, digest, undefined, `${what}: `);
    return bytes;
  }

  private next(ref: Reference): ImageSource {
    if (!this.fallback)
      throw new Error(`${ref.toString()} is not in ${this.vault.url} and no registry was given`);
    return this.fallback;
  }
}

/** Remembers every answer for the length of one detection: a candidate base is resolved once, not per platform. */
export function memoSource(source: ImageSource): ImageSource {
  const cache = new Map<string, Promise<unknown>>();
  const memo = <T>(key: string, f: () => Promise<T>): Promise<T> => {
    let p = cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = f();
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };
  return {
    resolve: (ref) => memo(`r ${ref.toString()}`, () => source.resolve(ref)),
    manifest: (ref, digest) => memo(`m ${ref.name} ${digest}`, () => source.manifest(ref, digest)),
    blob: (ref, desc) => memo(`b ${ref.name} ${desc.digest}`, () => source.blob(ref, desc)),
  };
}
