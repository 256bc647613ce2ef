import { Worker } from 'node:worker_threads';

/*
 * Hashes files on a second thread, following them while they are written.
 *
 * Why: a snapshot into a directory vault used to hash every blob on the main thread as it streamed past, and that
 * thread also parses the registry's responses and feeds the file writes: on a 64 MiB layer, hashing was about a
 * quarter of its CPU while the second core sat mostly idle. Here the writer only says how far the file is written; a
 * worker reads those bytes back (from the page cache) and hashes them, so hashing runs beside the download instead
 * of inside it, and the digest is checked against what is on disk, not what passed through memory.
 *
 * Feeding the worker the chunks themselves was measured and dropped: posting ~1,000 buffers per 64 MiB cost the main
 * thread more than the hashing it saved. Here a write sends one small message (about one per MiB written).
 */

/** A file's digest (`algorithm:hex`) and how many bytes were hashed. */
export interface FileDigest {
  readonly digest: string;
  readonly bytes: number;
}

/** A file being written, hashed as it grows. */
export interface FollowedFile {
  /** The first `bytes` bytes of the file are written (a count that only grows): they can be hashed. */
  written(bytes: number): void;
  /** Nothing more will be written: `result` settles once every written byte is hashed. */
  end(): void;
  /** The write failed: stop, and close the file. `result` rejects. */
  cancel(): void;
  readonly result: Promise<FileDigest>;
}

// Runs in the worker (CommonJS, no bundler): reads with readSync because the thread has nothing else to do.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
const jobs = new Map();
function catchUp(job, upTo) {
  while (job.done < upTo) {
    const n = readSync(job.fd, buffer, 0, Math.min(buffer.length, upTo - job.done), job.done);
    if (n === 0) throw new Error('the file ended after ' + job.done + ' bytes, ' + upTo + ' were written');
    job.hash.update(buffer.subarray(0, n));
    job.done += n;
  }
}
function close(id) {
  const job = jobs.get(id);
  jobs.delete(id);
  if (job) try { closeSync(job.fd); } catch {}
}
parentPort.on('message', (m) => {
  try {
    if (m.type === 'follow' || m.type === 'file') {
      jobs.set(m.id, { fd: openSync(m.path, 'r'), hash: createHash(m.algorithm), algorithm: m.algorithm, done: 0 });
      if (m.type === 'follow') return;
      // A whole file, to its end or one byte past the size it should have (too long is all that needs saying).
      const job = jobs.get(m.id);
      for (;;) {
        const n = readSync(job.fd, buffer, 0, Math.min(buffer.length, m.limit + 1 - job.done), job.done);
        if (n === 0) break;
        job.hash.update(buffer.subarray(0, n));
        job.done += n;
        if (job.done > m.limit) break;
      }
      close(m.id);
      parentPort.postMessage({ id: m.id, digest: job.algorithm + ':' + job.hash.digest('hex'), bytes: job.done });
      return;
    }
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.type === 'written') catchUp(job, m.bytes);
    else if (m.type === 'end') {
      catchUp(job, m.bytes);
      close(m.id);
      parentPort.postMessage({ id: m.id, digest: job.algorithm + ':' + job.hash.digest('hex'), bytes: job.done });
    } else if (m.type === 'cancel') close(m.id);
  } catch (e) {
    close(m.id);
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
`;

interface Pending {
  resolve(d: FileDigest): void;
  reject(e: Error): void;
}

type WorkerReply = { id: number; digest: string; bytes: number } | { id: number; error: string };

/** One worker for the process, started on first use; it keeps the process alive only while a file is followed. */
class FileHasher {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  follow(path: string, algorithm: string): FollowedFile {
    const worker = this.start();
    const id = this.nextId++;
    let written = 0;
    let settled = false;
    const result = new Promise<FileDigest>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
    });
    // A write that fails first cancels and never asks for the digest: its rejection is nobody's news.
    result.catch(() => undefined);
    if (this.pending.size === 1) worker.ref();
    worker.postMessage({ type: 'follow', id, path, algorithm });
    const settle = (type: 'end' | 'cancel') => {
      if (settled) return;
      settled = true;
      worker.postMessage({ type, id, bytes: written });
      if (type === 'cancel') this.done(id, { id, error: 'cancelled' });
    };
    return {
      written: (bytes) => {
        if (settled || bytes <= written) return;
        written = bytes;
        worker.postMessage({ type: 'written', id, bytes });
      },
      end: () => settle('end'),
      cancel: () => settle('cancel'),
      result,
    };
  }

  /** The digest of a whole file as it is now, reading at most `limit` + 1 bytes. */
  file(path: string, algorithm: string, limit: number): Promise<FileDigest> {
    const worker = this.start();
    const id = this.nextId++;
    const result = new Promise<FileDigest>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
    });
    if (this.pending.size === 1) worker.ref();
    worker.postMessage({ type: 'file', id, path, algorithm, limit });
    return result;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (m: WorkerReply) => this.done(m.id, m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the hashing thread exited (${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private done(id: number, reply: WorkerReply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('error' in reply) p.reject(new Error(`hashing ${reply.error}`));
    else p.resolve({ digest: reply.digest, bytes: reply.bytes });
  }

  /** A worker that died fails every file it followed; the next file starts a new one. */
  private fail(e: Error): void {
    this.worker = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(e);
    }
  }
}

/** The process's file hasher. */
export const fileHasher = new FileHasher();
