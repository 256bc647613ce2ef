import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Where global-setup started this run's test bed; every test worker reads its env.json from here. One folder per
 * jest run (global-setup exports it to the workers), so two runs on one machine do not stop each other's daemons.
 */
export const TESTBED_DIR =
  process.env.IMAGEVAULT_TESTBED_DIR ?? path.resolve(__dirname, `../../.testbed/jest-${process.pid}`);
export const SCRIPT = path.resolve(__dirname, '../../scripts/testbed.sh');

export interface S3Env {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface TestbedEnv {
  /** host:port of the real OCI registry (docker-registry) on loopback. */
  registry: string;
  /** The radosgw S3 endpoint, or null when the run was started without it. */
  s3: S3Env | null;
}

export function testbed(): TestbedEnv {
  return JSON.parse(readFileSync(path.join(TESTBED_DIR, 'env.json'), 'utf8')) as TestbedEnv;
}

/** The S3 endpoint; fails the test (never skips it) when radosgw is not running. */
export function s3env(): S3Env {
  const s3 = testbed().s3;
  if (!s3) throw new Error('radosgw is not running in this test bed: run the tests through `npm test`');
  return s3;
}

/** The standard AWS variables that point the SDK (and so the CLI's s3:// stores) at the test bed's radosgw. */
export function s3ProcessEnv(): Record<string, string> {
  const s3 = s3env();
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  };
}

/** Starts one more registry (for tests that need an empty or second registry); returns host:port. */
export function startRegistry(name: string): string {
  return execFileSync('bash', [SCRIPT, 'registry', TESTBED_DIR, name], { encoding: 'utf8' }).trim();
}

/** The configuration of an S3 client for the test bed's radosgw (path-style, checksums only where required). */
export function s3ClientConfig() {
  const env = s3env();
  return {
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED' as const,
    responseChecksumValidation: 'WHEN_REQUIRED' as const,
  };
}

/**
 * An S3 client for the test bed's radosgw and a new bucket on it, versioned unless asked otherwise: the vault's
 * buckets are versioned in production, and radosgw behaves differently on versioned buckets.
 */
export async function testBucket(
  name: string,
  options: { versioned?: boolean; objectLock?: boolean } = {},
): Promise<{ client: import('@aws-sdk/client-s3').S3Client; bucket: string }> {
  // Loaded here, not at the top: most test files read env.ts and never touch S3.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  const client = new sdk.S3Client(s3ClientConfig());
  // Object Lock can only be chosen at creation, and turns versioning on with it (as on AWS).
  await client.send(
    new sdk.CreateBucketCommand({
      Bucket: name,
      ...(options.objectLock ? { ObjectLockEnabledForBucket: true } : {}),
    }),
  );
  if (options.versioned !== false) {
    await client.send(
      new sdk.PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }),
    );
  }
  return { client, bucket: name };
}
