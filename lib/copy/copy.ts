import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  DigestMismatchError,
  MAX_MANIFEST_BYTES,
  isManifest,
  parseManifest,
  successors,
  verifyBytes,
  type Descriptor,
} from '../oci';
import {
  chain,
  isReferrerLister,
  markVerified,
  PASS_THROUGH_HIGH_WATER_MARK,
  readAll,
  verifiedDigestOf,
  type ReadOnlyStorage,
  type Storage,
} from '../content';

/** Blobs in flight at once. Four keeps a 2-core machine's network and hashing busy without thrashing. */
export const DEFAULT_CONCURRENCY = 4;

export type CopyEvent =
  | { type: 'skip'; descriptor: Descriptor }
  | { type: 'mount'; descriptor: Descriptor }
  | { type: 'start'; descriptor: Descriptor }
  | { type: 'progress'; descriptor: Descriptor; bytes: number }
  | { type: 'done'; descriptor: Descriptor };

export interface CopyOptions {
  /** Blob transfers in flight at once. @default DEFAULT_CONCURRENCY */
  readonly concurrency?: number;
  /** Also copy every manifest's referrers (signatures, SBOMs, attestations), when the source lists them. @default true */
  readonly referrers?: boolean;
  /** Walk and check the destination, but push nothing. @default false */
  readonly dryRun?: boolean;
  /** Called for every transfer event, for progress display. */
  readonly onEvent?: (event: CopyEvent) => void;
  /** Tries to make a blob appear at the destination without transferring it (cross-repository mount). */
  readonly mount?: (desc: Descriptor) => Promise<boolean>;
  /**
   * Stores the root manifest the caller's way instead of by digest, once everything it names is there: a restore
   * puts it under its tag, one request where asking whether it is there and putting it by digest, then under the
   * tag, took three. Resolves whether it stored the manifest (false: it was there already). Not called in a dry run.
   */
  readonly pushRoot?: (desc: Descriptor, bytes: Buffer) => Promise<boolean>;
  /** Names the image in error messages, e.g. `127.0.0.1:5000/app:1.0`. */
  readonly label?: string;
}

export interface CopySummary {
  root: Descriptor;
  manifests: { copied: number; skipped: number };
  blobs: { copied: number; skipped: number; mounted: number };
  bytes: { copied: number; skipped: number };
  referrers: Descriptor[];
  seconds: number;
}

export type CopyOp = 'fetch' | 'push' | 'exists' | 'referrers';

/** A failed step of a copy, saying which side failed and on what content. */
export class CopyError extends Error {
  constructor(
    readonly op: CopyOp,
    readonly origin: 'source' | 'destination',
    readonly descriptor: Descriptor,
    label: string,
    cause: unknown,
  ) {
    super(
      `${label ? `${label}: ` : ''}${op} ${descriptor.digest} (${descriptor.mediaType}) at ${origin}: ${(cause as Error)?.message ?? cause}`,
      {
        cause,
      },
    );
    this.name = 'CopyError';
  }
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Counts bytes as they pass, for progress; the destination verifies them. */
class Counter extends Transform {
  constructor(private readonly onBytes: (n: number) => void) {
    super({ highWaterMark: PASS_THROUGH_HIGH_WATER_MARK });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.onBytes(chunk.length);
    done(null, chunk);
  }
}

/**
 * Which end of a pipe failed first. A source body that breaks off (a reset, a stalled registry) reaches the
 * destination as its own failure — the pipe destroys everything downstream with the source's error — and a
 * destination that fails destroys the source with its error in turn. The first stream to emit 'error' is the one at
 * fault: the source's error is returned only when it came before any downstream one.
 */
function firstFailure(source: Readable, downstream: Readable): () => { error: unknown } | undefined {
  let first: { side: 'source' | 'downstream'; error: unknown } | undefined;
  source.once('error', (error: unknown) => (first ??= { side: 'source', error }));
  downstream.once('error', (error: unknown) => (first ??= { side: 'downstream', error }));
  return () => (first?.side === 'source' ? { error: first.error } : undefined);
}

/**
 * Copies the graph rooted at `root` from `src` to `dst`: children before parents, so a destination never holds a
 * manifest whose content is missing; each blob once, however many manifests share it; blobs the destination
 * already has are skipped. Manifests are always walked (they are small) so that referrers added since the last
 * copy are found and missing children repaired. Tagging is the caller's, after the graph is complete.
 */
export async function copyGraph(
  src: ReadOnlyStorage,
  dst: Storage,
  root: Descriptor,
  options: CopyOptions = {},
): Promise<CopySummary> {
  return new GraphCopy(src, dst, options).run(root);
}

class GraphCopy {
  private readonly nodes = new Map<string, Promise<void>>();
  private readonly referrerWalks: Promise<void>[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly limit: Semaphore;
  private failed: unknown;
  private root?: string;
  private readonly summary: Omit<CopySummary, 'root' | 'seconds'> = {
    manifests: { copied: 0, skipped: 0 },
    blobs: { copied: 0, skipped: 0, mounted: 0 },
    bytes: { copied: 0, skipped: 0 },
    referrers: [],
  };

  constructor(
    private readonly src: ReadOnlyStorage,
    private readonly dst: Storage,
    private readonly options: CopyOptions,
  ) {
    this.limit = new Semaphore(Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY));
  }

