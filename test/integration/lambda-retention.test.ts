/**
 * The retention function's handler against a vault in a versioned radosgw bucket: the policy applied (forget
 * records), then gc in two runs (mark, then sweep); what runs and what is held stays; a run short of time stops
 * cleanly and the next finishes. Its S3 calls — deletes included — are checked by the contract harness against the
 * retention role of the deployed policy.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import { createRetentionHandler } from '../../lib/aws/handlers/retention';
import { blobKey, Forgets } from '../../lib/content';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault } from '../../lib/content/vault';
import { HoldService } from '../../lib/services/holds';
import { recordRunning, snapshottedImage, type TestImage } from '../../fixtures/vault-images';
import { testBucket } from '../testbed/env';

const POLICY = { rules: [{ prefix: 'app', keepLast: 1 }] };

describe('Function: createRetentionHandler (radosgw vault)', () => {
  const bucket = `lambda-retention-${Date.now()}`;
  let s3: S3Client;
  let vault: Vault;

  beforeAll(async () => {
    s3 = (await testBucket(bucket)).client;
  });
  afterAll(() => s3.destroy());

  beforeEach(async () => {
    vault = new Vault(
      new S3ObjectStore({ bucket, prefix: `v${Math.random().toString(16).slice(2, 8)}`, client: s3 }),
    );
    await vault.init();
  });

  /** An image as a snapshot leaves it: content, record, one push of app:tag, `minutes` ago. */
  const push = (tag: string, layer: string, minutes: number): Promise<TestImage> =>
    snapshottedImage(vault, 'app', tag, layer, {}, new Date(Date.now() - minutes * 60_000).toISOString());
  const present = async (img: TestImage) =>
    Promise.all([...img.blobs.keys()].map(async (d) => (await vault.store.head(blobKey(d))) !== undefined));
  const context = (remainingMs: number) => ({
    functionName: 'imagevault-retention',
    getRemainingTimeInMillis: () => remainingMs,
  });
  const handler = (stopMarginMs = 0) =>
    createRetentionHandler({
      vault,
      policy: POLICY,
      graceMs: 0,
      stopMarginMs,
      logger: new Logger({ logLevel: 'SILENT' }),
    });

  it('forgets by the policy, keeps what runs or is held, and deletes the rest over two runs', async () => {
    // Prepare: four pushes of app:main; the newest is kept by the rule, one runs, one is held
    const old = await push('main', 'old', 40);
    const running = await push('main', 'running', 30);
    const held = await push('main', 'held', 20);
    const newest = await push('main', 'newest', 10);
    await recordRunning(
      vault,
      { repository: 'app', digest: running.manifest.digest },
      { cluster: 'prod', service: 'web' },
    );
    await new HoldService(vault).hold({
      repository: 'app',
      digest: held.manifest.digest,
      by: 't',
      reason: 'audit',
    });
    // Act: the first run forgets and marks; the second sweeps
    const first = await handler()({}, context(600_000));
    const second = await handler()({}, context(600_000));
    // Assess
    expect(first).toMatchObject({ forgotten: 1, gc: { deleted: { blobs: 0 }, stopped: false } });
    expect(first.gc.marked?.blobs).toBe(old.blobs.size);
    expect((await new Forgets(vault.store).newest()).size).toBe(1);
    expect(second.gc.deleted.blobs).toBe(old.blobs.size);
    expect(await present(old)).toEqual([...old.blobs.keys()].map(() => false));
    for (const kept of [running, held, newest]) expect((await present(kept)).every(Boolean)).toBe(true);
  });

  it('stops cleanly when the invocation runs short, and the next run finishes the sweep', async () => {
    const old = await push('main', 'old-2', 40);
    await push('main', 'newest-2', 10);
    await handler()({}, context(600_000));
    // Less time left than the margin: nothing is swept now, nothing new is marked.
    const short = await handler(120_000)({}, context(60_000));
    expect(short.gc).toMatchObject({ deleted: { blobs: 0 }, stopped: true });
    expect((await present(old)).every(Boolean)).toBe(true);
    const next = await handler()({}, context(600_000));
    expect(next.gc.deleted.blobs).toBe(old.blobs.size);
    expect((await present(old)).some(Boolean)).toBe(false);
  });
});
