import {
  DescribeImageScanFindingsCommand,
  ECRClient,
  ECRServiceException,
  type EnhancedImageScanFinding,
  type ImageScanFinding,
} from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrScanFindings, ScanFindingsError } from '../../../lib/aws/scan-findings';

const ecr = mockClient(ECRClient);
const REPO = 'amazon/amazon-ecs-sample';
const DIGEST = `sha256:${'3'.repeat(64)}`;

/** A basic-scanning finding, shaped as DescribeImageScanFindings returns them (ImageScanFinding, ECR API reference). */
const basic = (name: string, severity: ImageScanFinding['severity'], score?: string): ImageScanFinding => ({
  name,
  description: 'Incorrect sanitation of the 302 redirect field in HTTP transport method of apt',
  uri: `https://security-tracker.debian.org/tracker/${name}`,
  severity,
  attributes: [
    { key: 'package_version', value: '1.4.8' },
    { key: 'package_name', value: 'apt' },
    { key: 'CVSS2_VECTOR', value: 'AV:N/AC:M/Au:N/C:C/I:C/A:C' },
    ...(score ? [{ key: 'CVSS2_SCORE', value: score }] : []),
  ],
});

/**
 * An enhanced (Inspector) finding, from the `Inspector2 Finding` example of
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-events.html in the SDK's shape.
 */
const enhanced = (
  id: string,
  severity: string,
  score: number,
  fixedInVersion?: string,
): EnhancedImageScanFinding => ({
  awsAccountId: '123456789012',
  findingArn: `arn:aws:inspector2:us-east-2:123456789012:finding/${id}`,
  severity,
  score,
  status: 'ACTIVE',
  title: `${id} - libssh2`,
  type: 'PACKAGE_VULNERABILITY',
  packageVulnerabilityDetails: {
    source: 'REDHAT_CVE',
    sourceUrl: `https://access.redhat.com/security/cve/${id}`,
    vulnerabilityId: id,
    vulnerablePackages: [
      {
        arch: 'X86_64',
        epoch: 0,
        name: 'libssh2',
        packageManager: 'OS',
        release: '12.amzn2.2',
        version: '1.4.3',
        ...(fixedInVersion ? { fixedInVersion } : {}),
      },
    ],
  },
  remediation: {
    recommendation: {
      text: 'Update all packages in the vulnerable packages section to their latest versions.',
    },
  },
});

