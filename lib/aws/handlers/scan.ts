import { Logger } from '@aws-lambda-powertools/logger';
import type { Vault } from '../../content/vault';
import {
  InvalidScanEventError,
  recordScan,
  type LogRetention,
  type ScanFindingsSource,
} from '../../provenance';

export interface ScanEventDeps {
  readonly vault: Vault;
  /** Where the details of the most severe findings are read. @default none: severity counts only */
  readonly findings?: ScanFindingsSource;
  /** @default a Powertools Logger (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL from the environment) */
  readonly logger?: Logger;
  /** When enrichment entries are appended. @default the current time */
  readonly now?: () => Date;
  /** Object Lock on each provenance entry. @default none (the bucket's default retention, if any) */
  readonly retention?: LogRetention;
}

export interface ScanEventResult {
  /**
   * `joined`: the image has provenance and its newest entry has the image's newest scan; `pending`: no provenance
   * yet, the scan waits for the snapshot; `ignored`: not a scan result of an ECR image we record.
   */
  status: 'joined' | 'pending' | 'ignored';
  repository?: string;
  digest?: string;
  /** True when a newer scan of the image was recorded before: this event changed nothing. */
  stale?: boolean;
  /** Why the event was ignored. */
  reason?: string;
}

export type ScanEventHandler = (event: unknown) => Promise<ScanEventResult>;

/**
 * The handler of the scan-result EventBridge rules (ECR basic scanning's `ECR Image Scan`, Amazon Inspector's
 * `Inspector2 Scan`): records the image's scan — joined to the provenance log when the snapshot has written it,
 * kept pending otherwise (recordProvenance applies it then). Finding details that cannot be read are noted in the
 * record, not retried. An event that is no scan of an ECR image is ignored with a log line: retrying cannot change
 * it. A vault that cannot be read or written throws, so Lambda retries the event and, after its retries, sends it
 * to the dead-letter queue.
 */
export function createScanHandler(deps: ScanEventDeps): ScanEventHandler {
  const logger = deps.logger ?? new Logger();
  return async (event) => {
    let result;
    try {
      result = await recordScan(deps.vault, event, {
        ...(deps.now ? { time: deps.now().toISOString() } : {}),
        ...(deps.findings ? { findings: deps.findings } : {}),
        retention: deps.retention,
      });
    } catch (e) {
      if (!(e instanceof InvalidScanEventError)) throw e;
      logger.error('not a scan result of an ECR image, ignored', {
        repository: e.repository,
        digest: e.digest,
        reason: e.message,
      });
      return {
        status: 'ignored',
        ...(e.repository ? { repository: e.repository } : {}),
        ...(e.digest ? { digest: e.digest } : {}),
        reason: e.message,
      };
    }
    const { scan, kept } = result;
    const fields = {
      repository: scan.repository,
      digest: scan.digest,
      scanner: scan.scanner,
      scanStatus: scan.scanStatus,
      completedAt: scan.completedAt,
      findings: scan.findings,
      ...(result.entry ? { seq: result.entry.seq } : {}),
    };
    if (result.stale)
      logger.info('scan older than the one recorded, ignored', { ...fields, recorded: kept.completedAt });
    else logger.info(result.status === 'joined' ? 'scan joined' : 'scan pending', fields);
    if (!result.stale && kept.reason && kept.status === 'complete')
      logger.warn('scan recorded without finding details', { ...fields, reason: kept.reason });
    return {
      status: result.status,
      repository: scan.repository,
      digest: scan.digest,
      ...(result.stale ? { stale: true } : {}),
    };
  };
}
