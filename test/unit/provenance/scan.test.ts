import type { Vault } from '../../../lib/content';
import {
  InvalidScanEventError,
  PendingScans,
  ProvenanceLog,
  applyScan,
  buildProvenance,
  joinScan,
  logKey,
  parseScanEvent,
  rankFindings,
  recordProvenance,
  recordScan,
  scanKey,
  type ScanFinding,
  type ScanFindingsSource,
} from '../../../lib/provenance';
import { putImage, snapshottedImage, tempVault } from '../helpers';
import {
  ecrImageActionDocumented,
  ecrImageScanDocumented,
  inspectorEc2ScanDocumented,
  inspectorScanDocumented,
  inspectorScanEcrGuideDocumented,
  withDigest,
} from './scan-events';

const REPO = 'app/web';

/** A findings source that answers from a list, and counts its calls. */
function fakeFindings(answer: ScanFinding[] | Error): ScanFindingsSource & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    topFindings: async (...args: unknown[]) => {
      calls.push(args);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

const TOP: ScanFinding[] = [
  { id: 'CVE-2023-0002', severity: 'HIGH', package: 'openssl', version: '3.0.1', fixedIn: '3.0.8' },
  { id: 'CVE-2023-0001', severity: 'CRITICAL', package: 'glibc', version: '2.31', fixedIn: '2.31-13' },
];

describe('Function: parseScanEvent', () => {
  const digest = `sha256:${'a'.repeat(64)}`;

  it('reads the documented Inspector ECR image scan as it is', () => {
    // Act
    const scan = parseScanEvent(inspectorScanDocumented());

    // Assess
    expect(scan).toEqual({
      repository: 'inspector2',
      digest: 'sha256:965fbcae990b0467ed5657caceaec165018ef44a4d2d46c7cdea80a9dff0d1ea',
      registryId: '111122223333',
      region: 'us-east-1',
      tags: ['ubuntu22'],
      scanner: 'inspector',
      status: 'complete',
      scanStatus: 'INITIAL_SCAN_COMPLETE',
      completedAt: '2023-01-20T23:15:18.000Z',
      findings: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, TOTAL: 0 },
      eventId: 'fdaa751a-984c-a709-44f9-9a9da9cd3606',
    });
  });

  it('reads the repository name, slashes and all, from the ARN of the ECR guide example', () => {
    const scan = parseScanEvent(withDigest(inspectorScanEcrGuideDocumented(), digest));
    expect(scan).toMatchObject({
      repository: 'amazon/amazon-ecs-sample',
      registryId: '123456789012',
      region: 'us-east-2',
      tags: ['latest'],
      findings: { CRITICAL: 7, HIGH: 61, MEDIUM: 62, TOTAL: 158 },
      completedAt: '2021-12-03T18:03:16.000Z',
    });
  });

  it('reads the documented ECR basic scan (counts as given, the account as registry)', () => {
    const scan = parseScanEvent(withDigest(ecrImageScanDocumented(), digest));
    expect(scan).toEqual({
      repository: 'my-repository-name',
      digest,
      registryId: '123456789012',
      region: 'us-east-1',
      tags: [],
      scanner: 'ecr-basic',
      status: 'complete',
      scanStatus: 'COMPLETE',
      completedAt: '2019-10-29T02:36:48.000Z',
      findings: { CRITICAL: 10, MEDIUM: 9 },
      eventId: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
    });
  });

  it('reads a FAILED basic scan as failed, with a reason', () => {
    const e = withDigest(ecrImageScanDocumented(), digest);
    const detail = { ...e.detail, 'scan-status': 'FAILED' } as Record<string, unknown>;
    delete detail['finding-severity-counts'];
    const scan = parseScanEvent({ ...e, detail });
    expect(scan).toMatchObject({ status: 'failed', scanStatus: 'FAILED', findings: {} });
    expect(scan.reason).toMatch(/^ECR basic scanning reported FAILED/);
  });

  it('refuses the documented examples whose digest is a placeholder, naming repository and digest', () => {
    expect(() => parseScanEvent(ecrImageScanDocumented())).toThrow(
      'not a scan result we can record for my-repository-name@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234: ' +
        'image-digest "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234" is not a valid digest',
    );
    let err: unknown;
    try {
      parseScanEvent(inspectorScanEcrGuideDocumented());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidScanEventError);
    expect(err).toMatchObject({
      repository: 'amazon/amazon-ecs-sample',
      digest: 'sha256:36c7b282abd0186e01419f2e58743e1bf635808231049bbc9d77e5EXAMPLE',
    });
  });

  it('refuses an ECR image push event, naming what it got and what it expects', () => {
    expect(() => parseScanEvent(ecrImageActionDocumented())).toThrow(
      'source "aws.ecr" with detail-type "ECR Image Action"; expected aws.ecr "ECR Image Scan" or aws.inspector2 "Inspector2 Scan"',
    );
  });

  it('refuses an Inspector scan of an EC2 instance', () => {
    expect(() => parseScanEvent(inspectorEc2ScanDocumented())).toThrow(
      'an Inspector scan of i-087d63509b8c97098, which is not an ECR image',
    );
  });

  it('refuses a scan status it does not know, an Inspector repository that is no ARN, and a bad shape', () => {
    const e = withDigest(inspectorScanDocumented(), digest);
    expect(() =>
      parseScanEvent({ ...e, detail: { ...e.detail, 'scan-status': 'SCAN_ELIGIBILITY_EXPIRED' } }),
    ).toThrow(
      /scan-status SCAN_ELIGIBILITY_EXPIRED is not one we record \(INITIAL_SCAN_COMPLETE for inspector\)/,
    );
    expect(() => parseScanEvent({ ...e, detail: { ...e.detail, 'repository-name': 'inspector2' } })).toThrow(
      'repository-name "inspector2" is not an ECR repository ARN',
    );
    expect(() =>
      parseScanEvent({ ...e, detail: { ...e.detail, 'finding-severity-counts': { HIGH: 'many' } } }),
    ).toThrow(/detail\.finding-severity-counts\.HIGH: /);
    expect(() => parseScanEvent({ ...e, time: 'yesterday' })).toThrow(/time: not a valid time/);
    expect(() => parseScanEvent('ECR Image Scan')).toThrow('not an EventBridge event: got string');
  });
});

