import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

export const SCRIPT = path.resolve(__dirname, '../scripts/testbed.sh');

export interface S3Env {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/**
 * The bench's own test bed (registry + optional radosgw) under `dir`, started with scripts/testbed.sh. Every extra
 * registry lives in a folder of its own (dir/fresh-N), so it can be stopped and its storage deleted as soon as its
 * measurement is done, without touching the rest.
 */
export class Testbed {
  registry = '';
  s3: S3Env | null = null;
  private fresh = 0;
  private started = false;

  constructor(readonly dir: string) {}

  start(withS3: boolean): void {
    this.started = true;
    execFileSync('bash', [SCRIPT, 'start', this.dir, ...(withS3 ? ['rgw'] : [])], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const env = JSON.parse(readFileSync(path.join(this.dir, 'env.json'), 'utf8')) as {
      registry: string;
      s3: S3Env | null;
    };
    this.registry = env.registry;
    this.s3 = env.s3;
  }

  /** An empty registry of its own; call the returned stop() when done with it (it deletes its storage too). */
  freshRegistry(): { registry: string; stop: () => void } {
    const sub = path.join(this.dir, `fresh-${++this.fresh}`);
    const registry = execFileSync('bash', [SCRIPT, 'registry', sub, 'registry'], { encoding: 'utf8' }).trim();
    return {
      registry,
      stop: () => {
        stopDir(sub);
        rmSync(sub, { recursive: true, force: true });
      },
    };
  }

  /** Stops everything this test bed started (idempotent, synchronous so it can run from a signal handler). */
  stop(): void {
    if (!this.started) return;
    for (let i = 1; i <= this.fresh; i++) stopDir(path.join(this.dir, `fresh-${i}`));
    stopDir(this.dir);
    this.started = false;
  }

  /**
   * Frees the space of deleted objects now. radosgw hands deleted multipart data to its garbage collector, which
   * waits two hours by default, and the test bed's OSD is a 10 GiB file: a long bench would fill it, and a full
   * bluestore OSD aborts (radosgw then hangs). Best effort: a failure is only reported.
   */
  collectGarbage(): void {
    if (!this.s3) return;
    try {
      execFileSync('radosgw-admin', ['gc', 'process', '--include-all'], {
        env: { ...process.env, CEPH_CONF: path.join(this.dir, 'rgw', 'ceph.conf') },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 120_000,
      });
    } catch (e) {
      process.stderr.write(`bench: radosgw-admin gc process failed: ${(e as Error).message}\n`);
    }
  }

  /** The environment a child needs to reach radosgw through the AWS SDK's standard chain. */
  s3ChildEnv(): NodeJS.ProcessEnv {
    if (!this.s3) return {};
    return {
      AWS_ENDPOINT_URL_S3: this.s3.endpoint,
      AWS_ACCESS_KEY_ID: this.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.s3.secretAccessKey,
      AWS_REGION: this.s3.region,
    };
  }

  s3Client(): S3Client {
    if (!this.s3) throw new Error('no radosgw in this test bed');
    return new S3Client({
      endpoint: this.s3.endpoint,
      region: this.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: this.s3.accessKeyId, secretAccessKey: this.s3.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }
}

function stopDir(dir: string): void {
  try {
    execFileSync('bash', [SCRIPT, 'stop', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    process.stderr.write(`bench: stopping the test bed in ${dir} failed: ${(e as Error).message}\n`);
  }
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Deletes every object under `prefix/`, so a long run does not fill the test bed's OSD. */
export async function deletePrefix(client: S3Client, bucket: string, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }),
    );
    // One DeleteObject per key: DeleteObjects needs a Content-MD5 that not every S3 implementation gets from the SDK.
    const keys = (page.Contents ?? []).map((o) => o.Key!);
    for (let i = 0; i < keys.length; i += 8) {
      await Promise.all(
        keys.slice(i, i + 8).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))),
      );
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** The digest a registry reports for repo:reference (HEAD with every manifest Accept type distribution needs). */
export async function registryDigest(registry: string, repo: string, reference: string): Promise<string> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.docker.distribution.manifest.v2+json',
      ].join(', '),
    },
  });
  if (res.status !== 200) throw new Error(`HEAD ${registry}/${repo}:${reference} answered ${res.status}`);
  return res.headers.get('docker-content-digest') ?? '(none)';
}
