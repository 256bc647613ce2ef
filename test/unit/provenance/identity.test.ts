import type { Vault } from '../../../lib/content';
import {
  InvalidPutImageEventError,
  ProvenanceLog,
  buildProvenance,
  identityStatusAt,
  joinIdentity,
  parsePutImageEvent,
  recordProvenance,
  recordPushIdentity,
} from '../../../lib/provenance';
import { putImage, snapshottedImage, tempVault, type TestImage } from '../helpers';
import { putImageEvent } from './events';

const snapshotted = (vault: Vault, repository: string, tag: string, seed: string): Promise<TestImage> =>
  snapshottedImage(vault, repository, tag, seed);

describe('Function: parsePutImageEvent', () => {
  const digest = `sha256:${'a'.repeat(64)}`;

  it('reads an IAM user push', () => {
    const id = parsePutImageEvent(
      putImageEvent({ repository: 'app/web', digest, tag: 'prod', identity: 'iam-user' }),
    );
    expect(id).toEqual({
      repository: 'app/web',
      digest,
      registryId: '123456789012',
      region: 'us-east-1',
      tags: ['prod'],
      time: '2026-01-10T09:05:00.000Z',
      pusher: {
        arn: 'arn:aws:iam::123456789012:user/Mary_Major',
        type: 'IAMUser',
        accountId: '123456789012',
      },
      sourceIp: '203.0.113.12',
      userAgent: expect.stringContaining('docker/24.0.7'),
      eventId: '2bfd4ee2-2178-4a82-a27d-b12939923f0f',
    });
  });

  it('reads an assumed-role push with the CI role that issued the session', () => {
    const id = parsePutImageEvent(
      putImageEvent({ repository: 'app/web', digest, tag: 'prod', identity: 'assumed-role' }),
    );
    expect(id.pusher).toEqual({
      arn: 'arn:aws:sts::123456789012:assumed-role/ci-push/github-actions-run-42',
      type: 'AssumedRole',
      accountId: '123456789012',
      sessionIssuer: { arn: 'arn:aws:iam::123456789012:role/ci-push', type: 'Role', userName: 'ci-push' },
    });
  });

  it('reads a bare CloudTrail record (a trail log file entry) as well as the EventBridge envelope', () => {
    const e = putImageEvent({ repository: 'app/web', digest, identity: 'iam-user' });
    expect(parsePutImageEvent(e.detail).digest).toBe(digest);
  });

  it('throws for a failed PutImage and for another event', () => {
    const e = putImageEvent({ repository: 'app/web', digest, identity: 'iam-user' });
    const detail = e.detail as Record<string, unknown>;
    expect(() =>
      parsePutImageEvent({
        ...e,
        detail: { ...detail, errorCode: 'ImageAlreadyExistsException', responseElements: null },
      }),
    ).toThrow(/PutImage failed \(ImageAlreadyExistsException/);
    expect(() => parsePutImageEvent({ ...e, detail: { ...detail, eventName: 'BatchGetImage' } })).toThrow(
      InvalidPutImageEventError,
    );
  });
});

describe('Push identity join', () => {
  let vault: Vault;
  beforeEach(async () => {
    vault = await tempVault();
  });

  it('joinIdentity is pure: fills pusher, source IP, user agent and CloudTrail time, merges tags', async () => {
    const img = await snapshotted(vault, 'app/web', 'prod', 'pure');
    const s = await buildProvenance(vault, 'app/web', img.manifest.digest, {
      now: new Date('2026-01-10T10:00:00Z'),
    });
    expect(s.predicate.push).toMatchObject({ identityStatus: 'pending', tags: ['prod'] });
    const joined = joinIdentity(
      s.predicate,
      putImageEvent({
        repository: 'app/web',
        digest: img.manifest.digest,
        tag: 'v1',
        identity: 'assumed-role',
      }),
    );
    expect(joined.push).toMatchObject({
      identityStatus: 'known',
      time: '2026-01-10T09:05:00.000Z',
      tags: ['prod', 'v1'],
      sourceIp: '203.0.113.12',
      pusher: { sessionIssuer: { arn: 'arn:aws:iam::123456789012:role/ci-push' } },
    });
    expect(s.predicate.push.identityStatus).toBe('pending');
  });

  it('snapshot first, CloudTrail later: an enrichment entry is appended, the first stays', async () => {
    const img = await snapshotted(vault, 'app/web', 'prod', 'snapshot-first');
    const first = await recordProvenance(vault, 'app/web', img.manifest.digest, { registry: 'ecr.example' });
    expect(first.appended).toBe(true);
    expect(first.statement.predicate.push.identityStatus).not.toBe('known');
    const r = await recordPushIdentity(
      vault,
      putImageEvent({
        repository: 'app/web',
        digest: img.manifest.digest,
        tag: 'prod',
        identity: 'iam-user',
      }),
    );
    expect(r.status).toBe('joined');
    const log = new ProvenanceLog(vault.store);
    const all = await log.entries('app/web');
    expect(all.map((e) => e.statement.predicate.push.identityStatus)).toEqual([
      first.statement.predicate.push.identityStatus,
      'known',
    ]);
    expect(all[1].statement.subject[0].name).toBe('ecr.example/app/web');
    // A re-snapshot keeps the identity learnt, and an unchanged image appends nothing.
    const again = await recordProvenance(vault, 'app/web', img.manifest.digest, { registry: 'ecr.example' });
    expect(again.appended).toBe(false);
    expect((await log.verify('app/web')).ok).toBe(true);
  });

  it('CloudTrail first, snapshot later: the pending identity is joined when the record is written', async () => {
    const img = await putImage(vault, [Buffer.from('cloudtrail-first')]);
    const r = await recordPushIdentity(
      vault,
      putImageEvent({
        repository: 'app/api',
        digest: img.manifest.digest,
        tag: 'v2',
        identity: 'assumed-role',
      }),
    );
    expect(r.status).toBe('pending');
    expect(await new ProvenanceLog(vault.store).entries('app/api')).toEqual([]);
    await vault.putImage({
      repository: 'app/api',
      descriptor: img.manifest,
      firstSnapshotAt: '2026-01-10T09:07:00.000Z',
      lastSnapshotAt: '2026-01-10T09:07:00.000Z',
      blobs: 3,
      bytes: 10,
      referrers: [],
      extensions: {},
    });
    const rec = await recordProvenance(vault, 'app/api', img.manifest.digest);
    expect(rec.entry.seq).toBe(1);
    expect(rec.statement.predicate.push).toMatchObject({
      identityStatus: 'known',
      tags: ['v2'],
      pusher: { type: 'AssumedRole' },
    });
  });

  it('not ECR: unknown from the start, and still unknown when shown within the window', async () => {
    const img = await snapshotted(vault, 'app/local', 'prod', 'never');
    const now = new Date('2026-01-10T12:00:00Z');
    const s = await buildProvenance(vault, 'app/local', img.manifest.digest, { now, cloudTrail: false });
    expect(s.predicate.push.identityStatus).toBe('unknown');
    // What `provenance show` says must agree with the record (it once said "pending" here).
    expect(identityStatusAt(s.predicate, new Date('2026-01-10T12:05:00Z'), 24)).toEqual({
      identityStatus: 'unknown',
      reason: s.predicate.push.reason,
    });
  });

  it('never: pending within the window, unknown after it, with the reason', async () => {
    const img = await snapshotted(vault, 'app/web', 'prod', 'never');
    const s = await buildProvenance(vault, 'app/web', img.manifest.digest, {
      now: new Date('2026-01-10T12:00:00Z'),
    });
    expect(s.predicate.push.identityStatus).toBe('pending');
    expect(identityStatusAt(s.predicate, new Date('2026-01-12T00:00:00Z'), 24)).toEqual({
      identityStatus: 'unknown',
      reason: 'no CloudTrail PutImage event received within 24 hours — is the trail configured?',
    });
    const late = await buildProvenance(vault, 'app/web', img.manifest.digest, {
      now: new Date('2026-01-10T15:00:00Z'),
      identityWindowHours: 2,
    });
    expect(late.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: expect.stringContaining('within 2 hours'),
    });
  });
});
