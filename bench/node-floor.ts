/**
 * The child process of the bench's Node floor: the least any Node program does to snapshot or restore an image, so
 * the bench can show how much of the gap to skopeo is ours and how much is Node's. Bundled by the bench as the CLI is
 * (bench/ceiling.ts), it imports nothing of ours but the bench's own pool:
 *
 *   snapshot REGISTRY REPO BLOBS_JSON OUT_DIR CONCURRENCY
 *   restore  REGISTRY REPO BLOBS_JSON LAYOUT_DIR CONCURRENCY TAG
 *
 * snapshot GETs each blob from the registry (CONCURRENCY at once, as our copy), hashes it as it streams, writes it to
 * a file in OUT_DIR synced before it takes its digest's name, and checks the digest. restore reads each blob's file
 * from the OCI layout, hashes it as it streams and sends it in one monolithic upload (POST, then PUT with the digest),
 * CONCURRENCY at once, then PUTs the manifest under TAG. No ping, no existence checks, no records, no directory sync.
 * The manifest is the blob that has a media type. Prints `{ "seconds": N, "bytes": N }`, seconds being the work alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { pool } from './pool';

interface Blob {
  digest: string;
  size: number;
  mediaType?: string;
}

/** A pass-through that hashes and counts, for the digest check after the stream. */
function hashing(counted: (n: number) => void): Transform & { digest: () => string } {
  const hash = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      counted(chunk.length);
      done(null, chunk);
    },
  });
  return Object.assign(t, { digest: () => `sha256:${hash.digest('hex')}` });
}

async function snapshot(dispatcher: Agent, [registry, repo, blobsJson, outDir, concurrency]: string[]) {
  const blobs = JSON.parse(blobsJson) as Blob[];
  let bytes = 0;
  await pool(blobs, Number(concurrency), async (b) => {
    const kind = b.mediaType ? 'manifests' : 'blobs';
    const res = await request(`http://${registry}/v2/${repo}/${kind}/${b.digest}`, {
      dispatcher,
      headers: b.mediaType ? { accept: b.mediaType } : {},
    });
    if (res.statusCode !== 200) throw new Error(`GET ${repo} ${b.digest} answered ${res.statusCode}`);
    const tmp = path.join(outDir, `.tmp-${b.digest.slice(7)}`);
    const hash = hashing((n) => (bytes += n));
    await pipeline(res.body, hash, createWriteStream(tmp, { highWaterMark: 1024 * 1024, flush: true }));
    const got = hash.digest();
    if (got !== b.digest) throw new Error(`${b.digest} hashed to ${got}`);
    await fs.rename(tmp, path.join(outDir, b.digest.slice(7)));
  });
  return bytes;
}

async function restore(
  dispatcher: Agent,
  [registry, repo, blobsJson, layoutDir, concurrency, tag]: string[],
) {
  const blobs = JSON.parse(blobsJson) as Blob[];
  const file = (b: Blob) => path.join(layoutDir, 'blobs', 'sha256', b.digest.slice(7));
  const base = `http://${registry}/v2/${repo}`;
  let bytes = 0;
  await pool(
    blobs.filter((b) => !b.mediaType),
    Number(concurrency),
    async (b) => {
      const post = await request(`${base}/blobs/uploads/`, { dispatcher, method: 'POST' });
      await post.body.dump();
      const location = post.headers.location;
      if (post.statusCode !== 202 || typeof location !== 'string')
        throw new Error(`POST ${repo} blob upload answered ${post.statusCode}`);
      const url = new URL(location, base);
      url.searchParams.set('digest', b.digest);
      const hash = hashing((n) => (bytes += n));
      const put = await request(url, {
        dispatcher,
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
        body: createReadStream(file(b), { highWaterMark: 1024 * 1024 }).pipe(hash),
      });
      await put.body.dump();
      if (put.statusCode !== 201) throw new Error(`PUT ${repo} ${b.digest} answered ${put.statusCode}`);
      const got = hash.digest();
      if (got !== b.digest) throw new Error(`${b.digest} hashed to ${got}`);
    },
  );
  const manifest = blobs.find((b) => b.mediaType)!;
  const bytesOf = await fs.readFile(file(manifest));
  const put = await request(`${base}/manifests/${tag}`, {
    dispatcher,
    method: 'PUT',
    headers: { 'content-type': manifest.mediaType! },
    body: bytesOf,
  });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`PUT ${repo} manifest ${tag} answered ${put.statusCode}`);
  return bytes + bytesOf.length;
}

async function main([mode, ...args]: string[]) {
  const dispatcher = new Agent();
  const started = process.hrtime.bigint();
  const bytes = mode === 'restore' ? await restore(dispatcher, args) : await snapshot(dispatcher, args);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await dispatcher.close();
  return { seconds, bytes };
}

main(process.argv.slice(2)).then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`),
  (e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
