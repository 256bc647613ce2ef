import type { Logger } from '@aws-lambda-powertools/logger';
import type { Vault } from '../../../lib/content';
import { ProvenanceLog, recordProvenance } from '../../../lib/provenance';
import { createIdentityHandler } from '../../../lib/aws/handlers/identity';
import { identityConfig } from '../../../lambdas/config';
import { snapshottedImage, tempVault, type TestImage } from '../helpers';
import { putImageEvent } from './events';

const REPO = 'app/web';

const snapshotted = (vault: Vault, seed: string): Promise<TestImage> =>
  snapshottedImage(vault, REPO, 'prod', seed);

function fakeLogger() {
  const lines: Array<{ level: string; message: string; fields: unknown }> = [];
  const at =
    (level: string) =>
    (message: string, fields?: unknown): void => {
      lines.push({ level, message, fields });
    };
  const logger = { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  return { logger, lines };
}

describe('Function: createIdentityHandler (CloudTrail PutImage → provenance)', () => {
  it.each(['iam-user', 'assumed-role'] as const)(
    'joins a %s push to an image already snapshotted',
    async (identity) => {
      // GIVEN a snapshotted image with its provenance record
      const vault = await tempVault();
      const img = await snapshotted(vault, `joined-${identity}`);
      await recordProvenance(vault, REPO, img.manifest.digest, { now: new Date('2026-01-10T09:07:00Z') });
      const { logger } = fakeLogger();
      const handler = createIdentityHandler({ vault, logger });
      // WHEN CloudTrail's PutImage event arrives
      const result = await handler(
        putImageEvent({ repository: REPO, digest: img.manifest.digest, tag: 'prod', identity }),
      );
      // THEN the newest entry names the pusher
      expect(result).toEqual({ status: 'joined', repository: REPO, digest: img.manifest.digest });
      const latest = await new ProvenanceLog(vault.store).latest(REPO, img.manifest.digest);
      expect(latest?.seq).toBe(2);
      expect(latest?.statement.predicate.push).toMatchObject({
        identityStatus: 'known',
        sourceIp: '203.0.113.12',
        pusher: {
          arn:
            identity === 'iam-user'
              ? 'arn:aws:iam::123456789012:user/Mary_Major'
              : 'arn:aws:sts::123456789012:assumed-role/ci-push/github-actions-run-42',
        },
      });
      if (identity === 'assumed-role')
        expect(latest?.statement.predicate.push.pusher?.sessionIssuer?.arn).toBe(
          'arn:aws:iam::123456789012:role/ci-push',
        );
      expect((await new ProvenanceLog(vault.store).verify(REPO)).ok).toBe(true);
    },
  );

  it('keeps an identity that arrives first pending, and the snapshot joins it', async () => {
    // GIVEN an image in the vault with no provenance record yet
    const vault = await tempVault();
    const img = await snapshotted(vault, 'event-first');
    const handler = createIdentityHandler({ vault, logger: fakeLogger().logger });
    // WHEN the event arrives first
    const first = await handler(
      putImageEvent({ repository: REPO, digest: img.manifest.digest, tag: 'prod', identity: 'assumed-role' }),
    );
    // THEN it is pending, and no log entry exists
    expect(first).toEqual({ status: 'pending', repository: REPO, digest: img.manifest.digest });
    expect(await new ProvenanceLog(vault.store).latest(REPO, img.manifest.digest)).toBeUndefined();
    // WHEN the snapshot records provenance
    const recorded = await recordProvenance(vault, REPO, img.manifest.digest);
    // THEN the identity is joined in the first entry
    expect(recorded.entry.seq).toBe(1);
    expect(recorded.statement.predicate.push).toMatchObject({
      identityStatus: 'known',
      pusher: { arn: 'arn:aws:sts::123456789012:assumed-role/ci-push/github-actions-run-42' },
    });
    // AND a redelivered event changes nothing
    expect(
      await handler(
        putImageEvent({
          repository: REPO,
          digest: img.manifest.digest,
          tag: 'prod',
          identity: 'assumed-role',
        }),
      ),
    ).toEqual({ status: 'joined', repository: REPO, digest: img.manifest.digest });
    expect((await new ProvenanceLog(vault.store).entries(REPO)).length).toBe(1);
  });

  it('ignores a failed PutImage with a log line', async () => {
    const vault = await tempVault();
    const { logger, lines } = fakeLogger();
    const event = putImageEvent({
      repository: REPO,
      digest: `sha256:${'b'.repeat(64)}`,
      identity: 'iam-user',
    });
    const detail = event.detail as Record<string, unknown>;
    detail.errorCode = 'ImageAlreadyExistsException';
    detail.errorMessage = 'Image with digest already exists';
    detail.responseElements = null;
    const result = await createIdentityHandler({ vault, logger })(event);
    expect(result).toMatchObject({ status: 'ignored', repository: REPO });
    expect(result.reason).toMatch(/ImageAlreadyExistsException/);
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', message: expect.stringMatching(/PutImage failed/) }),
    ]);
    expect(await new ProvenanceLog(vault.store).repositories()).toEqual([]);
  });

  it('ignores an event that is no PutImage record, logging an error', async () => {
    const vault = await tempVault();
    const { logger, lines } = fakeLogger();
    const result = await createIdentityHandler({ vault, logger })({
      'detail-type': 'AWS API Call via CloudTrail',
      source: 'aws.ecr',
      detail: { eventSource: 'ecr.amazonaws.com', eventName: 'BatchDeleteImage' },
    });
    expect(result.status).toBe('ignored');
    expect(lines.map((l) => l.level)).toEqual(['error']);
  });

  it('throws when the vault cannot be written, so Lambda retries', async () => {
    const vault = await tempVault();
    const img = await snapshotted(vault, 'broken-store');
    jest.spyOn(vault.store, 'putBytes').mockRejectedValue(new Error('AccessDenied'));
    await expect(
      createIdentityHandler({ vault, logger: fakeLogger().logger })(
        putImageEvent({ repository: REPO, digest: img.manifest.digest, identity: 'iam-user' }),
      ),
    ).rejects.toThrow('AccessDenied');
  });
});

describe('Function: identityConfig', () => {
  it('reads VAULT_BUCKET and VAULT_PREFIX', () => {
    expect(identityConfig({ VAULT_BUCKET: 'b', VAULT_PREFIX: '/team/vault/' })).toEqual({
      vaultBucket: 'b',
      vaultPrefix: 'team/vault',
      // IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT unset: the defaults
      timeouts: {},
    });
    expect(() => identityConfig({})).toThrow(/VAULT_BUCKET/);
  });
});
