/**
 * Provenance on a real S3 API (radosgw) with Object Lock: the record names the S3 versions of the snapshot, each
 * log entry is locked, and `verify` reads the bucket's version history — which shows what no hash chain can: the
 * newest entry deleted, or an entry overwritten with a correctly re-hashed forgery.
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault, blobKey, imageKey } from '../../lib/content';
import { ProvenanceLog, entryHash, logKey, recordProvenance, type LogEntry } from '../../lib/provenance';
import { Logger } from '@aws-lambda-powertools/logger';
import { createIdentityHandler } from '../../lib/aws/handlers/identity';
import { createScanHandler } from '../../lib/aws/handlers/scan';
import { putImageEvent } from '../unit/provenance/events';
import { ecrImageScanDocumented, withDigest } from '../unit/provenance/scan-events';
import { testBucket } from '../testbed/env';
import { injectConditionalConflicts } from '../testbed/conflicting-s3';
import { snapshottedImage } from '../unit/helpers';

describe('provenance on S3 with Object Lock (radosgw)', () => {
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const prefix = 'vault';
  let client: S3Client;
  let bucket: string;
  let vault: Vault;

  beforeAll(async () => {
    ({ client, bucket } = await testBucket(`iv-prov-lock-${run}`, { objectLock: true }));
    vault = new Vault(new S3ObjectStore({ bucket, prefix, client }));
  });

  afterAll(() => client?.destroy());

  const raw = (key: string) => `${prefix}/${key}`;

  it('records the S3 version ids of the manifest and the record, and says there is no replication', async () => {
    const img = await snapshottedImage(vault, 'team/app', 'v1', 'versions');

    const { statement } = await recordProvenance(vault, 'team/app', img.manifest.digest);

    const manifestHead = await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: raw(blobKey(img.manifest.digest)) }),
    );
    const recordHead = await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: raw(imageKey('team/app', img.manifest.digest)) }),
    );
    expect(statement.predicate.snapshot).toEqual({
      store: `s3://${bucket}/${prefix}`,
      keys: { manifest: blobKey(img.manifest.digest), record: imageKey('team/app', img.manifest.digest) },
      versionIds: { manifest: manifestHead.VersionId, record: recordHead.VersionId },
      verifiedAt: '2026-01-10T09:06:00.000Z',
      replication: 'not-replicated',
      replicationReason:
        'the bucket reports no replication for these objects (no replication rule covers them)',
    });
  });

  it('locks every entry it appends, so its version cannot be deleted', async () => {
    const img = await snapshottedImage(vault, 'team/locked', 'v1', 'locked');
    const before = Date.now();

    await recordProvenance(vault, 'team/locked', img.manifest.digest, {
      retention: { mode: 'COMPLIANCE', days: 2 },
    });

    const key = raw(logKey('team/locked', 1));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const retention = (await client.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key })))
      .Retention;
    expect(retention?.Mode).toBe('COMPLIANCE');
    const until = retention!.RetainUntilDate!.getTime();
    expect(until).toBeGreaterThanOrEqual(before + 2 * 86_400_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 2 * 86_400_000 + 1000);
    await expect(
      client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: head.VersionId })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('verify: intact with versions checked, then names a deleted newest entry the chain alone cannot see', async () => {
    const repo = 'team/deleted';
    for (const seed of ['d1', 'd2']) {
      const img = await snapshottedImage(vault, repo, seed, seed);
      await recordProvenance(vault, repo, img.manifest.digest, {
        retention: { mode: 'GOVERNANCE', days: 1 },
      });
    }
    const log = new ProvenanceLog(vault.store);
    expect(await log.verify(repo)).toMatchObject({ ok: true, entries: 2, versions: 'checked', problems: [] });

    // Someone with s3:DeleteObject removes the newest entry: only a delete marker, the locked version stays.
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: raw(logKey(repo, 2)) }));

    const report = await log.verify(repo);
    expect(report.entries).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({
        kind: 'deleted',
        key: logKey(repo, 2),
        seq: 2,
        detail: expect.stringMatching(
          /^entry 2 was deleted \(delete marker \S+\); its written version \S+ is still/,
        ),
      }),
    ]);
  });

  it('verify: names an entry overwritten with a correctly re-hashed forgery', async () => {
    const repo = 'team/forged';
    const img = await snapshottedImage(vault, repo, 'v1', 'forged');
    await recordProvenance(vault, repo, img.manifest.digest);
    const log = new ProvenanceLog(vault.store);
    const [entry] = await log.entries(repo);

    // The forger rewrites the pusher and fixes up the hash, so the chain itself is consistent again.
    const forged: LogEntry = {
      ...entry,
      statement: {
        ...entry.statement,
        predicate: {
          ...entry.statement.predicate,
          push: { ...entry.statement.predicate.push, tags: ['forged'] },
        },
      },
    };
    forged.hash = entryHash(forged);
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: raw(logKey(repo, 1)), Body: JSON.stringify(forged) }),
    );

    const report = await log.verify(repo);
    expect(report.problems.map((p) => p.kind)).toEqual(['overwritten']);
    expect(report.problems[0].detail).toMatch(
      /^entry 1 was written 2 times; the first version, \S+, is the original/,
    );
  });

  it('the identity and scan handlers append locked entries to the same chain, scan before the snapshot, CloudTrail after', async () => {
    // Prepare: the scan completes before the snapshot (pending), CloudTrail arrives after it (joined)
    const retention = { mode: 'COMPLIANCE' as const, days: 1 };
    const logger = new Logger({ logLevel: 'SILENT' });
    const img = await snapshottedImage(vault, 'team/handlers', 'v1', 'handlers');
    const digest = img.manifest.digest;
    const scan = createScanHandler({ vault, retention, logger });
    const identity = createIdentityHandler({ vault, retention, logger });

    // Act
    const scanned = await scan(withDigest(ecrImageScanDocumented(), digest, { repository: 'team/handlers' }));
    await recordProvenance(vault, 'team/handlers', digest, { retention });
    const joined = await identity(
      putImageEvent({ repository: 'team/handlers', digest, identity: 'assumed-role' }),
    );

    // Assess
    expect(scanned.status).toBe('pending');
    expect(joined.status).toBe('joined');
    const log = new ProvenanceLog(vault.store);
    const entries = await log.entries('team/handlers');
    expect(
      entries.map((e) => [e.statement.predicate.scan.status, e.statement.predicate.push.identityStatus]),
    ).toEqual([
      ['complete', 'unknown'], // pushed in January: past the CloudTrail window when first recorded
      ['complete', 'known'], // a late CloudTrail event still joins
    ]);
    for (const e of entries) {
      const head = await vault.store.head(logKey('team/handlers', e.seq));
      expect(head?.retention?.mode).toBe('COMPLIANCE');
    }
    expect(await log.verify('team/handlers')).toMatchObject({ ok: true, entries: 2, versions: 'checked' });
  });

  it('concurrent appends (scan, identity, one record per tag) survive the 409s AWS S3 answers racing writers', async () => {
    // Prepare: a client that answers 409 ConditionalRequestConflict like AWS does when conditional writes overlap
    const { client: racing, bucket: raced } = await testBucket(`iv-prov-409-${run}`);
    const injected = injectConditionalConflicts(racing);
    const store = new S3ObjectStore({ bucket: raced, client: racing });
    const racedVault = new Vault(store);
    const logger = new Logger({ logLevel: 'SILENT' });
    const img = await snapshottedImage(racedVault, 'team/race', 'v1', 'race');
    const digest = img.manifest.digest;
    await recordProvenance(racedVault, 'team/race', digest);

    // Act: everything ECR and CloudTrail send for one push, at once
    injected.holdNextUntilContended();
    try {
      await Promise.all([
        createScanHandler({ vault: racedVault, logger })(
          withDigest(ecrImageScanDocumented(), digest, { repository: 'team/race' }),
        ),
        createIdentityHandler({ vault: racedVault, logger })(
          putImageEvent({ repository: 'team/race', digest, identity: 'assumed-role' }),
        ),
        ...['v1', 'stable', 'latest'].map((tag) =>
          recordProvenance(racedVault, 'team/race', digest, {
            push: { time: '2026-01-10T09:00:00.000Z', tags: [tag] },
          }),
        ),
      ]);

      // Assess: the races happened, nothing threw, and the newest entry has every fact on an intact chain
      expect(injected.conflicts()).toBeGreaterThan(0);
      const log = new ProvenanceLog(store);
      const newest = await log.latest('team/race', digest);
      expect(newest?.statement.predicate.scan.status).toBe('complete');
      expect(newest?.statement.predicate.push.identityStatus).toBe('known');
      expect(await log.verify('team/race')).toMatchObject({ ok: true });
    } finally {
      racing.destroy();
    }
  });

  it('verify: says versions were not checked on a bucket that keeps none, instead of calling them fine', async () => {
    const { bucket: plain } = await testBucket(`iv-prov-plain-${run}`, { versioned: false });
    const unversioned = new Vault(new S3ObjectStore({ bucket: plain, client }));
    const img = await snapshottedImage(unversioned, 'team/plain', 'v1', 'plain');
    await recordProvenance(unversioned, 'team/plain', img.manifest.digest);

    expect(await new ProvenanceLog(unversioned.store).verify('team/plain')).toMatchObject({
      ok: true,
      versions: 'not-kept',
      versionsNote: 'the bucket does not keep versions (versioning off or suspended)',
    });
  });
});
