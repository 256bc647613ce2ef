/**
 * The CLI's AWS paths an on-call engineer runs against the deployed vault, as the role `ImageVault.grantRead` gives
 * (the README's `OnCallRestore`): restore, verify, provenance show and verify, history. They run in-process against a
 * vault on radosgw as the `vault-reader` principal; every S3 call they make is recorded and, when the file is done,
 * checked against that role's policies and the bucket's and key's (./setup.ts). The snapshot that fills the vault is
 * the operator's and is not recorded.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { cli, cliJson } from '../integration/cli-helpers';
import { s3ProcessEnv, startRegistry, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { asPrincipal, recordedCalls } from './recorder';

describe('the CLI as the on-call reader of the vault (recorded, checked against grantRead)', () => {
  const bucket = `reader-${Date.now()}`;
  const store = `s3://${bucket}/team-a`;
  let fx: PushedFixtures;
  let client: S3Client;
  const saved = { ...process.env };
  const asReader = <T>(fn: () => Promise<T>) => asPrincipal('vault-reader', fn);

  beforeAll(async () => {
    Object.assign(process.env, s3ProcessEnv());
    ({ client } = await testBucket(bucket));
    fx = await pushStandardFixtures(testbed().registry, tempDir(), { repoPrefix: 'reader' });
    // The operator's snapshot: not the reader's calls.
    await cliJson('--store', store, 'snapshot', fx.multiLayer.ref, fx.index.ref);
  });

  afterAll(() => {
    process.env = saved;
    client.destroy();
  });

  it('restores an image into an empty registry, reading only', async () => {
    const fresh = startRegistry(`reader-fresh-${Date.now()}`);
    const r = await asReader(() =>
      cliJson<{ verifiedDigest: string }>(
        '--store',
        store,
        'restore',
        `${fx.index.repo}:1`,
        '--to',
        `${fresh}/${fx.index.repo}:1`,
      ),
    );
    expect(r.verifiedDigest).toBe(fx.index.digest);
  });

  it('verifies the vault, lists history and provenance, and verifies the provenance log', async () => {
    for (const args of [
      ['verify'],
      ['history', `${fx.multiLayer.repo}:1`],
      ['provenance', 'show', `${fx.multiLayer.repo}@${fx.multiLayer.digest}`],
      ['provenance', 'list', '--repo', 'reader/'],
      ['provenance', 'verify', fx.multiLayer.repo],
    ]) {
      const r = await asReader(() => cli('--store', store, ...args));
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });

  it('made S3 calls as the reader, and only those', () => {
    const calls = recordedCalls();
    expect(calls.length).toBeGreaterThan(0);
    expect(new Set(calls.map((c) => c.principal))).toEqual(new Set(['vault-reader']));
    expect(new Set(calls.map((c) => c.service))).toEqual(new Set(['S3']));
  });
});
