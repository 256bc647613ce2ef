import {
  DescribeImageScanFindingsCommand,
  ECRClient,
  type EnhancedImageScanFinding,
  type ImageScanFinding,
} from '@aws-sdk/client-ecr';
import { MAX_TOP_FINDINGS, type ScanFinding } from '../provenance/types';

/** ECR's largest page: DescribeImageScanFindings refuses a maxResults above 1000. */
const PAGE_SIZE = 1000;
/**
 * Pages read at most (50 000 findings). Findings come in no severity order, so every page is read to find the
 * most severe; this only bounds a runaway pagination.
 */
const MAX_PAGES = 50;
/** Scan statuses whose findings can be read: COMPLETE (basic), ACTIVE (enhanced: Inspector keeps monitoring). */
const READABLE = new Set(['COMPLETE', 'ACTIVE']);
const SEVERITY_RANK: Record<string, number> = { CRITICAL: 0, HIGH: 1 };
/** Inspector's fixedInVersion when no fix is known. */
const NO_FIX = 'NotAvailable';

export interface EcrScanFindingsOptions {
  /** @default `new ECRClient({})` — region and credentials from the standard AWS chain */
  readonly client?: ECRClient;
  /** Findings returned at most. @default MAX_TOP_FINDINGS */
  readonly limit?: number;
}

/** Thrown when DescribeImageScanFindings fails, or the scan has no findings to read (still running, failed). */
export class ScanFindingsError extends Error {
  constructor(
    message: string,
    readonly repository: string,
    readonly digest: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ScanFindingsError';
  }
}

/** A finding kept for ranking: the CRITICAL/HIGH ones, with the score that orders them within a severity. */
interface Ranked {
  finding: ScanFinding;
  score: number;
}

/**
 * The most severe findings of an image's latest ECR scan, read with DescribeImageScanFindings — one call for both
 * scan types: basic scanning fills `imageScanFindings.findings`, enhanced scanning (Amazon Inspector)
 * `imageScanFindings.enhancedFindings`. Structurally a ScanFindingsSource of lib/provenance/scan. Needs
 * `ecr:DescribeImageScanFindings` on the repository, and for enhanced findings `inspector2:ListFindings`
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-iam.html).
 */
export class EcrScanFindings {
  private readonly client: ECRClient;
  private readonly limit: number;

  constructor(options: EcrScanFindingsOptions = {}) {
    this.client = options.client ?? new ECRClient({});
    this.limit = options.limit ?? MAX_TOP_FINDINGS;
  }

  /** CRITICAL, then HIGH findings (within a severity: highest score first), at most `limit`. */
  async topFindings(repository: string, digest: string, registryId?: string): Promise<ScanFinding[]> {
    const ranked: Ranked[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      let page;
      try {
        page = await this.client.send(
          new DescribeImageScanFindingsCommand({
            ...(registryId ? { registryId } : {}),
            repositoryName: repository,
            imageId: { imageDigest: digest },
            maxResults: PAGE_SIZE,
            ...(nextToken ? { nextToken } : {}),
          }),
        );
      } catch (e) {
        const err = e as Error;
        throw new ScanFindingsError(
          `DescribeImageScanFindings ${repository}@${digest}: ${err.name}: ${err.message}`,
          repository,
          digest,
          { cause: e },
        );
      }
      const status = page.imageScanStatus?.status;
      if (status && !READABLE.has(status))
        throw new ScanFindingsError(
          `the scan of ${repository}@${digest} is ${status}${page.imageScanStatus?.description ? ` (${page.imageScanStatus.description})` : ''}: no findings to read`,
          repository,
          digest,
        );
      for (const f of page.imageScanFindings?.findings ?? []) {
        const r = basic(f);
        if (r) ranked.push(r);
      }
      for (const f of page.imageScanFindings?.enhancedFindings ?? []) {
        const r = enhanced(f);
        if (r) ranked.push(r);
      }
      nextToken = page.nextToken;
    } while (nextToken && ++pages < MAX_PAGES);
    return ranked
      .sort(
        (a, b) =>
          SEVERITY_RANK[a.finding.severity] - SEVERITY_RANK[b.finding.severity] ||
          b.score - a.score ||
          a.finding.id.localeCompare(b.finding.id),
      )
      .slice(0, this.limit)
      .map((r) => r.finding);
  }
}

/** A basic-scanning finding: the CVE in `name`, the package in the `package_name`/`package_version` attributes. */
function basic(f: ImageScanFinding): Ranked | undefined {
  const severity = f.severity?.toUpperCase();
  if (!severity || !(severity in SEVERITY_RANK) || !f.name) return undefined;
  const attr = (key: string) => f.attributes?.find((a) => a.key === key)?.value;
  const score = Number(attr('CVSS3_SCORE') ?? attr('CVSS2_SCORE') ?? NaN);
  const pkg = attr('package_name');
  const version = attr('package_version');
  return {
    finding: {
      id: f.name,
      severity,
      ...(pkg ? { package: pkg } : {}),
      ...(version ? { version } : {}),
      ...(f.uri ? { uri: f.uri } : {}),
    },
    score: Number.isFinite(score) ? score : 0,
  };
}

/** An enhanced (Inspector) finding: the CVE and first vulnerable package in `packageVulnerabilityDetails`. */
function enhanced(f: EnhancedImageScanFinding): Ranked | undefined {
  const severity = f.severity?.toUpperCase();
  const details = f.packageVulnerabilityDetails;
  const id = details?.vulnerabilityId ?? f.title ?? f.findingArn;
  if (!severity || !(severity in SEVERITY_RANK) || !id) return undefined;
  const p = details?.vulnerablePackages?.[0];
  const uri = details?.sourceUrl ?? f.remediation?.recommendation?.url;
  return {
    finding: {
      id,
      severity,
      ...(p?.name ? { package: p.name } : {}),
      ...(p?.version ? { version: p.version } : {}),
      ...(p?.fixedInVersion && p.fixedInVersion !== NO_FIX ? { fixedIn: p.fixedInVersion } : {}),
      ...(uri ? { uri } : {}),
    },
    score: f.score ?? 0,
  };
}
