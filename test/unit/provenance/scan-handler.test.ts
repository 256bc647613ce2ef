import type { Logger } from '@aws-lambda-powertools/logger';
import type { Vault } from '../../../lib/content';
import { ProvenanceLog, recordProvenance, type ScanFindingsSource } from '../../../lib/provenance';
import { createScanHandler } from '../../../lib/aws/handlers/scan';
import { scanConfig } from '../../../lambdas/config';
import { snapshottedImage, tempVault, type TestImage } from '../helpers';
import {
  ecrImageActionDocumented,
  ecrImageScanDocumented,
  inspectorScanEcrGuideDocumented,
  withDigest,
} from './scan-events';

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

const findings: ScanFindingsSource = {
  topFindings: async () => [
    { id: 'CVE-2019-17498', severity: 'HIGH', package: 'libssh2', version: '1.4.3', fixedIn: '1.4.3-13' },
  ],
};

describe('Function: createScanHandler (ECR / Inspector scan → provenance)', () => {
  it('joins an Inspector scan to an image already recorded, with its top findings', async () => {
    // GIVEN a snapshotted image with its provenance record
    const vault = await tempVault();
    const img = await snapshotted(vault, 'joined');
    await recordProvenance(vault, REPO, img.manifest.digest);
    const handler = createScanHandler({
      vault,
      findings,
      logger: fakeLogger().logger,
      now: () => new Date('2026-01-10T10:00:00Z'),
    });

    // WHEN Inspector's scan event arrives
    const result = await handler(
      withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, { repository: REPO }),
    );

    // THEN the newest entry has the scan
    expect(result).toEqual({ status: 'joined', repository: REPO, digest: img.manifest.digest });
    const latest = await new ProvenanceLog(vault.store).latest(REPO, img.manifest.digest);
    expect(latest).toMatchObject({ seq: 2, time: '2026-01-10T10:00:00.000Z' });
    expect(latest?.statement.predicate.scan).toMatchObject({
      status: 'complete',
      scanner: 'inspector',
      findings: { CRITICAL: 7, HIGH: 61 },
      top: [{ id: 'CVE-2019-17498', fixedIn: '1.4.3-13' }],
    });
  });

  it('keeps a scan of an image not yet recorded pending', async () => {
    const vault = await tempVault();
    const img = await snapshotted(vault, 'pending');
    const { logger, lines } = fakeLogger();
    const result = await createScanHandler({ vault, logger })(
      withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO }),
    );
    expect(result).toEqual({ status: 'pending', repository: REPO, digest: img.manifest.digest });
    expect(lines).toEqual([expect.objectContaining({ level: 'info', message: 'scan pending' })]);
    expect((await recordProvenance(vault, REPO, img.manifest.digest)).statement.predicate.scan).toMatchObject(
      {
        status: 'complete',
        scanner: 'ecr-basic',
        findings: { CRITICAL: 10, MEDIUM: 9 },
      },
    );
  });

  it('says when a late scan is older than the one recorded', async () => {
    const vault = await tempVault();
    const img = await snapshotted(vault, 'stale');
    const { logger, lines } = fakeLogger();
    const handler = createScanHandler({ vault, logger });
    const at = (time: string) =>
      withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO, time });
    await handler(at('2026-01-11T00:00:00Z'));
    expect(await handler(at('2026-01-10T00:00:00Z'))).toEqual({
      status: 'pending',
      repository: REPO,
      digest: img.manifest.digest,
      stale: true,
    });
    expect(lines[1]).toMatchObject({
      message: 'scan older than the one recorded, ignored',
      fields: { recorded: '2026-01-11T00:00:00.000Z', completedAt: '2026-01-10T00:00:00.000Z' },
    });
  });

  it('warns when the scan is recorded without finding details', async () => {
    const vault = await tempVault();
    const img = await snapshotted(vault, 'no-details');
    const { logger, lines } = fakeLogger();
    await createScanHandler({
      vault,
      logger,
      findings: {
        topFindings: async () => {
          throw new Error('ThrottlingException: Rate exceeded');
        },
      },
    })(withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, { repository: REPO }));
    expect(lines.map((l) => [l.level, l.message])).toEqual([
      ['info', 'scan pending'],
      ['warn', 'scan recorded without finding details'],
    ]);
    expect(JSON.stringify(lines[1].fields)).toContain('ThrottlingException: Rate exceeded');
  });

  it('ignores an event that is no scan result, logging an error', async () => {
    const vault = await tempVault();
    const { logger, lines } = fakeLogger();
    const result = await createScanHandler({ vault, logger })(ecrImageActionDocumented());
    expect(result).toMatchObject({ status: 'ignored', repository: 'my-repository-name' });
    expect(result.reason).toMatch(/detail-type "ECR Image Action"/);
    expect(lines.map((l) => l.level)).toEqual(['error']);
    expect(await new ProvenanceLog(vault.store).repositories()).toEqual([]);
  });

  it('ignores the documented example itself: its digest is a placeholder', async () => {
    const vault = await tempVault();
    const result = await createScanHandler({ vault, logger: fakeLogger().logger })(ecrImageScanDocumented());
    expect(result).toMatchObject({
      status: 'ignored',
      repository: 'my-repository-name',
      digest: 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234',
      reason: expect.stringContaining('is not a valid digest'),
    });
  });

  it('throws when the vault cannot be written, so Lambda retries', async () => {
    const vault = await tempVault();
    const img = await snapshotted(vault, 'broken-store');
    jest.spyOn(vault.store, 'putBytes').mockRejectedValue(new Error('AccessDenied'));
    await expect(
      createScanHandler({ vault, logger: fakeLogger().logger })(
        withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO }),
      ),
    ).rejects.toThrow('AccessDenied');
  });
});

describe('Function: scanConfig', () => {
  it('reads VAULT_BUCKET and VAULT_PREFIX', () => {
    expect(scanConfig({ VAULT_BUCKET: 'b', VAULT_PREFIX: '/team/vault/' })).toEqual({
      vaultBucket: 'b',
      vaultPrefix: 'team/vault',
      // IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT unset: the defaults
      timeouts: {},
    });
    expect(() => scanConfig({})).toThrow(/VAULT_BUCKET/);
  });
});
