import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { Digester, type Algorithm } from '../oci';
import { RegistryError } from './errors';

/** The error for a response body over a readAll limit. */
export function responseTooLarge(method: string, url: string | URL): (limit: number) => RegistryError {
  return (limit) =>
    new RegistryError({ method, url, detail: `response body is over the ${limit}-byte limit` });
}

/** Error bodies are short JSON; reading more would only let a misbehaving server fill our memory. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/** The first `limit` bytes as text; the rest is discarded so the connection can be reused or closed. */
export async function readPrefix(body: Readable, limit = ERROR_BODY_LIMIT): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(b.subarray(0, limit - size));
      size += Math.min(b.length, limit - size);
      if (size >= limit) break;
    }
  } catch {
    // a broken error body must not hide the status that came with it
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Discards a body we do not need (a retried or redirected response) without reading it to the end. */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Passes bytes through unchanged while hashing and counting them, so an upload learns what it actually sent
 * without a second read: the registry judges the digest, this names the one it got.
 */
export class DigestingStream extends Transform {
  private readonly digester: Digester | undefined;
  private count = 0;

  /** Without an algorithm it only counts: for content already verified upstream against the same digest. */
  constructor(algorithm: Algorithm | undefined) {
    super();
    this.digester = algorithm && new Digester(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester?.update(chunk);
    this.count += chunk.length;
    callback(null, chunk);
  }

  get bytes(): number {
    return this.count;
  }

  get hashing(): boolean {
    return this.digester !== undefined;
  }

  /** Call once, after the stream has ended, and only when hashing. */
  digest(): string {
    if (!this.digester) throw new Error('DigestingStream: not hashing (content verified upstream)');
    return this.digester.digest().toString();
  }
}

/**
 * Regroups a stream into buffers of exactly `size` bytes (the last may be shorter), holding at most one chunk
 * plus one incoming read in memory.
 */
export async function* fixedChunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const chunk of stream) {
    let b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    while (pendingSize + b.length >= size) {
      const take = size - pendingSize;
      pending.push(b.subarray(0, take));
      yield Buffer.concat(pending, size);
      b = b.subarray(take);
      pending = [];
      pendingSize = 0;
    }
    if (b.length > 0) {
      pending.push(b);
      pendingSize += b.length;
    }
  }
  if (pendingSize > 0) yield Buffer.concat(pending, pendingSize);
}
