/**
 * The child process of the bench's Node floor: the least any Node program does to snapshot an image into a
 * directory, so the bench can show how much of the gap to skopeo is ours and how much is Node's. Bundled by the bench
 * as the CLI is (bench/ceiling.ts), it imports nothing of ours but the bench's own pool:
 *
 *   REGISTRY REPO BLOBS_JSON OUT_DIR CONCURRENCY
 *
 * GETs each blob from the registry (CONCURRENCY at once, as our copy), hashes it as it streams, writes it to a file in
 * OUT_DIR synced before it takes its digest's name, and checks the digest. No ping, no manifest resolution, no
 * records, no directory sync. Prints `{ "seconds": N, "bytes": N }`, seconds being the work alone.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
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

async function main([registry, repo, blobsJson, outDir, concurrency]: string[]) {
  const blobs = JSON.parse(blobsJson) as Blob[];
  const dispatcher = new Agent();
  let bytes = 0;
  const started = process.hrtime.bigint();
  const copy = async (b: Blob) => {
    const kind = b.mediaType ? 'manifests' : 'blobs';
    const res = await request(`http://${registry}/v2/${repo}/${kind}/${b.digest}`, {
      dispatcher,
      headers: b.mediaType ? { accept: b.mediaType } : {},
    });
    if (res.statusCode !== 200) throw new Error(`GET ${repo} ${b.digest} answered ${res.statusCode}`);
    const hash = createHash('sha256');
    const tmp = path.join(outDir, `.tmp-${b.digest.slice(7)}`);
    await pipeline(
      res.body,
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
      }),
      createWriteStream(tmp, { highWaterMark: 1024 * 1024, flush: true }),
    );
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== b.digest) throw new Error(`${b.digest} hashed to ${got}`);
    await fs.rename(tmp, path.join(outDir, b.digest.slice(7)));
  };
  await pool(blobs, Number(concurrency), copy);
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
