import * as z from 'zod';
import type { ObjectStore } from '../content';
import { Digest, validateRepository } from '../oci';
import { InvalidScanEventError } from './errors';
import { scanKey } from './log';
import { SEVERITY_ORDER } from './severity';
import {
  MAX_TOP_FINDINGS,
  type ProvenancePredicate,
  type ScanFinding,
  type ScanPredicate,
  type Scanner,
} from './types';

/*
 * The scan results ECR and Amazon Inspector send to EventBridge, with the field names their guides document:
 *  - ECR basic scanning: source `aws.ecr`, detail-type `ECR Image Scan`
 *    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html). detail: `scan-status`
 *    (COMPLETE or FAILED), `repository-name` (the name), `image-digest`, `image-tags`, `finding-severity-counts`.
 *  - ECR enhanced scanning: source `aws.inspector2`, detail-type `Inspector2 Scan`
 *    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-events.html and
 *    https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html). The same detail fields, but
 *    `repository-name` is the repository's ARN and `scan-status` is INITIAL_SCAN_COMPLETE; Inspector sends the same
 *    detail-type for EC2 instances and Lambda functions, which have no repository. Inspector sends it once, after
 *    the initial scan: continuous rescans send per-finding `Inspector2 Finding` events, not read here.
 * Both leave a severity out of `finding-severity-counts` when the image has no finding of it. Neither says when the
 * scan completed: the envelope's `time` stands for it.
 */
export const ECR_SCAN_SOURCE = 'aws.ecr';
export const ECR_SCAN_DETAIL_TYPE = 'ECR Image Scan';
export const INSPECTOR_SOURCE = 'aws.inspector2';
export const INSPECTOR_SCAN_DETAIL_TYPE = 'Inspector2 Scan';

export { SEVERITY_ORDER };
/** The severities whose findings are kept in `top`. */
const TOP_SEVERITIES = new Set(['CRITICAL', 'HIGH']);

/** The scan statuses we record, by scanner; anything else is refused (see parseScanEvent). */
const STATUSES: Record<Scanner, Record<string, 'complete' | 'failed'>> = {
  'ecr-basic': { COMPLETE: 'complete', FAILED: 'failed' },
  inspector: { INITIAL_SCAN_COMPLETE: 'complete' },
};

const ScanDetailSchema = z.looseObject({
  'scan-status': z.string(),
  'repository-name': z.string(),
  'image-digest': z.string(),
  'image-tags': z.array(z.string()).optional(),
  'finding-severity-counts': z.record(z.string(), z.number().int().nonnegative()).optional(),
});

/** An `ECR Image Scan` or `Inspector2 Scan` event as EventBridge delivers it. Unknown fields pass through. */
export const ScanEventSchema = z.looseObject({
  version: z.string().optional(),
  id: z.string().optional(),
  'detail-type': z.string(),
  source: z.string(),
  account: z.string().optional(),
  time: z.string().refine((t) => !Number.isNaN(new Date(t).getTime()), { message: 'not a valid time' }),
  region: z.string().optional(),
  resources: z.array(z.string()).optional(),
  detail: ScanDetailSchema,
});
export type ScanEvent = z.infer<typeof ScanEventSchema>;

/** `arn:aws:ecr:REGION:ACCOUNT:repository/NAME` (other partitions too); NAME may contain slashes. */
const REPOSITORY_ARN = /^arn:aws[a-z-]*:ecr:([a-z0-9-]+):(\d{12}):repository\/(.+)$/;

/** One scan of (repository, digest), from one event. Kept as the image's latest scan (see PendingScans). */
export interface ScanResult {
  repository: string;
  digest: string;
  /** The ECR registry (account) of the repository: from Inspector's repository ARN, else the event's account. */
  registryId?: string;
  region?: string;
  /** Tags the scanner saw on the image. */
  tags: string[];
  scanner: Scanner;
  status: 'complete' | 'failed';
  /** The scanner's own word: COMPLETE, FAILED, INITIAL_SCAN_COMPLETE. */
  scanStatus: string;
  /** When the scan completed: the event's time, as an ISO 8601 UTC string. */
  completedAt: string;
  /** Finding counts by severity, as the event gives them. */
  findings: Record<string, number>;
  /** The most severe findings, when their details were read (see ScanFindingsSource). */
  top?: ScanFinding[];
  /** Why the scan failed, or what of it could not be read. */
  reason?: string;
  /** The EventBridge event id. */
  eventId?: string;
}