describe('Function: rankFindings', () => {
  it('keeps CRITICAL then HIGH, in the source order within a severity, at most 20', () => {
    const many: ScanFinding[] = [
      { id: 'M', severity: 'MEDIUM' },
      ...Array.from({ length: 25 }, (_, i) => ({ id: `H${i}`, severity: 'HIGH' })),
      { id: 'C', severity: 'CRITICAL' },
      { id: 'L', severity: 'LOW' },
    ];
    const top = rankFindings(many);
    expect(top).toHaveLength(20);
    expect(top.map((f) => f.id).slice(0, 3)).toEqual(['C', 'H0', 'H1']);
    expect(top[19].id).toBe('H18');
  });
});

describe('Scan join', () => {
  let vault: Vault;
  beforeEach(async () => {
    vault = await tempVault();
  });

  it('applyScan and joinScan are pure; an older scan leaves a newer one in place', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'pure');
    const s = await buildProvenance(vault, REPO, img.manifest.digest);
    expect(s.predicate.scan.status).toBe('unknown');
    const newer = joinScan(
      s.predicate,
      withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, { repository: REPO }),
    );
    expect(newer.scan).toEqual({
      status: 'complete',
      scanner: 'inspector',
      completedAt: '2021-12-03T18:03:16.000Z',
      findings: { CRITICAL: 7, HIGH: 61, MEDIUM: 62, TOTAL: 158 },
      eventId: '739c0d3c-4f02-85c7-5a88-94a9EXAMPLE',
    });
    expect(s.predicate.scan.status).toBe('unknown');
    const older = parseScanEvent(
      withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, {
        repository: REPO,
        time: '2021-12-01T00:00:00Z',
        counts: { TOTAL: 0 },
      }),
    );
    expect(applyScan(newer, older)).toBe(newer);
  });

  it('scan before snapshot: kept pending, then joined in the first entry when the record is written', async () => {
    // GIVEN an image in the vault with no record, and Inspector's event for it
    const img = await putImage(vault, [Buffer.from('scan-first')]);
    const source = fakeFindings(TOP);
    const event = withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, { repository: REPO });

    // WHEN the scan arrives first
    const r = await recordScan(vault, event, { findings: source });

    // THEN it is pending, with its most severe findings read, and no log entry exists
    expect(r).toMatchObject({ status: 'pending', stale: false, appended: false });
    expect(source.calls).toEqual([[REPO, img.manifest.digest, '123456789012']]);
    expect(await vault.store.getBytes(scanKey(REPO, img.manifest.digest))).toBeDefined();
    expect(await new ProvenanceLog(vault.store).entries(REPO)).toEqual([]);

    // WHEN the snapshot writes the record and its provenance
    await vault.putImage({
      repository: REPO,
      descriptor: img.manifest,
      firstSnapshotAt: '2026-01-10T09:07:00.000Z',
      lastSnapshotAt: '2026-01-10T09:07:00.000Z',
      blobs: 3,
      bytes: 10,
      referrers: [],
      extensions: {},
    });
    const rec = await recordProvenance(vault, REPO, img.manifest.digest);

    // THEN the first entry has the scan, CRITICAL first
    expect(rec.entry.seq).toBe(1);
    expect(rec.statement.predicate.scan).toEqual({
      status: 'complete',
      scanner: 'inspector',
      completedAt: '2021-12-03T18:03:16.000Z',
      findings: { CRITICAL: 7, HIGH: 61, MEDIUM: 62, TOTAL: 158 },
      top: [TOP[1], TOP[0]],
      eventId: '739c0d3c-4f02-85c7-5a88-94a9EXAMPLE',
    });
  });

  it('an explicit options.scan wins over the pending one', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'explicit');
    await recordScan(vault, withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO }));
    const rec = await recordProvenance(vault, REPO, img.manifest.digest, {
      scan: { status: 'unknown', reason: 'given by the caller' },
    });
    expect(rec.statement.predicate.scan).toEqual({ status: 'unknown', reason: 'given by the caller' });
  });

  it('snapshot first, scan later: an enrichment entry is appended, the first stays, the chain verifies', async () => {
    // GIVEN a recorded image
    const img = await snapshottedImage(vault, REPO, 'prod', 'snapshot-first');
    const first = await recordProvenance(vault, REPO, img.manifest.digest, {
      time: '2026-01-10T09:07:00.000Z',
    });
    expect(first.statement.predicate.scan.status).toBe('unknown');
    const log = new ProvenanceLog(vault.store);
    const firstBytes = await vault.store.getBytes(logKey(REPO, 1));
    expect(firstBytes).toBeDefined();

    // WHEN ECR basic scanning's event arrives
    const event = withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO });
    const r = await recordScan(vault, event, { time: '2026-01-10T09:10:00.000Z' });

    // THEN entry 2 has the scan, entry 1 is byte for byte what it was
    expect(r).toMatchObject({ status: 'joined', appended: true, stale: false, entry: { seq: 2 } });
    const all = await log.entries(REPO);
    expect(all.map((e) => e.statement.predicate.scan.status)).toEqual(['unknown', 'complete']);
    expect(all[1].statement.predicate.scan).toEqual({
      status: 'complete',
      scanner: 'ecr-basic',
      completedAt: '2019-10-29T02:36:48.000Z',
      findings: { CRITICAL: 10, MEDIUM: 9 },
      eventId: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
    });
    expect(all[1].statement.predicate.push).toEqual(all[0].statement.predicate.push);
    expect(await vault.store.getBytes(logKey(REPO, 1))).toEqual(firstBytes);
    expect((await log.verify(REPO)).ok).toBe(true);

    // AND a redelivery, or a re-snapshot, appends nothing
    expect(await recordScan(vault, event)).toMatchObject({
      status: 'joined',
      appended: false,
      entry: { seq: 2 },
    });
    expect(await recordProvenance(vault, REPO, img.manifest.digest)).toMatchObject({ appended: false });
    expect(await log.entries(REPO)).toHaveLength(2);
  });

  it('a newer scan replaces an older one; an older one arriving late changes nothing', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'stale');
    await recordProvenance(vault, REPO, img.manifest.digest);
    const at = (time: string, counts: Record<string, number>) =>
      withDigest(ecrImageScanDocumented(), img.manifest.digest, { repository: REPO, time, counts });

    const old = await recordScan(vault, at('2026-01-10T10:00:00Z', { HIGH: 1 }));
    expect(old).toMatchObject({ appended: true, entry: { seq: 2 } });
    const rescan = await recordScan(vault, at('2026-01-11T10:00:00Z', { LOW: 2 }));
    expect(rescan).toMatchObject({ appended: true, stale: false, entry: { seq: 3 } });
    expect(rescan.entry?.statement.predicate.scan.findings).toEqual({ LOW: 2 });

    // WHEN the first scan's event is delivered again, late
    const late = await recordScan(vault, at('2026-01-10T10:00:00Z', { HIGH: 1 }), {
      findings: fakeFindings(TOP),
    });

    // THEN it is stale: the kept scan and the log are the newer one's
    expect(late).toMatchObject({ stale: true, status: 'joined', appended: false, entry: { seq: 3 } });
    expect(late.kept.findings).toEqual({ LOW: 2 });
    expect((await new PendingScans(vault.store).get(REPO, img.manifest.digest))?.completedAt).toBe(
      '2026-01-11T10:00:00.000Z',
    );
    expect(await new ProvenanceLog(vault.store).entries(REPO)).toHaveLength(3);
  });

  it('a stale scan before the snapshot does not replace the newer pending one', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'stale-pending');
    const at = (time: string, counts: Record<string, number>) =>
      withDigest(inspectorScanDocumented(), img.manifest.digest, { repository: REPO, time, counts });
    await recordScan(vault, at('2026-02-01T00:00:00Z', { CRITICAL: 1, TOTAL: 1 }));
    const late = await recordScan(vault, at('2026-01-01T00:00:00Z', { TOTAL: 0 }));
    expect(late).toMatchObject({ status: 'pending', stale: true });
    const rec = await recordProvenance(vault, REPO, img.manifest.digest);
    expect(rec.statement.predicate.scan.findings).toEqual({ CRITICAL: 1, TOTAL: 1 });
  });

  it('keeps the counts and says why when the finding details cannot be read', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'no-details');
    await recordProvenance(vault, REPO, img.manifest.digest);
    const r = await recordScan(
      vault,
      withDigest(inspectorScanEcrGuideDocumented(), img.manifest.digest, { repository: REPO }),
      {
        findings: fakeFindings(
          new Error('AccessDeniedException: not authorized to perform ecr:DescribeImageScanFindings'),
        ),
      },
    );
    expect(r.entry?.statement.predicate.scan).toMatchObject({
      status: 'complete',
      findings: { CRITICAL: 7, HIGH: 61, MEDIUM: 62, TOTAL: 158 },
      reason:
        'finding details could not be read (AccessDeniedException: not authorized to perform ecr:DescribeImageScanFindings): only the severity counts are recorded',
    });
    expect(r.entry?.statement.predicate.scan.top).toBeUndefined();
  });

  it('reads no details when the counts have no CRITICAL or HIGH finding', async () => {
    const img = await snapshottedImage(vault, REPO, 'prod', 'clean');
    const source = fakeFindings(TOP);
    const r = await recordScan(
      vault,
      withDigest(inspectorScanDocumented(), img.manifest.digest, { repository: REPO }),
      { findings: source },
    );
    expect(source.calls).toEqual([]);
    expect(r.scan.top).toEqual([]);
  });
});
