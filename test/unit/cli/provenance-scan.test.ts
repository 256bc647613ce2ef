import {
  formatProvenance,
  formatScan,
  provenanceList,
  provenanceShow,
} from '../../../lib/cli/commands/provenance';
import type { Vault } from '../../../lib/content';
import { recordProvenance, recordScan, type ScanFindingsSource } from '../../../lib/provenance';
import { snapshottedImage, tempVault } from '../helpers';
import {
  ecrImageScanDocumented,
  inspectorScanEcrGuideDocumented,
  withDigest,
} from '../provenance/scan-events';

const findings: ScanFindingsSource = {
  topFindings: async () => [
    {
      id: 'CVE-2021-0001',
      severity: 'CRITICAL',
      package: 'libssh2',
      version: '1.4.3',
      fixedIn: '1.4.3-13.amzn2',
    },
    { id: 'CVE-2020-0001', severity: 'HIGH', package: 'libssh2', version: '1.4.3' },
  ],
};

describe('Command: provenance (scan)', () => {
  let vault: Vault;
  let web: string;
  let api: string;
  let db: string;
  beforeAll(async () => {
    vault = await tempVault();
    // app/web: Inspector found CRITICAL and HIGH; app/api: basic scanning found MEDIUM and LOW; app/db: no scan.
    web = (await snapshottedImage(vault, 'app/web', 'prod', 'web')).manifest.digest;
    api = (await snapshottedImage(vault, 'app/api', 'prod', 'api')).manifest.digest;
    db = (await snapshottedImage(vault, 'app/db', 'prod', 'db')).manifest.digest;
    for (const [repo, digest] of [
      ['app/web', web],
      ['app/api', api],
      ['app/db', db],
    ])
      await recordProvenance(vault, repo, digest);
    await recordScan(vault, withDigest(inspectorScanEcrGuideDocumented(), web, { repository: 'app/web' }), {
      findings,
    });
    await recordScan(
      vault,
      withDigest(ecrImageScanDocumented(), api, { repository: 'app/api', counts: { LOW: 3, MEDIUM: 2 } }),
    );
  });

  it('show: scanner, completion time, counts CRITICAL first, and the top findings with their fixes', async () => {
    const text = formatProvenance(await provenanceShow(vault, `app/web@${web}`));
    expect(text).toContain(
      '  scanned:   complete by Amazon Inspector, 2021-12-03T18:03:16.000Z: 7 CRITICAL, 61 HIGH, 62 MEDIUM, 158 TOTAL\n' +
        '             CRITICAL CVE-2021-0001 libssh2 1.4.3 → 1.4.3-13.amzn2\n' +
        '             HIGH     CVE-2020-0001 libssh2 1.4.3 (no fixed version known)\n',
    );
  });

  it('show: an image never scanned says so', async () => {
    const text = formatProvenance(await provenanceShow(vault, `app/db@${db}`));
    expect(text).toMatch(/\n {2}scanned: {3}unknown: /);
  });

  it('formatScan: a failed scan, and a scan recorded without details', () => {
    expect(
      formatScan({
        status: 'failed',
        scanner: 'ecr-basic',
        completedAt: '2026-01-10T10:00:00.000Z',
        reason: 'ECR basic scanning reported FAILED',
      }),
    ).toEqual([
      '  scanned:   FAILED by ECR basic scanning, 2026-01-10T10:00:00.000Z: ECR basic scanning reported FAILED',
    ]);
    expect(
      formatScan({
        status: 'complete',
        scanner: 'ecr-basic',
        completedAt: '2026-01-10T10:00:00.000Z',
        findings: { MEDIUM: 9, CRITICAL: 10 },
        reason: 'finding details could not be read (AccessDenied): only the severity counts are recorded',
      }),
    ).toEqual([
      '  scanned:   complete by ECR basic scanning, 2026-01-10T10:00:00.000Z: 10 CRITICAL, 9 MEDIUM',
      '             note: finding details could not be read (AccessDenied): only the severity counts are recorded',
    ]);
  });

  it('list: --vulnerable filters by severity (HIGH when bare), and rows carry the counts', async () => {
    const repos = async (vulnerable?: string | boolean) =>
      (await provenanceList(vault, vulnerable === undefined ? {} : { vulnerable }))
        .map((r) => r.repository)
        .sort();
    expect(await repos()).toEqual(['app/api', 'app/db', 'app/web']);
    expect(await repos(true)).toEqual(['app/web']);
    expect(await repos('medium')).toEqual(['app/api', 'app/web']);
    expect(await repos('LOW')).toEqual(['app/api', 'app/web']);
    const rows = await provenanceList(vault, { repo: 'app/db' });
    expect(rows[0]).toMatchObject({ scan: 'unknown' });
    expect(rows[0].vulnerabilities).toBeUndefined();
    await expect(provenanceList(vault, { vulnerable: 'severe' })).rejects.toThrow(
      '--vulnerable "severe" is not a severity: use one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED, UNTRIAGED',
    );
  });
});