/** What an event names, best effort, for the error of an event we cannot record. */
function namesOf(detail: unknown): { repository?: string; digest?: string } {
  const d = (typeof detail === 'object' && detail !== null ? detail : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const repo = str(d['repository-name']);
  return {
    repository: repo ? (REPOSITORY_ARN.exec(repo)?.[3] ?? repo) : undefined,
    digest: str(d['image-digest']),
  };
}

const named = (n: { repository?: string; digest?: string }) =>
  n.repository || n.digest ? ` for ${n.repository ?? '(no repository)'}@${n.digest ?? '(no digest)'}` : '';

/**
 * Parses an ECR basic scan (`ECR Image Scan`) or Amazon Inspector (`Inspector2 Scan`) event for an ECR image.
 * Throws InvalidScanEventError, naming the repository and digest when the event does, for any other event, a scan
 * status not listed in STATUSES, or an invalid repository name or digest.
 */
export function parseScanEvent(event: unknown): ScanResult {
  if (typeof event !== 'object' || event === null)
    throw new InvalidScanEventError(
      `not an EventBridge event: got ${event === null ? 'null' : typeof event}`,
    );
  const e = event as Record<string, unknown>;
  const names = namesOf(e.detail);
  const fail = (reason: string): never => {
    throw new InvalidScanEventError(
      `not a scan result we can record${named(names)}: ${reason}`,
      names.repository,
      names.digest,
    );
  };
  let scanner: Scanner;
  if (e.source === ECR_SCAN_SOURCE && e['detail-type'] === ECR_SCAN_DETAIL_TYPE) scanner = 'ecr-basic';
  else if (e.source === INSPECTOR_SOURCE && e['detail-type'] === INSPECTOR_SCAN_DETAIL_TYPE)
    scanner = 'inspector';
  else
    return fail(
      `source ${JSON.stringify(e.source)} with detail-type ${JSON.stringify(e['detail-type'])}; expected ` +
        `${ECR_SCAN_SOURCE} "${ECR_SCAN_DETAIL_TYPE}" or ${INSPECTOR_SOURCE} "${INSPECTOR_SCAN_DETAIL_TYPE}"`,
    );
  const detail = (e.detail ?? {}) as Record<string, unknown>;
  if (scanner === 'inspector' && !('repository-name' in detail) && !('image-digest' in detail)) {
    const what = Array.isArray(e.resources) ? e.resources.join(', ') : 'an unnamed resource';
    return fail(`an Inspector scan of ${what}, which is not an ECR image`);
  }
  const parsed = ScanEventSchema.safeParse(event);
  if (!parsed.success)
    return fail(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  const { detail: d, ...envelope } = parsed.data;
  const scanStatus = d['scan-status'];
  const known = STATUSES[scanner];
  const status = Object.hasOwn(known, scanStatus) ? known[scanStatus] : undefined;
  if (!status)
    return fail(
      `scan-status ${scanStatus} is not one we record (${Object.keys(STATUSES[scanner]).join(', ')} for ${scanner})`,
    );
  let repository = d['repository-name'];
  let registryId = envelope.account;
  let region = envelope.region;
  const arn = REPOSITORY_ARN.exec(repository);
  if (arn) {
    [, region, registryId, repository] = arn;
  } else if (scanner === 'inspector') {
    return fail(`repository-name ${JSON.stringify(repository)} is not an ECR repository ARN`);
  }
  try {
    validateRepository(repository);
  } catch (err) {
    return fail((err as Error).message);
  }
  const digest = d['image-digest'];
  if (!Digest.isValid(digest)) return fail(`image-digest ${JSON.stringify(digest)} is not a valid digest`);
  const findings = d['finding-severity-counts'] ?? {};
  return {
    repository,
    digest,
    ...(registryId ? { registryId } : {}),
    ...(region ? { region } : {}),
    tags: [...new Set(d['image-tags'] ?? [])].sort(),
    scanner,
    status,
    scanStatus,
    completedAt: new Date(envelope.time).toISOString(),
    findings: Object.fromEntries(orderedCounts(findings)),
    ...(status === 'failed'
      ? {
          reason: `${scannerName(scanner)} reported ${scanStatus}; the event gives no cause (aws ecr describe-image-scan-findings shows it)`,
        }
      : {}),
    ...(envelope.id ? { eventId: envelope.id } : {}),
  };
}

export const scannerName = (scanner: Scanner) =>
  scanner === 'ecr-basic' ? 'ECR basic scanning' : 'Amazon Inspector';

const rank = (severity: string) => {
  const i = (SEVERITY_ORDER as readonly string[]).indexOf(severity.toUpperCase());
  return i < 0 ? SEVERITY_ORDER.length : i;
};

/** Severity counts most severe first; severities we do not know after, and Inspector's TOTAL last. */
export function orderedCounts(counts: Record<string, number>): Array<[string, number]> {
  const key = (k: string) => (k === 'TOTAL' ? SEVERITY_ORDER.length + 1 : rank(k));
  return Object.entries(counts).sort(([a], [b]) => key(a) - key(b) || a.localeCompare(b));
}

/** How many findings are at `severity` or more severe, by the counts (TOTAL is not a severity). */
export function findingsAtLeast(counts: Record<string, number> | undefined, severity: string): number {
  const limit = rank(severity);
  return Object.entries(counts ?? {})
    .filter(([k]) => k !== 'TOTAL' && rank(k) <= limit)
    .reduce((n, [, v]) => n + v, 0);
}

/**
 * The findings kept in a record: CRITICAL, then HIGH, at most `limit`. The sort is stable, so a source's own
 * order within a severity (Inspector's score) is kept.
 */
export function rankFindings(findings: readonly ScanFinding[], limit = MAX_TOP_FINDINGS): ScanFinding[] {
  return findings
    .filter((f) => TOP_SEVERITIES.has(f.severity.toUpperCase()))
    .sort((a, b) => rank(a.severity) - rank(b.severity))
    .slice(0, limit);
}

/**
 * Reads the details of a scan's most severe findings. Implemented over ECR's DescribeImageScanFindings by
 * lib/aws/scan-findings (EcrScanFindings), which serves both basic and enhanced (Inspector) findings.
 */
export interface ScanFindingsSource {
  /**
   * The CRITICAL and HIGH findings of the image's latest scan, most severe first, at most MAX_TOP_FINDINGS.
   * Throws when they cannot be read (no permission, the scan is not complete, the image is gone).
   */
  topFindings(repository: string, digest: string, registryId?: string): Promise<ScanFinding[]>;
}

/**
 * The scan with its most severe findings read from `source`. Never throws: when the details cannot be read, the
 * counts are kept and `reason` says why there are no details.
 */
export async function withFindingDetails(scan: ScanResult, source?: ScanFindingsSource): Promise<ScanResult> {
  if (!source || scan.status !== 'complete') return scan;
  const severe = findingsAtLeast(scan.findings, 'HIGH');
  if (severe === 0) return { ...scan, top: [] };
  let top: ScanFinding[];
  try {
    top = rankFindings(await source.topFindings(scan.repository, scan.digest, scan.registryId));
  } catch (e) {
    return {
      ...scan,
      reason: `finding details could not be read (${(e as Error).message}): only the severity counts are recorded`,
    };
  }
  if (top.length === 0)
    return {
      ...scan,
      reason: `the counts list ${severe} CRITICAL or HIGH findings, but DescribeImageScanFindings returned none (rescanned since?): only the severity counts are recorded`,
    };
  return { ...scan, top };
}

/**
 * True when `next` should replace `have` as an image's scan: it completed later, or at the same time (the same event
 * delivered again) with finding details that `have` lacks. A scan replaces an unknown one.
 */
export function supersedes(
  next: Pick<ScanPredicate, 'completedAt' | 'top'>,
  have: Pick<ScanPredicate, 'completedAt' | 'top'>,
): boolean {
  if (!have.completedAt) return true;
  if (!next.completedAt) return false;
  if (next.completedAt !== have.completedAt) return next.completedAt > have.completedAt;
  return next.top !== undefined && have.top === undefined;
}

/** The predicate's `scan` member for a scan result. */
export function scanPredicateOf(scan: ScanResult): ScanPredicate {
  return {
    status: scan.status,
    ...(scan.reason ? { reason: scan.reason } : {}),
    scanner: scan.scanner,
    completedAt: scan.completedAt,
    findings: scan.findings,
    ...(scan.top ? { top: scan.top } : {}),
    ...(scan.eventId ? { eventId: scan.eventId } : {}),
  };
}

/** The predicate with the scan applied. Pure; a scan older than the one the predicate holds leaves it unchanged. */
export function applyScan(predicate: ProvenancePredicate, scan: ScanResult): ProvenancePredicate {
  const next = scanPredicateOf(scan);
  if (predicate.scan.status !== 'unknown' && !supersedes(next, predicate.scan)) return predicate;
  return { ...predicate, scan: next };
}

/** Applies a scan event to a provenance predicate. Pure; throws InvalidScanEventError for another event. */
export function joinScan(predicate: ProvenancePredicate, scanEvent: unknown): ProvenancePredicate {
  return applyScan(predicate, parseScanEvent(scanEvent));
}

/**
 * The latest scan of each (repository, digest). A scan may complete before the snapshot writes the image's record:
 * it waits here and recordProvenance applies it then. It is kept after, so a rebuilt statement (a re-snapshot) has
 * it again. Only the newest scan is kept (see supersedes): events arrive out of order, and a late delivery of an
 * older scan must not replace a newer one. Read-then-write, like PendingIdentities: two scans of one image
 * completing within the same instant could race, which scanners do not do.
 */
export class PendingScans {
  constructor(readonly store: ObjectStore) {}

  async get(repository: string, digest: string): Promise<ScanResult | undefined> {
    const bytes = await this.store.getBytes(scanKey(repository, digest));
    return bytes ? (JSON.parse(bytes.toString('utf8')) as ScanResult) : undefined;
  }

  /** Keeps the scan unless the one kept already is as new; returns the scan kept afterwards. */
  async put(scan: ScanResult): Promise<{ kept: ScanResult; replaced: boolean }> {
    const have = await this.get(scan.repository, scan.digest);
    if (have && !supersedes(scan, have)) return { kept: have, replaced: false };
    await this.store.putBytes(
      scanKey(scan.repository, scan.digest),
      Buffer.from(JSON.stringify(scan, null, 2) + '\n'),
      { contentType: 'application/json' },
    );
    return { kept: scan, replaced: true };
  }
}
