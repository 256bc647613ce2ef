import { pipeline, type Readable } from 'node:stream';
import { verifiedDigestOf } from '../content/verify';
import { Digest, DigestMismatchError, type Descriptor } from '../oci';
import { DigestingStream, discard, fixedChunks } from './body';
import type { RepositoryContext } from './context';
import { RegistryError } from './errors';
import { header, type TransportResponse } from './transport';

/*
 * Blob uploads (distribution spec: POST, then one PUT or PATCH chunks and a closing PUT ?digest=). The content is
 * hashed on the way, so that a registry's refusal can name the digest the bytes really have.
 */

/**
 * Uploads a blob: in PATCH chunks of `chunkSize` bytes when given (each retried on its own), else streamed in one
 * PUT. Content that does not match `desc` rejects with DigestMismatchError; the upload is then cancelled.
 */
export async function uploadBlob(
  ctx: RepositoryContext,
  desc: Descriptor,
  content: Readable,
  chunkSize?: number,
): Promise<void> {
  // The source is piped into the hasher, and its error listened for, before the upload is opened: a source that
  // fails while the POST is in flight is then reported as itself, not left as an 'error' event no one hears.
  const digested = digesting(content, desc);
  let location: URL;
  try {
    location = await startUpload(ctx);
  } catch (e) {
    digested.hashed.destroy();
    throw digested.sourceError() ?? e;
  }
  if (chunkSize) await pushChunked(ctx, desc, digested, location, chunkSize);
  else await pushMonolithic(ctx, desc, digested, location);
}

/** The content piped through a hasher, with the source's own error kept apart (see digesting). */
interface Digested {
  hashed: DigestingStream;
  sourceError: () => unknown;
}

/**
 * One streaming PUT with Content-Length, after the POST. The body is hashed on the way so a refusal can name the
 * digest the content really has. Not retried: the stream cannot be replayed (use chunkSize for that).
 */
async function pushMonolithic(
  ctx: RepositoryContext,
  desc: Descriptor,
  { hashed, sourceError }: Digested,
  location: URL,
): Promise<void> {
  const url = withDigest(location, desc.digest);
  try {
    const res = await ctx.transport.send({
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: hashed,
      scopes: ctx.pushScopes,
      expect: [201],
    });
    discard(res.body);
  } catch (e) {
    const finished = hashed.writableFinished;
    hashed.destroy();
    await cancelUpload(ctx, location);
    throw sourceError() ?? uploadError(e, desc, hashed, finished, url);
  }
}

/**
 * PATCH chunks with Content-Range, then PUT ?digest=, after the POST. Each chunk is a Buffer, so the transport may
 * retry it (a chunk the registry took before the connection dropped is then refused with 416, not duplicated).
 */
async function pushChunked(
  ctx: RepositoryContext,
  desc: Descriptor,
  { hashed, sourceError }: Digested,
  opened: URL,
  chunkSize: number,
): Promise<void> {
  let location = opened;
  try {
    let offset = 0;
    for await (const chunk of fixedChunks(hashed, chunkSize)) {
      const res = await ctx.transport.send({
        method: 'PATCH',
        url: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        scopes: ctx.pushScopes,
        expect: [202],
      });
      discard(res.body);
      location = locationOf(res) ?? location;
      offset += chunk.length;
    }
    const actual = hashed.hashing ? hashed.digest() : desc.digest;
    if (actual !== desc.digest || offset !== desc.size) {
      throw new DigestMismatchError(
        desc.digest,
        actual,
        desc.size,
        offset,
        `push ${ctx.registry}/${ctx.name}: `,
      );
    }
    const url = withDigest(location, desc.digest);
    const res = await ctx.transport.send({
      method: 'PUT',
      url,
      scopes: ctx.pushScopes,
      expect: [201],
      headers: { 'content-length': '0' },
    });
    discard(res.body);
  } catch (e) {
    hashed.destroy();
    await cancelUpload(ctx, location);
    throw sourceError() ?? e;
  }
}

async function startUpload(ctx: RepositoryContext): Promise<URL> {
  const res = await ctx.transport.send({
    method: 'POST',
    url: `/v2/${ctx.name}/blobs/uploads/`,
    scopes: ctx.pushScopes,
    expect: [202],
  });
  discard(res.body);
  const location = locationOf(res);
  if (!location)
    throw new RegistryError({
      method: 'POST',
      url: res.url,
      status: res.status,
      detail: 'upload started without a Location',
    });
  return location;
}

/** Best effort: a failed upload times out on the registry anyway, and the original error is what matters. */
export async function cancelUpload(ctx: RepositoryContext, location: URL): Promise<void> {
  try {
    const res = await ctx.transport.send({
      method: 'DELETE',
      url: location,
      scopes: ctx.pushScopes,
      expect: 'any',
    });
    discard(res.body);
  } catch {
    // already reported by the caller's error
  }
}

function locationOf(res: TransportResponse): URL | undefined {
  const location = header(res.headers, 'location');
  return location ? new URL(location, res.url) : undefined;
}

/** Upload locations carry the registry's own state in the query; the digest is added, not substituted. */
function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/**
 * The content piped through a hasher. The source's own error (an upstream verifier's DigestMismatchError, a read
 * failure) is kept apart, because it explains a failed upload better than the broken request it causes.
 */
function digesting(content: Readable, desc: Descriptor): Digested {
  // Content a VerifyingStream already checks against this digest is not hashed a second time: a mismatch fails
  // the source, and that error (kept below) is what the caller sees.
  const upstream = verifiedDigestOf(content) === desc.digest;
  const hashed = new DigestingStream(upstream ? undefined : Digest.parse(desc.digest).algorithm);
  let error: unknown;
  content.once('error', (e) => (error = e));
  pipeline(content, hashed, () => undefined);
  return { hashed, sourceError: () => error };
}

/**
 * What a failed blob PUT means for the Pusher contract: the registry's DIGEST_INVALID (or a body shorter or longer
 * than Content-Length) is content not matching its descriptor, so it becomes DigestMismatchError naming both digests.
 */
function uploadError(
  e: unknown,
  desc: Descriptor,
  hashed: DigestingStream,
  finished: boolean,
  url: URL,
): unknown {
  const wrongDigest =
    e instanceof RegistryError &&
    e.errors.some((x) => x.code === 'DIGEST_INVALID' || x.code === 'SIZE_INVALID');
  const wrongLength = hasCode(e, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
  if (!wrongDigest && !wrongLength) return e;
  if (!hashed.hashing) return e; // verified upstream: the bytes were right, so the registry's refusal stands as is
  // A body longer than Content-Length is cut off before its end, so its digest is unknown.
  const actual = finished ? hashed.digest() : 'unknown (content longer than the descriptor says)';
  if (actual === desc.digest && hashed.bytes === desc.size) return e; // we sent the right bytes: the registry's problem
  return new DigestMismatchError(
    desc.digest,
    actual,
    desc.size,
    hashed.bytes,
    `PUT ${url.origin}${url.pathname}: `,
  );
}

function hasCode(e: unknown, code: string): boolean {
  for (
    let err = e as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    err && depth < 5;
    err = err.cause as typeof err, depth++
  ) {
    if (err.code === code) return true;
  }
  return false;
}
