import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { Descriptor } from '../oci';
import type { Vault } from './vault';

/*
 * A tar of vault content, written as a stream: small files from memory, blobs straight from the vault, never a whole
 * layer in memory. The Docker archive export (lib/services/docker-archive.ts) decides what goes in it.
 */

/** A file of the tar: bytes at hand, or a blob read from the vault. */
export type TarEntry = { name: string; data: Buffer } | { name: string; blob: Descriptor };

/**
 * Fixed entry times make the archive a function of the image alone: exporting the same image twice gives the same
 * bytes. Loaders ignore them (layer contents carry their own times).
 */
const EPOCH = new Date(0);

/**
 * Streams the entries into a tar at `tmp` (created, never overwritten). Whichever side fails first — reading a blob
 * (not found, digest mismatch) or writing the file (disk full, no such directory) — aborts the other, so neither is
 * left waiting and the caller can remove the temp file. The first failure is the one reported: the other side's
 * error is only its consequence ("pack stream destroyed", an AbortError).
 */
export async function writeTar(vault: Pick<Vault, 'fetch'>, tmp: string, entries: TarEntry[]): Promise<void> {
  const pack = tar.pack();
  // A destroyed pack also emits its error as an event; the pipeline below already reports it, so only listen.
  pack.on('error', () => undefined);
  const abort = new AbortController();
  abort.signal.addEventListener('abort', () => pack.destroy(abort.signal.reason as Error), { once: true });
  const sink = pipeline(
    Readable.from(pack),
    createWriteStream(tmp, { flags: 'wx', highWaterMark: 1024 * 1024 }),
    {
      signal: abort.signal,
    },
  );
  const source = (async () => {
    for (const dir of directoriesOf(entries))
      await addEntry(pack, { name: dir, type: 'directory' }, undefined, abort);
    for (const e of entries) {
      const body = 'data' in e ? Readable.from([e.data]) : await vault.fetch(e.blob);
      await addEntry(pack, { name: e.name, size: 'data' in e ? e.data.length : e.blob.size }, body, abort);
    }
    pack.finalize();
  })();
  // abort() keeps the first reason it is given.
  source.catch((e: unknown) => abort.abort(e));
  sink.catch((e: unknown) => abort.abort(e));
  await Promise.allSettled([source, sink]);
  if (abort.signal.aborted) throw abort.signal.reason;
}

/** The directory entries `docker save` writes before the files in them (`blobs/`, `blobs/sha256/`). */
function directoriesOf(entries: TarEntry[]): string[] {
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
  }
  return [...dirs].sort();
}

/**
 * Adds one entry and pumps `body` into it with backpressure: a write waits for the tar to drain, which waits for the
 * file, so at most a few buffers of a layer are in memory at once. Resolves when tar-stream has taken the entry.
 */
async function addEntry(
  pack: tar.Pack,
  header: { name: string; size?: number; type?: 'directory' },
  body: Readable | undefined,
  abort: AbortController,
): Promise<void> {
  let settle!: (err?: Error | null) => void;
  const taken = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
  // A failure while we are still pumping is reported by the pump: the callback's rejection and the entry's error
  // event (streamx emits one on destroy) are duplicates, and must not surface as unhandled.
  taken.catch(() => undefined);
  const mode = header.type === 'directory' ? 0o755 : 0o644;
  const entry = pack.entry({ ...header, mode, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' }, (err) =>
    settle(err),
  );
  entry.on('error', () => undefined);
  if (body) {
    addAbortSignal(abort.signal, body);
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (!entry.write(chunk)) await once(entry, 'drain', { signal: abort.signal });
      }
    } catch (e) {
      // Abort first, so that this error, not the broken pipe it causes on the file side, is the one reported.
      abort.abort(e);
      entry.destroy(e as Error);
      throw e;
    }
    entry.end(undefined); // streamx's typings demand an argument; undefined means "no last chunk"
  }
  await taken;
}