describe('Class: EcrScanFindings', () => {
  beforeEach(() => ecr.reset());

  describe('Method: topFindings', () => {
    it('reads basic findings: CRITICAL then HIGH, highest score first, package from the attributes', async () => {
      // Prepare
      ecr.on(DescribeImageScanFindingsCommand).resolves({
        imageScanStatus: { status: 'COMPLETE', description: 'The scan was completed successfully.' },
        imageScanFindings: {
          findings: [
            basic('CVE-2019-0001', 'MEDIUM'),
            basic('CVE-2019-0002', 'HIGH', '7.5'),
            basic('CVE-2019-3462', 'CRITICAL', '9.3'),
            basic('CVE-2019-0003', 'HIGH', '8.8'),
            basic('CVE-2019-0004', 'LOW'),
          ],
        },
      });

      // Act
      const top = await new EcrScanFindings().topFindings('my-repo', DIGEST, '123456789012');

      // Assess
      expect(top).toEqual([
        {
          id: 'CVE-2019-3462',
          severity: 'CRITICAL',
          package: 'apt',
          version: '1.4.8',
          uri: 'https://security-tracker.debian.org/tracker/CVE-2019-3462',
        },
        expect.objectContaining({ id: 'CVE-2019-0003', severity: 'HIGH' }),
        expect.objectContaining({ id: 'CVE-2019-0002', severity: 'HIGH' }),
      ]);
      expect(ecr.commandCalls(DescribeImageScanFindingsCommand)[0].args[0].input).toEqual({
        registryId: '123456789012',
        repositoryName: 'my-repo',
        imageId: { imageDigest: DIGEST },
        maxResults: 1000,
      });
    });

    it('reads enhanced findings over every page, with the fixed version (none for NotAvailable)', async () => {
      // Prepare: two pages, the most severe on the second
      ecr
        .on(DescribeImageScanFindingsCommand)
        .resolvesOnce({
          imageScanStatus: { status: 'ACTIVE' },
          imageScanFindings: {
            enhancedFindings: [
              enhanced('CVE-2019-17498', 'MEDIUM', 6.5, '1.4.3-13.amzn2'),
              enhanced('CVE-2020-0001', 'HIGH', 7.1, 'NotAvailable'),
            ],
          },
          nextToken: 'page-2',
        })
        .resolvesOnce({
          imageScanStatus: { status: 'ACTIVE' },
          imageScanFindings: {
            enhancedFindings: [
              enhanced('CVE-2021-0001', 'CRITICAL', 9.8, '1.4.3-13.amzn2'),
              enhanced('CVE-2020-0002', 'HIGH', 8.1, '1.4.3-14.amzn2'),
            ],
          },
        });

      // Act
      const top = await new EcrScanFindings().topFindings(REPO, DIGEST);

      // Assess
      expect(top).toEqual([
        {
          id: 'CVE-2021-0001',
          severity: 'CRITICAL',
          package: 'libssh2',
          version: '1.4.3',
          fixedIn: '1.4.3-13.amzn2',
          uri: 'https://access.redhat.com/security/cve/CVE-2021-0001',
        },
        expect.objectContaining({ id: 'CVE-2020-0002', fixedIn: '1.4.3-14.amzn2' }),
        {
          id: 'CVE-2020-0001',
          severity: 'HIGH',
          package: 'libssh2',
          version: '1.4.3',
          uri: 'https://access.redhat.com/security/cve/CVE-2020-0001',
        },
      ]);
      const calls = ecr.commandCalls(DescribeImageScanFindingsCommand).map((c) => c.args[0].input);
      expect(calls.map((c) => c.nextToken)).toEqual([undefined, 'page-2']);
      expect(calls[0].registryId).toBeUndefined();
    });

    it('returns at most `limit` findings', async () => {
      ecr.on(DescribeImageScanFindingsCommand).resolves({
        imageScanStatus: { status: 'ACTIVE' },
        imageScanFindings: {
          enhancedFindings: Array.from({ length: 30 }, (_, i) => enhanced(`CVE-2024-${1000 + i}`, 'HIGH', i)),
        },
      });
      const top = await new EcrScanFindings().topFindings(REPO, DIGEST);
      expect(top).toHaveLength(20);
      expect(top[0].id).toBe('CVE-2024-1029');
      expect(await new EcrScanFindings({ limit: 2 }).topFindings(REPO, DIGEST)).toHaveLength(2);
    });

    it('throws a ScanFindingsError naming the image and the AWS error', async () => {
      ecr.on(DescribeImageScanFindingsCommand).rejects(
        new ECRServiceException({
          name: 'AccessDeniedException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          message:
            'User: arn:aws:sts::123456789012:assumed-role/scan/x is not authorized to perform: ecr:DescribeImageScanFindings',
        }),
      );
      const err = await new EcrScanFindings().topFindings(REPO, DIGEST).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScanFindingsError);
      expect((err as Error).message).toBe(
        `DescribeImageScanFindings ${REPO}@${DIGEST}: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/scan/x is not authorized to perform: ecr:DescribeImageScanFindings`,
      );
    });

    it('throws when the scan has no findings to read', async () => {
      ecr.on(DescribeImageScanFindingsCommand).resolves({
        imageScanStatus: { status: 'FINDINGS_UNAVAILABLE', description: 'Findings are not available' },
      });
      await expect(new EcrScanFindings().topFindings(REPO, DIGEST)).rejects.toThrow(
        `the scan of ${REPO}@${DIGEST} is FINDINGS_UNAVAILABLE (Findings are not available): no findings to read`,
      );
    });
  });
});
