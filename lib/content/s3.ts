import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { notS3, parseStoreUrl } from './store-url';
import { endpointOverride, s3ClientConfig, withUnsignedPayload } from './s3-client';
import { PartBuffers, StreamUploadError, uploadStream } from './s3-upload';
import type { Timeouts } from './timeouts';
import {
  WriteConflictError,
  ObjectExistsError,
  type DeleteResult,
  type Deleter,
  type Leftover,
  type LeftoverSweeper,
  ObjectNotFoundError,
  type ObjectInfo,
  type ObjectStore,
  type ObjectVersion,
  type PutBytesOptions,
  type PutResult,
  type ReplicationStatus,
} from './objectstore';

/** S3's smallest allowed part (except the last one). */
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest number of parts in one multipart upload. */
const MAX_PARTS = 10_000;

export { s3ClientConfig } from './s3-client';

export interface S3ObjectStoreOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` (they are stripped). @default '' (bucket root) */
  readonly prefix?: string;
  /** @default S3Client from the standard chain, see {@link s3ClientConfig} */
  readonly client?: S3Client;
  /**
   * The request and idle timeouts of the client made here (not of a `client` passed in): IMAGEVAULT_TIMEOUT and
   * IMAGEVAULT_IDLE_TIMEOUT, as the registry clients read them. @default see {@link s3ClientConfig}
   */
  readonly timeouts?: Timeouts;
  /**
   * Multipart part size in bytes, at least 5 MiB (S3's minimum). Bodies up to this size go in one PutObject.
   * The store's part memory is about partSize × partBuffers, however many putStreams run at once.
   * @default 8 MiB — with the default partBuffers about 24 MiB of buffers, so memory stays flat from a 64 MiB layer
   * to a 1 GiB one (measured by `npm run bench`); raised automatically when a known size would need > 10,000 parts
   * (such an upload then has buffers of its own)
   */
  readonly partSize?: number;
  /**
   * Parts uploaded concurrently per putStream.
   * @default 3 — the body is one registry download, which three parts in flight keep up with: a 1×128 MiB snapshot
   * to the test bed's radosgw took the same time as with 4 (wall ratio 0.99, medians of 8) at 8 MiB less peak RSS
   */
  readonly queueSize?: number;
  /**
   * Whole part buffers shared by all the store's uploads at once (several blobs are copied at once): the store's part
   * memory is about partSize × partBuffers however many there are. An upload that needs one waits for a part to be
   * answered. At least 1.
   * @default queueSize — less part memory than one upload had on its own (queueSize + 1, the parts in flight and the
   * one being filled). Shared buffers took a snapshot of 16 × 32 MiB layers to the test bed's radosgw, four blobs at
   * once, from a peak RSS of 250 MiB to 168 at the same speed (wall ratio 0.98, medians of 5); one buffer fewer took it
   * to 156 from 163 (wall 1.03, medians of 6), at a cost of 1.03× the time for a single 1 GiB layer, whose upload
   * then fills its next part while two are in flight, not three
   */
  readonly partBuffers?: number;
  /**
   * How putBytes with `ifNoneMatch` refuses an existing key. `atomic`: PutObject with If-None-Match alone, which
   * AWS S3 answers atomically with 412 on versioned buckets too (one request). `check-first`: a HEAD before that
   * PutObject, for S3 APIs that ignore If-None-Match on versioned buckets (radosgw writes a new version), with the
   * small race window such a backend leaves.
   * @default `atomic` against AWS S3; `check-first` when the client has an endpoint of its own or the environment
   * overrides the endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL): the store cannot tell which S3 API is behind it
   */
  readonly conditionalWrites?: 'atomic' | 'check-first';
  /** Keys per ListObjectsV2 page. Only tests need a smaller one. @default 1000 (S3's maximum) */
  readonly pageSize?: number;
  /**
   * putBytes answered 409 ConditionalRequestConflict (another write to the same key was in progress): AWS says to
   * retry the request. Each wait is random up to `baseDelayMs × 2^(attempt-1)` (full jitter, so racing writers
   * spread out), at most `maxDelayMs`; after `attempts` conflicts in a row putBytes throws WriteConflictError.
   * @default { attempts: 6, baseDelayMs: 50, maxDelayMs: 2000 } — at most ~3.5 s of waiting, far above the
   * milliseconds a conflicting small write takes, far below a Lambda's timeout
   */
  readonly conflictRetry?: {
    readonly attempts?: number;
    readonly baseDelayMs?: number;
    readonly maxDelayMs?: number;
  };
}

/** Any S3 failure other than the ones the ObjectStore contract maps (missing key, existing key). */
export class S3ObjectStoreError extends Error {
  constructor(
    readonly operation: string,
    readonly bucket: string,
    readonly key: string,
    options: { cause: unknown },
  ) {
    super(`${operation} s3://${bucket}/${key} failed: ${explain(options.cause)}`, options);
    this.name = 'S3ObjectStoreError';
  }
}

