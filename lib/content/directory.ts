import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  ObjectExistsError,
  ObjectNotFoundError,
  ObjectStoreIoError,
  UnsupportedOperationError,
  type DeleteResult,
  type Deleter,
  type Leftover,
  type LeftoverSweeper,
  type ObjectInfo,
  type ObjectStore,
  type PutBytesOptions,
  type PutResult,
} from './objectstore';

export interface DirectoryObjectStoreOptions {
  /**
   * Sync each file before its rename and the directory after it. `false` is UNSAFE — after a power loss a blob's
   * name can point at empty or partial content — and no command offers it: it exists so `npm run bench` can measure
   * what durability costs. @default true
   */
  readonly durable?: boolean;
}

/** Temp files start with this, so a listing never shows a half-written object. */
const TEMP_PREFIX = '.tmp-';

/**
 * An ObjectStore in a local directory. Every write goes to a temp file in the target's directory and is renamed
 * into place only when complete, so a reader never sees a partial object (rename is atomic on one filesystem).
 *
 * Writes are durable, as git, restic and kopia make theirs: the file is synced before the rename and the directory
 * after it. Without the first sync a power loss can leave the new name pointing at an empty or partial file — a
 * blob under a digest it does not hash to; without the second, the rename itself can be lost.
 *
 * File-system failures come out as ObjectStoreIoError, naming the store and the object.
 */
export class DirectoryObjectStore implements ObjectStore, LeftoverSweeper, Deleter {
  readonly url: string;
  /** A write under way touches its temporary file all the time: one untouched for an hour was abandoned. */
  readonly leftoverGraceMs = 60 * 60 * 1000;
  private readonly durable: boolean;

  constructor(
    readonly root: string,
    options: DirectoryObjectStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.durable = options.durable ?? true;
  }

