import type { Vault } from '../content';
import { canonicalize } from './canonical';
import { PendingIdentities, applyIdentity, parsePutImageEvent, type PushIdentity } from './identity';
import { ProvenanceLog, type LogRetention } from './log';
import {
  PendingScans,
  applyScan,
  parseScanEvent,
  withFindingDetails,
  type ScanFindingsSource,
  type ScanResult,
} from './scan';
import type { LogEntry, ProvenanceStatement } from './types';

/*
 * Enrichment: facts that arrive after the snapshot (who pushed, from CloudTrail; the scan, from ECR/Inspector).
 * Each is kept in its own store first (PendingIdentities, PendingScans), then applyPending appends an entry with
 * everything kept so far applied to the digest's newest entry. Both paths apply both stores, and appendFor rebuilds
 * on a lost race, so a scan and an identity arriving together both end up in the newest entry.
 */

export interface EnrichOptions {
  /** When an enrichment entry is appended. @default now */
  readonly time?: string;
  /** Object Lock on the entry appended. @default none (the bucket's default retention, if any) */
  readonly retention?: LogRetention;
}

/**
 * Applies the kept identity and scan of (repository, digest) to its newest entry and appends the result, unless
 * it says nothing new. `entry` is undefined when the image has no record yet (the snapshot joins them then).
 */
export async function applyPending(
  vault: Vault,
  repository: string,
  digest: string,
  options: EnrichOptions = {},
): Promise<{ entry?: LogEntry; appended: boolean }> {
  const log = ProvenanceLog.of(vault, { retention: options.retention });
  const { entry, appended } = await log.appendFor(
    repository,
    digest,
    async (previous) => {
      if (!previous) return undefined;
      let predicate = previous.statement.predicate;
      const identity = await new PendingIdentities(vault.store).get(repository, digest);
      if (identity) predicate = applyIdentity(predicate, identity);
      const scan = await new PendingScans(vault.store).get(repository, digest);
      if (scan) predicate = applyScan(predicate, scan);
      const statement: ProvenanceStatement = { ...previous.statement, predicate };
      return canonicalize(statement) === canonicalize(previous.statement) ? undefined : statement;
    },
    options.time,
  );
  return { ...(entry ? { entry } : {}), appended };
}

export interface RecordIdentityResult {
  identity: PushIdentity;
  /** `joined`: an enrichment entry was appended (or was already there); `pending`: no record yet, kept for later. */
  status: 'joined' | 'pending';
  entry?: LogEntry;
}

/**
 * What the CloudTrail PutImage path calls. The identity is always kept (see PendingIdentities); when the image
 * already has provenance, a new entry with the identity joined is appended (the earlier one stays, unchanged).
 */
export async function recordPushIdentity(
  vault: Vault,
  cloudTrailPutImage: unknown,
  options: EnrichOptions = {},
): Promise<RecordIdentityResult> {
  const identity = await new PendingIdentities(vault.store).put(parsePutImageEvent(cloudTrailPutImage));
  const { entry } = await applyPending(vault, identity.repository, identity.digest, options);
  return entry ? { identity, status: 'joined', entry } : { identity, status: 'pending' };
}

export interface RecordScanOptions extends EnrichOptions {
  /** Where the details of the most severe findings are read. @default none: counts only */
  readonly findings?: ScanFindingsSource;
}

export interface RecordScanResult {
  /** The scan the event reported, with finding details when they were read. */
  scan: ScanResult;
  /** The image's scan now kept: `scan`, or a newer one kept before it (then `stale` is true). */
  kept: ScanResult;
  /** True when a newer scan of the image was kept already: the event changed nothing. */
  stale: boolean;
  /** `joined`: the newest log entry has the kept scan (appended now or already); `pending`: no record yet. */
  status: 'joined' | 'pending';
  entry?: LogEntry;
  /** True when an enrichment entry was appended. */
  appended: boolean;
}

/**
 * What the scan event path calls. The scan is kept as the image's latest (see PendingScans), with its most severe
 * findings read from `options.findings` when given; when the image already has provenance, an entry with the scan
 * applied is appended (the earlier one stays, unchanged) unless the newest entry already says exactly that.
 * Throws InvalidScanEventError for an event that is no scan result we record.
 */
export async function recordScan(
  vault: Vault,
  scanEvent: unknown,
  options: RecordScanOptions = {},
): Promise<RecordScanResult> {
  const reported = parseScanEvent(scanEvent);
  const pending = new PendingScans(vault.store);
  const have = await pending.get(reported.repository, reported.digest);
  // Details are not read for a scan that cannot replace the one kept, even with them.
  const stale =
    have !== undefined &&
    (have.completedAt > reported.completedAt ||
      (have.completedAt === reported.completedAt && have.top !== undefined));
  const scan = stale ? reported : await withFindingDetails(reported, options.findings);
  const kept = stale ? have : (await pending.put(scan)).kept;
  const result = { scan, kept, stale: kept.completedAt > scan.completedAt };
  const { entry, appended } = await applyPending(vault, kept.repository, kept.digest, options);
  return entry
    ? { ...result, status: 'joined', entry, appended }
    : { ...result, status: 'pending', appended: false };
}