  async run(root: Descriptor): Promise<CopySummary> {
    const started = process.hrtime.bigint();
    this.root = root.digest;
    try {
      await this.node(root);
      // Referrer walks are collected, not awaited inside node(): a referrer's subject is its successor, and
      // awaiting inside would wait on itself.
      while (this.referrerWalks.length > 0) await Promise.all(this.referrerWalks.splice(0));
    } catch (e) {
      this.failed ??= e;
      // Let transfers already running settle, so nothing is written after we report failure.
      await Promise.allSettled([...this.inflight]);
      throw this.failed;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { root, ...this.summary, seconds };
  }

  private node(desc: Descriptor): Promise<void> {
    let p = this.nodes.get(desc.digest);
    if (!p) {
      p = this.track(isManifest(desc.mediaType) ? this.manifest(desc) : this.blob(desc));
      this.nodes.set(desc.digest, p);
    }
    return p;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, (e: unknown) => {
      done();
      this.failed ??= e;
    });
    return p;
  }

  private async manifest(desc: Descriptor): Promise<void> {
    this.checkFailed();
    const bytes = await this.step('fetch', 'source', desc, async () => {
      const b = await readAll(await this.src.fetch(desc), MAX_MANIFEST_BYTES, `manifest ${desc.digest}`);
      verifyBytes(b, desc.digest, desc.size);
      return b;
    });
    const node = await this.step('fetch', 'source', desc, async () => parseManifest(bytes, desc.mediaType));
    // Ask for the referrers now, while the children transfer: on a remote registry that is a round trip per manifest
    // taken off the end of the copy. Walking them still waits until this manifest is complete (below).
    const listing = this.listReferrers(desc);
    await Promise.all(successors(node).map((child) => this.node(child)));
    const pushRoot = desc.digest === this.root && !this.options.dryRun ? this.options.pushRoot : undefined;
    const present = pushRoot
      ? !(await this.step('push', 'destination', desc, () => pushRoot(desc, bytes)))
      : await this.step('exists', 'destination', desc, () => this.dst.exists(desc));
    if (present) {
      this.summary.manifests.skipped++;
      this.emit({ type: 'skip', descriptor: desc });
    } else {
      if (!this.options.dryRun && !pushRoot) {
        this.checkFailed();
        await this.step('push', 'destination', desc, () => this.dst.push(desc, Readable.from([bytes])));
      }
      this.summary.manifests.copied++;
      this.summary.bytes.copied += desc.size;
      this.emit({ type: 'done', descriptor: desc });
    }
    if (listing) {
      this.referrerWalks.push(
        this.track(
          (async () => {
            const found = await listing;
            for (const r of found) if (!this.nodes.has(r.digest)) this.summary.referrers.push(r);
            await Promise.all(found.map((r) => this.node(r)));
          })(),
        ),
      );
    }
  }