  private file(key: string): string {
    const p = path.join(this.root, ...key.split('/'));
    if (!p.startsWith(this.root + path.sep)) throw new Error(`${this.url}: key "${key}" escapes the store`);
    return p;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.file(key));
      return st.isFile() ? { key, size: st.size } : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.ioError('reading', key, e);
    }
  }

  async get(key: string): Promise<Readable> {
    const p = this.file(key);
    // Open first so a missing file is a rejected promise here, not an error event later on the stream.
    const handle = await fs.open(p, 'r').catch((e: unknown) => {
      throw isNotFound(e) ? new ObjectNotFoundError(key, this.url) : this.ioError('reading', key, e);
    });
    return handle.createReadStream({ highWaterMark: 1024 * 1024 });
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.file(key));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.ioError('reading', key, e);
    }
  }

  async putStream(key: string, body: Readable): Promise<void> {
    const target = this.file(key);
    const tmp = await this.tempFor(key, target);
    try {
      // flush: the file is synced before it is closed, and so before the rename.
      await pipeline(
        body,
        createWriteStream(tmp, { flags: 'wx', highWaterMark: 1024 * 1024, flush: this.durable }),
      );
      await fs.rename(tmp, target);
      if (this.durable) await syncDirectory(path.dirname(target));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      // A failing body (a digest mismatch, a broken connection) is the caller's news; a failing disk is ours.
      throw isSystemError(e) ? this.ioError('writing', key, e) : e;
    }
  }

  async putBytes(key: string, data: Uint8Array, options: PutBytesOptions = {}): Promise<PutResult> {
    // Read-only file modes would be no lock at all against the owner; refuse rather than pretend.
    if (options.retention)
      throw new UnsupportedOperationError(
        this.url,
        `cannot lock ${key}: a directory has no Object Lock (use an S3 bucket created with Object Lock)`,
      );
    const target = this.file(key);
    const tmp = await this.tempFor(key, target);
    try {
      await fs.writeFile(tmp, data, { flag: 'wx', flush: this.durable });
      if (options.ifNoneMatch) {
        // link() fails if the target exists: a create-only publish with no window for a second writer.
        await fs.link(tmp, target).catch((e: unknown) => {
          throw (e as NodeJS.ErrnoException).code === 'EEXIST' ? new ObjectExistsError(key, this.url) : e;
        });
        await fs.rm(tmp, { force: true });
      } else {
        await fs.rename(tmp, target);
      }
      if (this.durable) await syncDirectory(path.dirname(target));
      return {};
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e instanceof ObjectExistsError ? e : this.ioError('writing', key, e);
    }
  }

  /** Removes the file (a directory keeps no versions: this one is final). */
  async delete(key: string): Promise<DeleteResult> {
    const target = this.file(key);
    try {
      await fs.rm(target, { force: true });
      if (this.durable) await syncDirectory(path.dirname(target)).catch(() => undefined);
    } catch (e) {
      throw this.ioError('deleting', key, e);
    }
    return { versioned: false };
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<ObjectInfo> {
    // Walk only the directory that holds the prefix, in sorted order, so keys come out lexicographically.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const keys = await this.walk(dirKey);
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      if (options.startAfter !== undefined && key <= options.startAfter) continue;
      const st = await fs.stat(this.file(key)).catch(() => undefined);
      if (st?.isFile()) yield { key, size: st.size, lastModified: st.mtime };
    }
  }

  async listDirs(prefix: string): Promise<string[]> {
    const dir = prefix === '' ? this.root : this.file(prefix.replace(/\/$/, ''));
    try {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }

  private async walk(dirKey: string): Promise<string[]> {
    const dir = dirKey === '' ? this.root : this.file(dirKey);
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
    const out: string[] = [];
    for (const e of entries) {
      if (e.name.startsWith(TEMP_PREFIX)) continue;
      const key = dirKey === '' ? e.name : `${dirKey}/${e.name}`;
      if (e.isDirectory()) out.push(...(await this.walk(key)));
      else if (e.isFile()) out.push(key);
    }
    return out;
  }

  /** Temporary files not written to since `olderThan`, under `prefix` (a directory key), removed if asked. */
  async leftovers(options: { olderThan: Date; remove: boolean; prefix?: string }): Promise<Leftover[]> {
    const found: Leftover[] = [];
    const visit = async (dir: string, dirKey: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isNotFound(e)) return;
        throw this.ioError('listing', dirKey, e);
      }
      for (const e of entries) {
        const key = dirKey === '' ? e.name : `${dirKey}/${e.name}`;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await visit(p, key);
        else if (e.isFile() && e.name.startsWith(TEMP_PREFIX)) {
          const st = await fs.stat(p).catch(() => undefined);
          if (!st || st.mtime >= options.olderThan) continue;
          found.push({ key, size: st.size, since: st.mtime });
          if (options.remove) await fs.rm(p, { force: true });
        }
      }
    };
    const start = (options.prefix ?? '').replace(/\/+$/, '');
    await visit(start === '' ? this.root : this.file(start), start);
    return found.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  private async tempFor(key: string, target: string): Promise<string> {
    await fs.mkdir(path.dirname(target), { recursive: true }).catch((e: unknown) => {
      throw this.ioError('writing', key, e);
    });
    return path.join(path.dirname(target), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  }

  private ioError(operation: string, key: string, cause: unknown): ObjectStoreIoError {
    return cause instanceof ObjectStoreIoError
      ? cause
      : new ObjectStoreIoError(this.url, operation, key, cause);
  }
}

/** Makes a rename in `dir` durable. Some file systems cannot sync a directory (EINVAL): nothing more to do there. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync().catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    });
  } finally {
    await handle.close();
  }
}

/** An error from the operating system (it has a string code such as ENOSPC), not from the stream we were given. */
function isSystemError(e: unknown): boolean {
  const err = e as { code?: unknown; syscall?: unknown };
  return typeof err?.code === 'string' && typeof err.syscall === 'string';
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}
