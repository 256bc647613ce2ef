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

export interface StreamUploadOptions {
  /** Bytes per part (the last may be shorter); a body of at most this many bytes is one PutObject. */
  readonly partSize: number;
  /** Parts uploaded at once. Memory: partSize × (queueSize + 1), the parts in flight and the one being filled. */
  readonly queueSize: number;
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
  const free: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let s3Failure: { error: unknown } | undefined;
  let uploadId: string | undefined;
  // The first buffer is as small as the body claims to be: most blobs (configs, small layers) are far below a part.
  let buffer: Buffer = Buffer.allocUnsafe(size !== undefined && size < partSize ? size : partSize);
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
    const data = buffer;
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
      free.push(data);
    })
      // Recorded in s3Failure, which the reader checks; the promise only says the part is no longer in flight.
      .catch(() => undefined)
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    buffer = free.pop() ?? Buffer.allocUnsafe(partSize);
    filled = 0;
  };

  try {
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let offset = 0; offset < bytes.length;) {
        // A full buffer becomes a part only when more bytes come: a body of exactly one part stays one PutObject.
        if (filled === buffer.length) {
          if (buffer.length < partSize) {
            // The body is longer than it claimed: every part but the last must be a whole one (S3's 5 MiB floor).
            const whole = Buffer.allocUnsafe(partSize);
            buffer.copy(whole, 0, 0, filled);
            buffer = whole;
          } else await sendPart();
        }
        const n = bytes.copy(buffer, filled, offset);
        filled += n;
        offset += n;
      }
      if (s3Failure) throw s3Failure.error;
    }
    if (uploadId === undefined) {
      await s3(() =>
        client.send(
          new PutObjectCommand({ ...target, Body: buffer.subarray(0, filled), ContentLength: filled }),
        ),
      );
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
