import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { blobKey, Forgets, forgetOf, type Leftover, type Vault } from '../content';
import { Digest, Digester, isManifest, parseManifest, successors, type Descriptor } from '../oci';

export interface VerifyProblem {
  digest: string;
  /** The image (repository@digest) whose graph needs this content, when known. */
  image?: string;
  reason: string;
}

export interface VerifyReport {
  store: string;
  repository?: string;
  images: number;
  blobs: { checked: number; bytes: number };
  missing: VerifyProblem[];
  corrupt: VerifyProblem[];
  /**
   * What interrupted writes left behind, older than the store's grace period: temporary files, unfinished multipart
   * uploads. Not corruption (nothing reads them), but space; removed with `repair`.
   */
  leftovers: Leftover[];
  /** True when the leftovers were removed. */
  repaired: boolean;
  seconds: number;
}

export interface VerifyOptions {
  readonly repository?: string;
  /** Blobs hashed at once. @default 2 */
  readonly concurrency?: number;
  readonly onBlob?: (digest: string, size: number) => void;
  /** Remove the leftovers it finds. @default false */
  readonly repair?: boolean;
}

/**
 * Re-hashes what the vault holds and walks every recorded image's graph (with referrers), reporting content that
 * is missing and content that no longer hashes to its name. With a repository, only what its images need.
 */
export async function verifyVault(vault: Vault, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = Date.now();
  const repositories = options.repository ? [options.repository] : await vault.repositories();
  const expected = new Map<string, { desc: Descriptor; image: string }>();
  const missing: VerifyProblem[] = [];
  const corrupt: VerifyProblem[] = [];
  const walked = new Set<string>();
  let images = 0;

  const walk = async (desc: Descriptor, image: string): Promise<void> => {
    if (walked.has(desc.digest)) return;
    walked.add(desc.digest);
    expected.set(desc.digest, { desc, image });
    if (!(await vault.layout.store.head(blobKey(desc.digest)))) {
      missing.push({ digest: desc.digest, image, reason: `${desc.mediaType} is not in the vault` });
      return;
    }
    if (!isManifest(desc.mediaType)) return;
    let bytes: Buffer;
    try {
      bytes = await vault.fetchManifest(desc);
    } catch {
      return; // reported as corrupt by the hashing pass below
    }
    const node = parseManifest(bytes, desc.mediaType);
    for (const child of successors(node)) await walk(child, image);
    for (const r of await vault.referrers(desc)) await walk(r, image);
  };

  // A forgotten image's content is gc's to delete: it is not missing when gone.
  const forgets = await new Forgets(vault.store).newest();
  for (const repository of repositories) {
    for (const record of await vault.images(repository)) {
      if (forgetOf(record, forgets)) continue;
      images++;
      await walk(record.descriptor, `${repository}@${record.descriptor.digest}`);
    }
  }

  // Hash: everything in the layout (whole-vault verify), or what the repository's images need.
  const toHash: { digest: string; size: number; expectedSize?: number; image?: string }[] = [];
  if (options.repository) {
    for (const { desc, image } of expected.values()) {
      const info = await vault.layout.store.head(blobKey(desc.digest));
      if (info) toHash.push({ digest: desc.digest, size: info.size, expectedSize: desc.size, image });
    }
  } else {
    for await (const b of vault.layout.blobs()) {
      const e = expected.get(b.digest);
      toHash.push({ ...b, expectedSize: e?.desc.size, image: e?.image });
    }
  }
  let checked = 0;
  let bytes = 0;
  const queue = [...toHash];
  const worker = async () => {
    for (let b = queue.shift(); b; b = queue.shift()) {
      const problem = await hashBlob(vault, b.digest, b.expectedSize);
      if (problem) corrupt.push({ digest: b.digest, image: b.image, reason: problem });
      checked++;
      bytes += b.size;
      options.onBlob?.(b.digest, b.size);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  corrupt.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  const repair = options.repair ?? false;
  const leftovers = await vault.leftovers({ remove: repair });
  return {
    store: vault.url,
    repository: options.repository,
    images,
    blobs: { checked, bytes },
    missing,
    corrupt,
    leftovers,
    repaired: repair && leftovers.length > 0,
    seconds: (Date.now() - started) / 1000,
  };
}

async function hashBlob(vault: Vault, digest: string, expectedSize?: number): Promise<string | undefined> {
  const want = Digest.parse(digest);
  const h = new Digester(want.algorithm);
  await pipeline(
    await vault.layout.store.get(blobKey(digest)),
    new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _enc, done) {
        h.update(chunk);
        done();
      },
    }),
  );
  const got = h.digest();
  if (!got.equals(want)) return `content hashes to ${got.toString()}`;
  if (expectedSize !== undefined && h.bytes !== expectedSize)
    return `size is ${h.bytes}, the manifest says ${expectedSize}`;
  return undefined;
}
