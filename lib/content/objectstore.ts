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

export interface ObjectInfo {
  key: string;
  size: number;
}

/**
 * A flat key → bytes store: a directory or an S3 bucket/prefix. Keys are `/`-separated relative paths that the
 * caller has already made safe (digests, validated repository names, tags). The vault, OCI layout and history
 * are written once on top of this, so both backends share one key layout.
 */
export interface ObjectStore {
  /** The store's URL, for messages: `file:///path` or `s3://bucket/prefix`. */
  readonly url: string;

  /** Size of the object at key, or undefined when there is none. */
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
   * backends without conditional writes; the vault's history keys are unique anyway).
   */
  putBytes(
    key: string,
    data: Uint8Array,
    options?: { ifNoneMatch?: boolean; contentType?: string },
  ): Promise<void>;

  /** Every object whose key starts with prefix, in lexicographic key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;

  /** The distinct next path segments under prefix (which ends with `/`): like S3's CommonPrefixes. */
  listDirs(prefix: string): Promise<string[]>;
}