/** Part size and parts in flight of putStream when the options leave them out, chosen by `npm run bench:s3`. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_QUEUE_SIZE = 3;

/**
 * The ObjectStore over an S3 bucket/prefix (AWS S3, or any S3 API such as radosgw, MinIO).
 *
 * Writes never leave partial objects: putStream (./s3-upload) makes the object visible only with
 * PutObject/CompleteMultipartUpload after the body has ended, and aborts the multipart upload when the body errors.
 */
export class S3ObjectStore implements ObjectStore, LeftoverSweeper, Deleter {
  readonly url: string;
  /** An upload's age counts from its start, and a large layer on a slow link can take hours: a day, as the CDK rule. */
  readonly leftoverGraceMs = 24 * 60 * 60 * 1000;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly buffers: PartBuffers;
  private readonly pageSize: number;
  private readonly conflictRetry: { attempts: number; baseDelayMs: number; maxDelayMs: number };
  private readonly checkBeforeConditionalPut: boolean;

  constructor(opts: S3ObjectStoreOptions) {
    const problems: string[] = [];
    if (!opts.bucket || opts.bucket.includes('/'))
      problems.push(`bucket must be a bucket name, got "${opts.bucket}"`);
    const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
      problems.push(
        `partSize must be an integer of at least ${MIN_PART_SIZE} bytes (S3's minimum), got ${partSize}`,
      );
    }
    const queueSize = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isSafeInteger(queueSize) || queueSize < 1) {
      problems.push(`queueSize must be a positive integer, got ${queueSize}`);
    }
    const partBuffers = opts.partBuffers ?? queueSize;
    if (!Number.isSafeInteger(partBuffers) || partBuffers < 1) {
      problems.push(`partBuffers must be a positive integer, got ${partBuffers}`);
    }
    const pageSize = opts.pageSize ?? 1000;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      problems.push(`pageSize must be an integer from 1 to 1000, got ${pageSize}`);
    }
    const conflictRetry = {
      attempts: opts.conflictRetry?.attempts ?? 6,
      baseDelayMs: opts.conflictRetry?.baseDelayMs ?? 50,
      maxDelayMs: opts.conflictRetry?.maxDelayMs ?? 2000,
    };
    if (!Number.isSafeInteger(conflictRetry.attempts) || conflictRetry.attempts < 1) {
      problems.push(`conflictRetry.attempts must be a positive integer, got ${conflictRetry.attempts}`);
    }
    for (const k of ['baseDelayMs', 'maxDelayMs'] as const) {
      if (!(Number.isFinite(conflictRetry[k]) && conflictRetry[k] >= 0))
        problems.push(`conflictRetry.${k} must be a number of at least 0, got ${conflictRetry[k]}`);
    }
    if (problems.length > 0) throw new Error(`S3ObjectStore: ${problems.join('; ')}`);

    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.client =
      opts.client ?? withUnsignedPayload(new S3Client(s3ClientConfig(process.env, opts.timeouts)));
    this.partSize = partSize;
    this.queueSize = queueSize;
    this.buffers = new PartBuffers(partSize, partBuffers);
    this.pageSize = pageSize;
    this.conflictRetry = conflictRetry;
    this.checkBeforeConditionalPut =
      (opts.conditionalWrites ??
        (this.client.config.isCustomEndpoint || endpointOverride(process.env) ? 'check-first' : 'atomic')) ===
      'check-first';
    this.url = this.prefix ? `s3://${this.bucket}/${this.prefix}` : `s3://${this.bucket}`;
  }

  /** `s3://bucket` or `s3://bucket/prefix`; without a client, one from the standard chain ({@link s3ClientConfig}). */
  static fromUrl(url: string, client?: S3Client, timeouts?: Timeouts): S3ObjectStore {
    const location = parseStoreUrl(url);
    if (location.kind !== 's3') throw notS3(url);
    return new S3ObjectStore({ bucket: location.bucket, prefix: location.prefix, client, timeouts });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.key(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      const replication = replicationOf(out.ReplicationStatus);
      const mode = out.ObjectLockMode;
      return {
        key,
        size: out.ContentLength ?? 0,
        // An unversioned bucket answers the version id "null".
        ...(out.VersionId && out.VersionId !== 'null' ? { versionId: out.VersionId } : {}),
        ...(replication ? { replication } : {}),
        ...((mode === 'GOVERNANCE' || mode === 'COMPLIANCE') && out.ObjectLockRetainUntilDate
          ? { retention: { mode, until: new Date(out.ObjectLockRetainUntilDate) } }
          : {}),
      };
    } catch (e) {
      // HEAD responses have no body, so a missing bucket is also just "NotFound"; the next write or list names it.
      if (isNotFound(e)) return undefined;
      throw new S3ObjectStoreError('HeadObject', this.bucket, Key, { cause: e });
    }
  }

  async get(key: string): Promise<Readable> {
    const Key = this.key(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      // In Node the SDK's body is an http.IncomingMessage: a Readable that streams without buffering the object.
      return out.Body as Readable;
    } catch (e) {
      if (errorName(e) === 'NoSuchKey') throw new ObjectNotFoundError(key, this.url);
      throw new S3ObjectStoreError('GetObject', this.bucket, Key, { cause: e });
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const Key = this.key(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      if (!out.Body) throw new Error('response has no body');
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (e) {
      if (errorName(e) === 'NoSuchKey') return undefined;
      throw new S3ObjectStoreError('GetObject', this.bucket, Key, { cause: e });
    }
  }

  async putStream(key: string, body: Readable, size?: number): Promise<void> {
    const Key = this.key(key);
    // A known size only plans the parts; the body is never trusted to match it (callers verify digest and size).
    const partSize =
      size === undefined ? this.partSize : Math.max(this.partSize, Math.ceil(size / MAX_PARTS));
    try {
      await uploadStream(this.client, { Bucket: this.bucket, Key }, body, {
        partSize,
        queueSize: this.queueSize,
        // A part size raised for a huge object is not the pool's: such an upload keeps buffers of its own.
        buffers: this.buffers,
        size,
      });
    } catch (e) {
      // The body's own error (a digest mismatch, a broken source) is the caller's: passed through unchanged.
      if (!(e instanceof StreamUploadError)) throw e;
      const operation = e.uploadId ? `multipart upload ${e.uploadId} to` : 'upload to';
      throw new S3ObjectStoreError(operation, this.bucket, Key, { cause: e.cause });
    }
  }

  async putBytes(key: string, data: Uint8Array, options: PutBytesOptions = {}): Promise<PutResult> {
    const { attempts, baseDelayMs, maxDelayMs } = this.conflictRetry;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.putBytesOnce(key, data, options);
      } catch (e) {
        if (!(e instanceof S3ObjectStoreError) || !isConflict(e.cause)) throw e;
        if (attempt >= attempts) throw new WriteConflictError(key, this.url, attempt, { cause: e });
        await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
      }
    }
  }

  /** One attempt: the existence check (check-first only), then the (conditional) PutObject. A retry repeats both. */
  private async putBytesOnce(key: string, data: Uint8Array, options: PutBytesOptions): Promise<PutResult> {
    const Key = this.key(key);
    // radosgw (and other S3 implementations) ignore If-None-Match on versioned buckets and write a new version, and
    // the vault's history buckets are versioned. Checking first makes the refusal hold there too (with a small race
    // window only such backends have); on AWS S3 If-None-Match alone refuses, atomically, and the HEAD is not sent.
    if (options.ifNoneMatch && this.checkBeforeConditionalPut && (await this.head(key)))
      throw new ObjectExistsError(key, this.url);
    const lock = options.retention;
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: data,
          ContentLength: data.byteLength,
          ContentType: options.contentType,
          IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
          // S3 refuses Object Lock parameters without an integrity header; MD5 is the one every S3 API accepts.
          ...(lock
            ? {
                ObjectLockMode: lock.mode,
                ObjectLockRetainUntilDate: lock.until,
                ContentMD5: createHash('md5').update(data).digest('base64'),
              }
            : {}),
        }),
      );
      return out.VersionId && out.VersionId !== 'null' ? { versionId: out.VersionId } : {};
    } catch (e) {
      if (options.ifNoneMatch && (errorName(e) === 'PreconditionFailed' || httpStatus(e) === 412)) {
        throw new ObjectExistsError(key, this.url);
      }
      throw new S3ObjectStoreError('PutObject', this.bucket, Key, { cause: e });
    }
  }

  /**
   * DeleteObject without a version id: on a versioned bucket a delete marker, the bytes kept as a noncurrent version
   * (lifecycle expires them later); an Object-Locked version is kept until its retention ends, which S3 allows and
   * this reports. Never a governance bypass.
   */
  async delete(key: string): Promise<DeleteResult> {
    const Key = this.key(key);
    const before = await this.head(key);
    try {
      const out = await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
      const versioned =
        out.DeleteMarker === true || (out.VersionId !== undefined && out.VersionId !== 'null');
      return { versioned, ...(before?.retention ? { retention: before.retention } : {}) };
    } catch (e) {
      if (isNotFound(e)) return { versioned: false };
      throw new S3ObjectStoreError('DeleteObject', this.bucket, Key, { cause: e });
    }
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<ObjectInfo> {
    const startAfter = options.startAfter === undefined ? undefined : this.key(options.startAfter);
    for await (const page of this.pages(prefix, undefined, startAfter)) {
      for (const obj of page.Contents ?? []) {
        // A key equal to the prefix (a "folder" placeholder some consoles create) is not a store key.
        const key = obj.Key === undefined ? '' : this.relative(obj.Key);
        if (key !== '')
          yield { key, size: obj.Size ?? 0, ...(obj.LastModified ? { lastModified: obj.LastModified } : {}) };
      }
    }
  }

  async listDirs(prefix: string): Promise<string[]> {
    const dirs: string[] = [];
    const full = this.fullPrefix(prefix);
    for await (const page of this.pages(prefix, '/')) {
      for (const p of page.CommonPrefixes ?? []) {
        const dir = (p.Prefix ?? '').slice(full.length).replace(/\/$/, '');
        if (dir !== '') dirs.push(dir);
      }
    }
    return dirs;
  }

  async *listVersions(prefix: string): AsyncIterable<ObjectVersion> {
    const Prefix = this.fullPrefix(prefix);
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectVersionsCommand({
            Bucket: this.bucket,
            Prefix,
            MaxKeys: this.pageSize,
            KeyMarker,
            VersionIdMarker,
          }),
        );
      } catch (e) {
        throw new S3ObjectStoreError('ListObjectVersions', this.bucket, Prefix, { cause: e });
      }
      // S3 returns versions and delete markers in two lists; merged back into key order, newest first per key.
      const merged: ObjectVersion[] = [];
      for (const v of page.Versions ?? [])
        merged.push(this.versionOf(v.Key, v.VersionId, v.IsLatest, false, v.LastModified));
      for (const m of page.DeleteMarkers ?? [])
        merged.push(this.versionOf(m.Key, m.VersionId, m.IsLatest, true, m.LastModified));
      // Keys in S3's byte order; within a key the latest first, then newest first (stable: S3's own order on ties).
      const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      merged.sort(
        (a, b) =>
          byteOrder(a.key, b.key) ||
          Number(b.isLatest) - Number(a.isLatest) ||
          (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0),
      );
      for (const v of merged) if (v.key !== '') yield v;
      const more = page.IsTruncated === true;
      KeyMarker = more ? page.NextKeyMarker : undefined;
      VersionIdMarker = more ? page.NextVersionIdMarker : undefined;
    } while (KeyMarker);
  }

  private versionOf(
    key: string | undefined,
    versionId: string | undefined,
    isLatest: boolean | undefined,
    deleteMarker: boolean,
    lastModified: Date | undefined,
  ): ObjectVersion {
    return {
      key: key === undefined ? '' : this.relative(key),
      versionId: versionId ?? 'null',
      isLatest: isLatest === true,
      deleteMarker,
      ...(lastModified ? { lastModified } : {}),
    };
  }

  private async *pages(prefix: string, delimiter?: string, startAfter?: string) {
    const Prefix = this.fullPrefix(prefix);
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix,
            Delimiter: delimiter,
            MaxKeys: this.pageSize,
            ContinuationToken,
            // Ignored by S3 once a continuation token is given; harmless to repeat.
            ...(startAfter !== undefined ? { StartAfter: startAfter } : {}),
          }),
        );
      } catch (e) {
        throw new S3ObjectStoreError('ListObjectsV2', this.bucket, Prefix, { cause: e });
      }
      yield page;
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** The bucket key of a store key: under the prefix with exactly one `/`. */
  /**
   * Multipart uploads started before `olderThan` and never completed or aborted, under the vault's prefix (and
   * `prefix` within it): what a killed snapshot leaves on a bucket, billed as storage until aborted. The vault's
   * own bucket (CDK) aborts them after a day by lifecycle rule; a bucket without one keeps them forever.
   */
  async leftovers(options: { olderThan: Date; remove: boolean; prefix?: string }): Promise<Leftover[]> {
    const Prefix = [this.prefix, (options.prefix ?? '').replace(/^\/+/, '')].filter(Boolean).join('/');
    const found: Leftover[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.client
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix, KeyMarker, UploadIdMarker }))
        .catch((e: unknown) => {
          throw new S3ObjectStoreError('ListMultipartUploads', this.bucket, Prefix, { cause: e });
        });
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= options.olderThan) continue;
        found.push({ key: this.unprefixed(u.Key), since: u.Initiated });
        if (options.remove) {
          await this.client
            .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))
            .catch((e: unknown) => {
              throw new S3ObjectStoreError('AbortMultipartUpload', this.bucket, u.Key!, { cause: e });
            });
        }
      }
      ({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page);
      if (!page.IsTruncated) break;
    } while (KeyMarker !== undefined);
    return found;
  }

  private unprefixed(key: string): string {
    return this.prefix && key.startsWith(`${this.prefix}/`) ? key.slice(this.prefix.length + 1) : key;
  }

  private key(key: string): string {
    const k = key.replace(/^\/+/, '');
    if (k === '') throw new Error(`${this.url}: empty object key`);
    return this.prefix ? `${this.prefix}/${k}` : k;
  }

  /**
   * The bucket prefix for a store-relative listing prefix. The store prefix always ends with `/` here so that
   * `s3://b/vault` never lists `vault-old/...`.
   */
  private fullPrefix(prefix: string): string {
    const p = prefix.replace(/^\/+/, '');
    return this.prefix ? `${this.prefix}/${p}` : p;
  }

  private relative(bucketKey: string): string {
    return this.prefix ? bucketKey.slice(this.prefix.length + 1) : bucketKey;
  }
}

