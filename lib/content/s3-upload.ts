import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

/*
 * A stream to one S3 object in parts, through a few part buffers reused for the whole stream. lib-storage's Upload
 * does the same with a new buffer per part (Buffer.concat of the chunks read): each lives as long as its part's
 * request, so V8 promotes it and only a full collection frees it, which V8 starts when about 64 MiB of such memory
 * has piled up. A 1×128 MiB snapshot peaked at ~190 MiB RSS with ~97 MiB of array buffers, 40 of them live. Here a
 * chunk read is copied into a part buffer at once and dies young; the part buffers are the only large allocations.
 */

/**
 * Whole part buffers shared by every upload of one store: a snapshot copies several blobs at once, and with buffers
 * per upload its memory grew with that number (16 × 32 MiB layers, four at a time: ~300 MiB peak RSS). At most `max`
 * exist; an upload that needs one when none is free waits, first come first served, for a part to be answered.
 */
export class PartBuffers {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buffer: Buffer) => void)[] = [];
  private made = 0;

  constructor(
    readonly partSize: number,
    readonly max: number,
  ) {
    if (!Number.isSafeInteger(max) || max < 1)
      throw new Error(`PartBuffers: max must be at least 1, got ${max}`);
  }

  take(): Promise<Buffer> {
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    if (this.made < this.max) {
      this.made++;
      return Promise.resolve(Buffer.allocUnsafe(this.partSize));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }

  /**
   * A buffer whose request failed is not reused (a request given up on may still hold it): another is made in its
   * place, for the next upload that waits.
   */
  discard(): void {
    const next = this.waiting.shift();
    if (next) next(Buffer.allocUnsafe(this.partSize));
    else this.made--;
  }
}

export interface StreamUploadOptions {
  /** Bytes per part (the last may be shorter); a body of at most this many bytes is one PutObject. */
  readonly partSize: number;
  /** Parts uploaded at once. */
  readonly queueSize: number;
  /**
   * Where whole part buffers come from, shared with other uploads (its part size must be `partSize`). @default
   * buffers of this upload alone: partSize × (queueSize + 1), the parts in flight and the one being filled
   */
  readonly buffers?: PartBuffers;
  /** The body's expected size, when known: a smaller body needs a smaller buffer. Never trusted as its size. */
  readonly size?: number;
}

/** S3 failed the upload (not the body): which multipart upload, when one had started, was aborted. */
export class StreamUploadError extends Error {
  constructor(
    readonly uploadId: string | undefined,
    options: { cause: unknown },
  ) {
    super(`upload failed${uploadId ? ` (multipart upload ${uploadId})` : ''}`, options);
    this.name = 'StreamUploadError';
  }
}

/**
 * Uploads `body` to `Bucket/Key`. The object appears only when the body has ended without error (PutObject or
 * CompleteMultipartUpload after its last byte); on any failure the multipart upload is aborted once the parts in
 * flight have settled. A body error is rethrown as it is; an S3 error as StreamUploadError, with the body destroyed
 * (it is a registry connection: release it).
 */
export async function uploadStream(
  client: S3Client,
  target: { readonly Bucket: string; readonly Key: string },
  body: Readable,
  options: StreamUploadOptions,
): Promise<void> {
  const { partSize, queueSize, size } = options;
  const pool =
    options.buffers?.partSize === partSize ? options.buffers : new PartBuffers(partSize, queueSize + 1);
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let s3Failure: { error: unknown } | undefined;
  let uploadId: string | undefined;
  // The first buffer is as small as the body claims to be: most blobs (configs, small layers) are far below a part,
  // and such a buffer is the upload's own. A whole one comes from the pool when the first byte arrives.
  let buffer: Buffer | undefined =
    size !== undefined && size < partSize ? Buffer.allocUnsafe(size) : undefined;
  // Only the pool's buffers are whole parts: the upload's own is smaller.
  const pooled = (b: Buffer | undefined): b is Buffer => b?.length === partSize;
  let filled = 0;
  let partNumber = 0;

  const s3 = async <T>(send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      s3Failure ??= { error };
      throw error;
    }
  };

  const startUpload = async (): Promise<string> => {
    // As lib-storage: where the client sends checksums by default (AWS), the upload declares CRC32 and each part
    // carries its own, which Complete repeats.
    const checksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const out = await s3(() =>
      client.send(
        new CreateMultipartUploadCommand({
          ...target,
          ...(checksums ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
        }),
      ),
    );
    if (!out.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
    return out.UploadId;
  };

  /** Sends the filled buffer as the next part, at most queueSize at once, and takes a free buffer to fill. */
  const sendPart = async (): Promise<void> => {
    uploadId ??= await startUpload();
    while (inFlight.size >= queueSize) await Promise.race(inFlight);
    if (s3Failure) throw s3Failure.error;
    const data = buffer!;
    const PartNumber = ++partNumber;
    const id = uploadId;
    const Body = data.subarray(0, filled);
    const tracked = s3(async () => {
      const out = await client.send(new UploadPartCommand({ ...target, UploadId: id, PartNumber, Body }));
      if (!out.ETag) throw new Error(`part ${PartNumber} was answered without an ETag`);
      parts.push({
        PartNumber,
        ETag: out.ETag,
        ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
      });
    })
      .then(
        () => pool.give(data),
        // Recorded in s3Failure, which the reader checks; the promise only says the part is no longer in flight.
        () => pool.discard(),
      )
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    // Only the next byte needs a buffer: a body that ends here waits for none.
    buffer = undefined;
    filled = 0;
  };

  /** A whole buffer to fill, holding what the upload's own smaller one held. */
  const wholeBuffer = async (): Promise<void> => {
    const whole = await pool.take();
    if (buffer) buffer.copy(whole, 0, 0, filled);
    buffer = whole;
  };

  try {
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let offset = 0; offset < bytes.length;) {
        // A full buffer becomes a part only when more bytes come: a body of exactly one part stays one PutObject.
        if (pooled(buffer) && filled === buffer.length) await sendPart();
        // No buffer yet, or the body is longer than it claimed: every part but the last must be a whole one (S3's
        // 5 MiB floor).
        if (!buffer || filled === buffer.length) await wholeBuffer();
        const n = bytes.copy(buffer!, filled, offset);
        filled += n;
        offset += n;
      }
      if (s3Failure) throw s3Failure.error;
    }
    if (uploadId === undefined) {
      const Body = buffer ? buffer.subarray(0, filled) : Buffer.alloc(0);
      await s3(() => client.send(new PutObjectCommand({ ...target, Body, ContentLength: filled })));
      if (pooled(buffer)) pool.give(buffer);
      buffer = undefined;
      return;
    }
    if (filled > 0) await sendPart();
    await Promise.all(inFlight);
    if (s3Failure) throw s3Failure.error;
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const id = uploadId;
    await s3(() =>
      client.send(
        new CompleteMultipartUploadCommand({ ...target, UploadId: id, MultipartUpload: { Parts: parts } }),
      ),
    );
  } catch (e) {
    // The buffer being filled goes back unused (no request holds it); a failed PutObject's is given up.
    if (pooled(buffer)) {
      if (s3Failure && uploadId === undefined) pool.discard();
      else pool.give(buffer);
    }
    buffer = undefined;
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) {
      const id = uploadId;
      // A failed abort leaves parts that the vault's leftovers sweep (and the bucket's lifecycle rule) remove.
      await client.send(new AbortMultipartUploadCommand({ ...target, UploadId: id })).catch(() => undefined);
    }
    if (!s3Failure) throw e;
    body.destroy();
    throw new StreamUploadError(uploadId, { cause: s3Failure.error });
  }
}
