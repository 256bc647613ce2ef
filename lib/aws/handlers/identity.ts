import { Logger } from '@aws-lambda-powertools/logger';
import type { Vault } from '../../content/vault';
import { InvalidPutImageEventError, recordPushIdentity, type LogRetention } from '../../provenance';

export interface IdentityEventDeps {
  readonly vault: Vault;
  /** @default a Powertools Logger (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL from the environment) */
  readonly logger?: Logger;
  /** When enrichment entries are appended. @default the current time */
  readonly now?: () => Date;
  /** Object Lock on each provenance entry. @default none (the bucket's default retention, if any) */
  readonly retention?: LogRetention;
}

export interface IdentityEventResult {
  /**
   * `joined`: the image has provenance and the identity is in its newest entry; `pending`: no provenance yet, the
   * identity waits for the snapshot; `ignored`: not a successful PutImage (a failed call pushed nothing).
   */
  status: 'joined' | 'pending' | 'ignored';
  repository?: string;
  digest?: string;
  /** Why the event was ignored. */
  reason?: string;
}

export type IdentityEventHandler = (event: unknown) => Promise<IdentityEventResult>;

/** What the event names, best effort, for the log line of an event that is ignored. */
function namesOf(event: unknown): { repository?: string; digest?: string; errorCode?: string } {
  const detail = (event as { detail?: Record<string, unknown> } | null)?.detail ?? {};
  const request = (detail.requestParameters ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    repository: str(request.repositoryName),
    digest: str(request.imageDigest),
    errorCode: str(detail.errorCode),
  };
}

/**
 * The handler of the CloudTrail `ecr:PutImage` EventBridge rule (detail-type `AWS API Call via CloudTrail`): records
 * who pushed (repository, digest) — joined to the provenance log when the snapshot has written it, kept pending
 * otherwise (recordProvenance joins it then). A failed PutImage, or an event that is no PutImage record, is
 * ignored with a log line: retrying cannot change it. A vault that cannot be read or written throws, so Lambda
 * retries the event and, after its retries, sends it to the dead-letter queue.
 */
export function createIdentityHandler(deps: IdentityEventDeps): IdentityEventHandler {
  const logger = deps.logger ?? new Logger();
  return async (event) => {
    let result;
    try {
      result = await recordPushIdentity(deps.vault, event, {
        ...(deps.now ? { time: deps.now().toISOString() } : {}),
        retention: deps.retention,
      });
    } catch (e) {
      if (!(e instanceof InvalidPutImageEventError)) throw e;
      const names = namesOf(event);
      const fields = { repository: names.repository, digest: names.digest, reason: e.message };
      if (names.errorCode) logger.info('PutImage failed: nothing was pushed, ignored', fields);
      else logger.error('not a CloudTrail ecr:PutImage event, ignored', fields);
      return {
        status: 'ignored',
        ...(names.repository ? { repository: names.repository } : {}),
        ...(names.digest ? { digest: names.digest } : {}),
        reason: e.message,
      };
    }
    const { identity } = result;
    logger.info(result.status === 'joined' ? 'push identity joined' : 'push identity pending', {
      repository: identity.repository,
      digest: identity.digest,
      pusher: identity.pusher.arn,
      ...(result.entry ? { seq: result.entry.seq } : {}),
    });
    return { status: result.status, repository: identity.repository, digest: identity.digest };
  };
}