/** S3's `x-amz-replication-status` (COMPLETE on a source object in the API docs, COMPLETED in practice). */
function replicationOf(status: string | undefined): ReplicationStatus | undefined {
  switch (status) {
    case 'PENDING':
      return 'pending';
    case 'COMPLETE':
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
      return 'failed';
    case 'REPLICA':
      return 'replica';
    default:
      return undefined;
  }
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/**
 * S3's answer when a conditional write raced another write (or a delete) of the same key: 409
 * ConditionalRequestConflict. The request did nothing; AWS documents retrying it. The SDK's own retries do not
 * cover it (a 409 is not a transient error to them).
 */
function isConflict(e: unknown): boolean {
  return errorName(e) === 'ConditionalRequestConflict' || httpStatus(e) === 409;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isNotFound(e: unknown): boolean {
  return errorName(e) === 'NotFound' || errorName(e) === 'NoSuchKey' || httpStatus(e) === 404;
}

function explain(e: unknown): string {
  const status = httpStatus(e);
  const name = errorName(e);
  // The SDK wraps a socket error as "AWS SDK error wrapper for Error: connect ECONNREFUSED …": the socket error is the news.
  const message = (e instanceof Error ? e.message : String(e)).replace(
    /^AWS SDK error wrapper for (\w*Error: )?/,
    '',
  );
  return [status && `HTTP ${status}`, name && name !== 'Error' && name !== message && name, message]
    .filter(Boolean)
    .join(' ');
}