  private listReferrers(desc: Descriptor): Promise<Descriptor[]> | undefined {
    if (this.options.referrers === false || !isReferrerLister(this.src)) return undefined;
    const lister = this.src;
    const listing = this.step('referrers', 'source', desc, () => lister.referrers(desc));
    // Awaited after the children; if they fail first, the copy reports their failure and this one is dropped.
    listing.catch(() => undefined);
    return listing;
  }

  private async blob(desc: Descriptor): Promise<void> {
    let committing: Promise<void> | undefined;
    await this.limit.run(async () => {
      this.checkFailed();
      // A blob the destination can mount is mounted without asking first whether it is there: a mount of a blob the
      // repository already has succeeds as well, and a bulk restore of images that share layers saves a round trip
      // per shared layer. `mount` makes no request for a blob it knows no home for.
      const mount = this.options.dryRun ? undefined : this.options.mount;
      if (mount && (await this.step('push', 'destination', desc, () => mount(desc)))) {
        this.summary.blobs.mounted++;
        this.emit({ type: 'mount', descriptor: desc });
        return;
      }
      if (await this.step('exists', 'destination', desc, () => this.dst.exists(desc))) {
        this.summary.blobs.skipped++;
        this.summary.bytes.skipped += desc.size;
        this.emit({ type: 'skip', descriptor: desc });
        return;
      }
      if (this.options.dryRun) {
        this.summary.blobs.copied++;
        this.summary.bytes.copied += desc.size;
        return;
      }
      this.emit({ type: 'start', descriptor: desc });
      const stream = await this.step('fetch', 'source', desc, () => this.src.fetch(desc));
      const counted = markVerified(
        chain(stream, new Counter((n) => this.emit({ type: 'progress', descriptor: desc, bytes: n }))),
        verifiedDigestOf(stream),
      );
      const sourceFailure = firstFailure(stream, counted);
      const pushed = this.step('push', 'destination', desc, () => this.dst.push(desc, counted), sourceFailure)
        .then(() => {
          this.summary.blobs.copied++;
          this.summary.bytes.copied += desc.size;
          this.emit({ type: 'done', descriptor: desc });
        })
        .finally(() => {
          // A destination that fails before reading everything leaves the source open (a file handle, a registry
          // connection); destroying our end releases it through the pipe. A no-op after a complete read.
          counted.destroy();
        });
      // A slot is for a transfer: once the destination has read the last byte, what it still does with the blob (a
      // directory syncs the file to disk, S3 completes the upload) goes on without the slot, and the next blob's
      // transfer starts. The blob is copied, and the manifest above it may go, only when the push has finished.
      // 16 x 32 MiB into a directory: each slot sat ~90 ms per blob in the sync of the file.
      const read = new Promise<void>((resolve) => counted.once('end', resolve));
      committing = pushed;
      await Promise.race([pushed, read]);
    });
    await committing;
  }

  /**
   * Runs one step, wrapping its failure in a CopyError. `sourceFailure`, for a push that reads a source stream, says
   * whether that stream failed first: then the failure is the source's read, whatever the destination made of it.
   * A push refused with DigestMismatchError is the source's too: the destination checked the bytes it was given, and
   * they were not what the source's descriptor names (a registry serving wrong bytes, a corrupting proxy).
   */
  private async step<T>(
    op: CopyOp,
    origin: 'source' | 'destination',
    desc: Descriptor,
    fn: () => Promise<T>,
    sourceFailure?: () => { error: unknown } | undefined,
  ): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof CopyError) throw e;
      const source = sourceFailure?.() ?? (sourceFailure && isDigestMismatch(e) ? { error: e } : undefined);
      if (source) throw new CopyError('fetch', 'source', desc, this.options.label ?? '', source.error);
      throw new CopyError(op, origin, desc, this.options.label ?? '', e);
    }
  }

  private checkFailed(): void {
    if (this.failed) throw this.failed;
  }

  private emit(event: CopyEvent): void {
    this.options.onEvent?.(event);
  }
}

/** By name too: an error made in another realm (a jest sandbox, a second copy of the module) fails instanceof. */
function isDigestMismatch(e: unknown): boolean {
  return e instanceof DigestMismatchError || (e as Error | undefined)?.name === 'DigestMismatchError';
}
