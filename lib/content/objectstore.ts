import type { Readable } from 'node:stream';

/** Thrown by an ObjectStore when a key that must exist does not. */
export class ObjectNotFoundError extends Error {
  constructor(
    readonly key: string,
    readonly store: string,
  ) {
    super(`${store}: no object at ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}

/** Thrown by putBytes with `ifNoneMatch` when the key is already taken: history is never overwritten. */
export class ObjectExistsError extends Error {
  constructor(
    readonly key: string,
    readonly store: string,
  ) {
    super(`${store}: object ${key} already exists and is never overwritten`);
    this.name = 'ObjectExistsError';
  }
}

/**
 * Thrown by putBytes when the store kept answering that a concurrent write to the same key conflicted (S3's 409
 * ConditionalRequestConflict), after the bounded retries the store makes itself. Whether the other write succeeded
 * is unknown: read the key again before deciding what to write.
 */
export class WriteConflictError extends Error {
  constructor(
    readonly key: string,
    readonly store: string,
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(
      `${store}: writing ${key} conflicted with concurrent writes to the same key ${attempts} times in a row (409 ConditionalRequestConflict); gave up`,
      options,
    );
    this.name = 'WriteConflictError';
  }
}

/**
 * S3 replication of one object version, as S3 reports it (`x-amz-replication-status`): `pending` until the copy in
 * the other region is written, `replica` for the copy itself.
 */
export type ReplicationStatus = 'pending' | 'completed' | 'failed' | 'replica';

/** Object Lock retention of one object version: nobody may delete or overwrite that version before `until`. */
export interface Retention {
  /** GOVERNANCE: principals with s3:BypassGovernanceRetention may still remove it; COMPLIANCE: nobody, not root. */
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  until: Date;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** The current version's id, on a versioned bucket. */
  versionId?: string;
  /** Only from head(): the current version's replication, when the bucket replicates it. */
  replication?: ReplicationStatus;
  /** Only from head(): the current version's Object Lock retention, when it has one. */
  retention?: Retention;
  /** Only from list(): when the current version was written, by the store's clock (S3's LastModified, a file's mtime). */
  lastModified?: Date;
}

/** What a write made: the new version's id, on a versioned bucket. */
export interface PutResult {
  versionId?: string;
}

/** One version of one key, or a delete marker (listVersions). */
export interface ObjectVersion {
  key: string;
  versionId: string;
  /** The key's current version (a delete marker as the latest means the key reads as missing). */
  isLatest: boolean;
  deleteMarker: boolean;
  lastModified?: Date;
}

/**
 * A file or socket failure of a store (ENOSPC, EACCES, EIO…), naming the store and the object: `ENOSPC: no space
 * left on device, write` alone says neither which vault nor which file. `code` is the system's.
 */
export class ObjectStoreIoError extends Error {
  readonly code?: string;

  constructor(
    readonly store: string,
    readonly operation: string,
    readonly key: string,
    cause: unknown,
  ) {
    const c = cause as { message?: string; code?: unknown };
    super(`${store}: ${operation} ${key || '(root)'}: ${c?.message ?? String(cause)}`, { cause });
    this.name = 'ObjectStoreIoError';
    if (typeof c?.code === 'string') this.code = c.code;
  }
}

/** What an interrupted write left behind: a temporary file, or an S3 multipart upload never completed. */
export interface Leftover {
  key: string;
  size?: number;
  /** When it was last written to (a file) or started (an upload). */
  since: Date;
}

/**
 * An optional ability: listing (and removing) what interrupted writes left behind. Only leftovers older than
 * `olderThan` count: a younger one may belong to a write still under way.
 */
export interface LeftoverSweeper {
  /** How old a leftover must be before it is surely abandoned, for this store's kind of leftover. */
  readonly leftoverGraceMs: number;
  leftovers(options: { olderThan: Date; remove: boolean; prefix?: string }): Promise<Leftover[]>;
}

export function canSweepLeftovers(store: ObjectStore): store is ObjectStore & LeftoverSweeper {
  return typeof (store as Partial<LeftoverSweeper>).leftovers === 'function';
}

/** What deleting a key did. */
export interface DeleteResult {
  /**
   * On a versioned bucket: the delete wrote a delete marker and the bytes stay as a noncurrent version until the
   * bucket's lifecycle expires it (undo: delete the marker by its version id).
   */
  versioned: boolean;
  /** The version's Object Lock retention, when it had one: its bytes are kept at least until then. */
  retention?: Retention;
}

/**
 * An optional ability: deleting a key (garbage collection only). Never by version id: on a versioned bucket the delete
 * is a marker, so a mistaken sweep can be undone until lifecycle expires the noncurrent version, and an Object-Locked
 * version is never a failure. Deleting a key that is not there is no error.
 */
export interface Deleter {
  delete(key: string): Promise<DeleteResult>;
}

export function canDelete(store: ObjectStore): store is ObjectStore & Deleter {
  return typeof (store as Partial<Deleter>).delete === 'function';
}

/** Thrown when a write asks for what the store cannot do (Object Lock on a directory). */
export class UnsupportedOperationError extends Error {
  constructor(
    readonly store: string,
    message: string,
  ) {
    super(`${store}: ${message}`);
    this.name = 'UnsupportedOperationError';
  }
}

/**
 * A flat key → bytes store: a directory or an S3 bucket/prefix. Keys are `/`-separated relative paths that the
 * caller has already made safe (digests, validated repository names, tags). The vault, OCI layout and history
 * are written once on top of this, so both backends share one key layout.
 */
export interface ObjectStore {
  /** The store's URL, for messages: `file:///path` or `s3://bucket/prefix`. */
  readonly url: string;

  /** Size (and version, replication, retention where the store has them) of the object at key, or undefined. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Streams the object. Rejects with ObjectNotFoundError when there is none. */
  get(key: string): Promise<Readable>;

  /** The whole object, or undefined when there is none. For small objects (metadata, manifests). */
  getBytes(key: string): Promise<Buffer | undefined>;

  /**
   * Streams `body` to key. The object becomes visible only if `body` ends without error: a body that errors
   * (a digest check failing at its end, a broken connection) leaves no object and no partial upload behind.
   * `size`, when known, lets the backend plan (multipart or not).
   */
  putStream(key: string, body: Readable, size?: number): Promise<void>;

  /**
   * Writes small content. With `ifNoneMatch`, refuses with ObjectExistsError when the key exists (best effort on
   * backends without conditional writes; the vault's history keys are unique anyway). With `retention`, the new
   * version is locked (S3 Object Lock; the bucket must have been created with it) or, on a store that cannot lock,
   * nothing is written and UnsupportedOperationError says why.
   */
  putBytes(key: string, data: Uint8Array, options?: PutBytesOptions): Promise<PutResult>;

  /**
   * Every object whose key starts with prefix, in lexicographic key order; with `startAfter`, only keys after it
   * (S3's StartAfter: a long listing resumed from a known point costs its tail only).
   */
  list(prefix: string, options?: { startAfter?: string }): AsyncIterable<ObjectInfo>;

  /** The distinct next path segments under prefix (which ends with `/`): like S3's CommonPrefixes. */
  listDirs(prefix: string): Promise<string[]>;

  /**
   * Every version and delete marker under prefix, by key, newest first within a key. Only stores that keep
   * versions have it (a versioned S3 bucket): it is how an overwritten or deleted object is seen afterwards.
   */
  listVersions?(prefix: string): AsyncIterable<ObjectVersion>;
}

export interface PutBytesOptions {
  ifNoneMatch?: boolean;
  contentType?: string;
  retention?: Retention;
}

/**
 * Writes `value` as a new JSON record at `key`, never over one already there: the append-only records (holds,
 * forgets, inventory scans) are history. `what` names the record in the error.
 */
export async function putNewRecord(
  store: ObjectStore,
  key: string,
  value: unknown,
  what: string,
): Promise<void> {
  try {
    await store.putBytes(key, Buffer.from(JSON.stringify(value, null, 2) + '\n'), {
      ifNoneMatch: true,
      contentType: 'application/json',
    });
  } catch (e) {
    if (e instanceof ObjectExistsError) throw new Error(`${what} ${key} already exists; not overwritten`);
    throw e;
  }
}
