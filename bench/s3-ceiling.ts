/**
 * The child process of the bench's S3 ceiling measurements, bundled by the bench (bench/ceiling.ts) so it
 * starts as our CLI does (one CommonJS file, no TypeScript loader). Three jobs, each printing one JSON line
 * `{ "seconds": N, "bytes": N }`, seconds being the work alone (no process start or module loading):
 *
 *   upload LAYOUT_DIR BLOBS_JSON s3://BUCKET/PREFIX PART_MIB QUEUE   radosgw's ceiling: the image's blob files
 *       uploaded with lib-storage's Upload, with our store's client settings, as many at once as our copy runs
 *   download REGISTRY REPO BLOBS_JSON                                  the registry's ceiling: the same blobs read
 *       and thrown away, through undici as our registry client reads them
 *   snapshot REF s3://BUCKET/PREFIX PART_MIB QUEUE                     our snapshot in-process (the library, as the
 *       CLI calls it) with the S3 store's part size and queue depth given, for the sweep
 *
 * BLOBS_JSON is `[{ digest, size, mediaType? }]`, the manifest with its mediaType. The S3 endpoint and credentials
 * come from the environment (AWS_ENDPOINT_URL_S3 etc.), as for the CLI.
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Agent, request } from 'undici';
import { parseStoreUrl, Vault } from '../lib/content';
import { S3ObjectStore } from '../lib/content/s3';
import { s3ClientConfig, withUnsignedPayload } from '../lib/content/s3-client';
import { DEFAULT_CONCURRENCY } from '../lib/copy';
import { Reference } from '../lib/oci';
import { Registries, Snapshotter } from '../lib/services';
import { pool } from './pool';

const MiB = 1024 * 1024;

interface Blob {
  digest: string;
  size: number;
  mediaType?: string;
}

function s3Location(url: string): { bucket: string; prefix: string } {
  const loc = parseStoreUrl(url);
  if (loc.kind !== 's3') throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: loc.bucket, prefix: loc.prefix };
}

async function upload(layoutDir: string, blobs: Blob[], url: string, partMiB: number, queueSize: number) {
  const { bucket, prefix } = s3Location(url);
  const client = withUnsignedPayload(new S3Client(s3ClientConfig(process.env)));
  const started = process.hrtime.bigint();
  await pool(blobs, DEFAULT_CONCURRENCY, async (b) => {
    const hex = b.digest.slice('sha256:'.length);
    await new Upload({
      client,
      params: {
        Bucket: bucket,
        Key: `${prefix}/blobs/sha256/${hex}`,
        Body: createReadStream(path.join(layoutDir, 'blobs', 'sha256', hex)),
      },
      partSize: partMiB * MiB,
      queueSize,
    }).done();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  client.destroy();
  return { seconds, bytes: blobs.reduce((n, b) => n + b.size, 0) };
}

async function download(registry: string, repo: string, blobs: Blob[]) {
  const dispatcher = new Agent();
  let bytes = 0;
  const started = process.hrtime.bigint();
  await pool(blobs, DEFAULT_CONCURRENCY, async (b) => {
    // The manifest is read as a manifest (a registry need not serve it as a blob).
    const kind = b.mediaType ? 'manifests' : 'blobs';
    const res = await request(`http://${registry}/v2/${repo}/${kind}/${b.digest}`, {
      dispatcher,
      headers: b.mediaType ? { accept: b.mediaType } : {},
    });
    if (res.statusCode !== 200) throw new Error(`GET ${repo} ${b.digest} answered ${res.statusCode}`);
    for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await dispatcher.close();
  return { seconds, bytes };
}

async function snapshot(ref: string, url: string, partMiB: number, queueSize: number) {
  const { bucket, prefix } = s3Location(url);
  const vault = new Vault(new S3ObjectStore({ bucket, prefix, partSize: partMiB * MiB, queueSize }));
  await vault.init();
  const reference = Reference.parse(ref);
  const registries = new Registries({ credentials: async () => undefined, warn: () => undefined });
  try {
    const r = await new Snapshotter(vault, registries).snapshot({ reference });
    return { seconds: r.copy.seconds, bytes: r.copy.bytes.copied, digest: r.descriptor.digest };
  } finally {
    await registries.get(reference.registry).close();
  }
}

async function main(argv: string[]): Promise<object> {
  const [job, ...a] = argv;
  const blobsOf = (json: string) => JSON.parse(json) as Blob[];
  switch (job) {
    case 'upload':
      return upload(a[0], blobsOf(a[1]), a[2], Number(a[3]), Number(a[4]));
    case 'download':
      return download(a[0], a[1], blobsOf(a[2]));
    case 'snapshot':
      return snapshot(a[0], a[1], Number(a[2]), Number(a[3]));
    default:
      throw new Error(`unknown job ${job}: upload, download or snapshot`);
  }
}

main(process.argv.slice(2)).then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`),
  (e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
