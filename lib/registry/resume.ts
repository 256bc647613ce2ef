import { Readable, finished } from 'node:stream';
import { discard } from './body';
import { RegistryError } from './errors';
import { isRetryableBodyError, type RetryPolicy } from './retry';

/** A response body and the offset in the content of its first byte (0 for a 200, the Content-Range start for a 206). */
export interface BodyPart {
  body: Readable;
  start: number;
  url: URL;
}

/** Asks the registry again for the content from `offset` on (a Range request, or the whole content). */
export type Reopen = (offset: number) => Promise<BodyPart>;

/** What a resumed body went through, for tests and progress: one entry per failure it survived. */
export interface Resumption {
  /** Bytes passed on before the failure. */
  offset: number;
  /** Why the body broke off. */
  reason: string;
  /** Where the next part started: `offset` when the registry honoured the Range, 0 when it sent everything again. */
  restartedAt?: number;
}

/**
 * One continuous stream of a content's `size` bytes, made of as many response bodies as it takes. When a body breaks
 * off — a reset, a premature close, a body shorter than the content, a stall past the idle timeout — the rest is asked
 * for again with `reopen(bytesPassedOn)` after the retry policy's backoff, and the stream goes on where it stopped. A
 * part that starts before that point (a registry that ignored the Range and sent everything) has its first bytes
 * dropped, so nothing is passed on twice. The consumer sees the bytes of the content in order, exactly once, and
 * verifies them as one stream: the digest covers the prefix from before the failure and the tail after it alike.
 *
 * Bounded: `retry.maxAttempts` bodies in all (the reopening requests have the transport's own retries). Errors that
 * say nothing about the connection (a 404 on reopening, a parser error) fail at once.
 */
export class ResumingBody extends Readable {
  readonly resumptions: Resumption[] = [];
  private body?: Readable;
  private passed = 0;
  /** Bytes of the current part to drop: they were already passed on from an earlier part. */
  private skip = 0;
  private bodies = 1;
  private url: URL;
  private readonly abort = new AbortController();

  constructor(
    first: BodyPart,
    private readonly size: number,
    private readonly reopen: Reopen,
    private readonly retry: RetryPolicy,
  ) {
    // The same buffer as a response body of undici: the resume adds no copy of its own.
    super({ highWaterMark: 64 * 1024 });
    this.url = first.url;
    this.attach(first);
  }

  /** Bytes passed on so far. */
  get bytes(): number {
    return this.passed;
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.abort.abort();
    const body = this.body;
    this.body = undefined;
    if (body) discard(body);
    callback(error);
  }

  private attach(part: BodyPart): void {
    const { body } = part;
    this.body = body;
    this.url = part.url;
    this.skip = this.passed - part.start;
    body.on('data', (chunk: Buffer) => this.onData(body, chunk));
    finished(body, (err) => this.onFinished(body, err ?? undefined));
  }

  private onData(body: Readable, chunk: Buffer): void {
    if (body !== this.body) return;
    if (this.skip > 0) {
      if (chunk.length <= this.skip) {
        this.skip -= chunk.length;
        return;
      }
      chunk = chunk.subarray(this.skip);
      this.skip = 0;
    }
    this.passed += chunk.length;
    if (!this.push(chunk)) body.pause();
  }

  private onFinished(body: Readable, err: Error | undefined): void {
    if (body !== this.body || this.destroyed) return;
    // More bytes than the descriptor says is not a broken body: the consumer's verification fails it.
    if (!err && this.passed >= this.size) {
      this.body = undefined;
      this.push(null);
      return;
    }
    const reason = err
      ? err.message || (err as { code?: string }).code || 'error'
      : `body ended after ${this.passed} of ${this.size} bytes`;
    if (err && !isRetryableBodyError(err)) {
      this.fail(err, reason);
      return;
    }
    if (this.bodies >= this.retry.maxAttempts) {
      this.fail(err, `${reason} (${this.bodies} attempts, ${this.passed} of ${this.size} bytes received)`);
      return;
    }
    this.body = undefined;
    discard(body);
    const resumption: Resumption = { offset: this.passed, reason };
    this.resumptions.push(resumption);
    void this.continueFrom(resumption);
  }

  private async continueFrom(resumption: Resumption): Promise<void> {
    try {
      await this.retry.wait(this.bodies, undefined, this.abort.signal);
      this.bodies++;
      const part = await this.reopen(this.passed);
      if (this.destroyed) {
        discard(part.body);
        return;
      }
      resumption.restartedAt = part.start;
      // It flows at once; the first push into a full buffer pauses it until _read asks for more.
      this.attach(part);
    } catch (e) {
      if (!this.destroyed) this.destroy(e instanceof RegistryError ? e : this.error(e, (e as Error).message));
    }
  }

  private fail(cause: Error | undefined, reason: string): void {
    const body = this.body;
    this.body = undefined;
    if (body) discard(body);
    this.destroy(this.error(cause, reason));
  }

  private error(cause: unknown, reason: string): RegistryError {
    return new RegistryError({ method: 'GET', url: this.url, detail: `response body: ${reason}`, cause });
  }
}

/** `Content-Range: bytes <first>-<last>/<size or *>` (RFC 9110 §14.4); undefined when it is anything else. */
export function parseContentRange(
  value: string | undefined,
): { first: number; last: number; size?: number } | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (last < first) return undefined;
  return { first, last, ...(m[3] === '*' ? {} : { size: Number(m[3]) }) };
}
