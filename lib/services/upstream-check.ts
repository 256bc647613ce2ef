import type { Timeouts } from '../content/timeouts';
import type { Vault } from '../content/vault';
import {
  UpstreamWatcher,
  type UpstreamCheckReport,
  type UpstreamMoved,
  type UpstreamResult,
} from '../drift/upstream';
import { NewerVersionsCheck } from '../drift/newer-versions';
import { VERSION_WATCH_DEFAULTS, type VersionWatchRules } from '../drift/version-rules';
import { ecrRegistryHost, type CredentialProvider, type RetryOptions } from '../registry';
import type { AlertPublisher, UpstreamMovedAlert } from '../alerts';
import { SILENT_LOG, type Log } from './log';
import { runNewerVersions, type NewerVersionsSummary } from './newer-digest';

/*
 * The scheduled upstream check: one UpstreamWatcher pass over every upstream base in use, each new old → new
 * transition published once as an `upstream-moved` alert. Built from its dependencies so that tests run it against
 * a directory vault and a local registry; lib/aws/handlers/upstream.ts makes it a Lambda handler.
 */

export interface UpstreamCheckDeps {
  readonly vault: Vault;
  readonly publisher: AlertPublisher;
  /** The vault as the CLI's `--store` (`s3://bucket/prefix`), quoted in the alert's restore command. */
  readonly store: string;
  /** Credentials for private upstreams. @default anonymous */
  readonly credentials?: CredentialProvider;
  /**
   * The ECR registry host the affected images are pushed to, for the alert's restore command.
   * @default the check's argument (the handler derives it from the invocation's function ARN)
   */
  readonly registry?: string;
  /** @default nothing logged (the handler passes a Powertools Logger) */
  readonly logger?: Log;
  /** @default false (plain HTTP only to loopback registries) */
  readonly insecure?: boolean;
  /** The registry client's retry policy. @default the client's */
  readonly retry?: RetryOptions;
  /** The registry clients' request and idle timeouts. @default the clients' */
  readonly timeouts?: Timeouts;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /**
   * Which upstream repositories are watched for newer versions, per vault repository prefix; `{}` turns the watch
   * and its digest off. @default every upstream base, tags listed daily (VERSION_WATCH_DEFAULTS.rules)
   */
  readonly versionRules?: VersionWatchRules;
  /** Days between two newer-versions digests. @default 7 */
  readonly digestDays?: number;
}

/** What a run returns (and logs): counts per status, alerts, and the requests made upstream. */
export interface UpstreamCheckSummary {
  checkedAt: string;
  references: number;
  current: number;
  moved: number;
  deferred: number;
  failed: number;
  alerts: { sent: number; alreadySent: number; notSent: number };
  requests: { head: number; get: number };
  /** Newer versions of the bases: compared, found, and whether the digest went out. */
  versions?: NewerVersionsSummary;
}

/** One run; `registry`: the ECR host the affected images are pushed to, for the alerts' restore command. */
export type UpstreamCheck = (registry?: string) => Promise<UpstreamCheckSummary>;

/** The `upstream-moved` alert of a watcher finding. */
export function upstreamMovedAlertOf(
  moved: UpstreamMoved,
  context: { registry?: string; store: string },
): UpstreamMovedAlert {
  return {
    kind: 'upstream-moved',
    reference: moved.reference,
    oldDigest: moved.oldDigest,
    newDigest: moved.newDigest,
    platforms: moved.platforms,
    affected: moved.affected,
    ...(moved.diff ? { diff: moved.diff } : {}),
    detectedAt: moved.detectedAt,
    ...(context.registry ? { registry: context.registry } : {}),
    store: context.store,
  };
}

/** `arn:aws:lambda:<region>:<account>:function:<name>` → the account's ECR host in that region. */
export function ecrRegistryFromFunctionArn(arn: string | undefined): string | undefined {
  const m = arn === undefined ? null : /^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):function:/.exec(arn);
  return m ? ecrRegistryHost(m[2], m[1]) : undefined;
}

/** Counts per status of a check report. */
export function summarise(report: UpstreamCheckReport): UpstreamCheckSummary {
  const count = (status: UpstreamResult['status']) =>
    report.results.filter((r) => r.status === status).length;
  const moves = report.results.flatMap((r) => (r.status === 'moved' ? r.moves : []));
  const alerts = (a: 'sent' | 'already-sent' | 'not-sent') => moves.filter((m) => m.alert === a).length;
  return {
    checkedAt: report.checkedAt,
    references: report.results.length,
    current: count('current'),
    moved: count('moved'),
    deferred: count('deferred'),
    failed: count('failed'),
    alerts: { sent: alerts('sent'), alreadySent: alerts('already-sent'), notSent: alerts('not-sent') },
    requests: { ...report.requests },
  };
}

/**
 * The scheduled check: checks every upstream base in use and publishes each new transition once. A reference
 * that fails is logged and counted (the next run tries again); the run itself fails only when the vault cannot
 * be read or an alert cannot be published (then the transition stays unalerted and is retried next run).
 */
export function createUpstreamCheck(deps: UpstreamCheckDeps): UpstreamCheck {
  const logger = deps.logger ?? SILENT_LOG;
  return async (registry = deps.registry) => {
    const watcher = new UpstreamWatcher({
      vault: deps.vault,
      credentials: deps.credentials ?? (async () => undefined),
      insecure: deps.insecure,
      retry: deps.retry,
      timeouts: deps.timeouts,
      now: deps.now,
      notify: async (moved) => {
        logger.warn('upstream tag moved', {
          reference: moved.reference,
          oldDigest: moved.oldDigest,
          newDigest: moved.newDigest,
          affected: moved.affected.length,
        });
        await deps.publisher.publish(upstreamMovedAlertOf(moved, { registry, store: deps.store }));
      },
    });
    const report = await watcher.check();
    for (const r of report.results) {
      if (r.status === 'failed')
        logger.error('upstream check failed', { reference: r.reference, error: r.error });
      if (r.status === 'deferred')
        logger.warn('upstream check deferred', { reference: r.reference, reason: r.reason });
    }
    const rules = deps.versionRules ?? VERSION_WATCH_DEFAULTS.rules;
    const versions = await runNewerVersions({
      check: new NewerVersionsCheck({
        vault: deps.vault,
        rules,
        credentials: deps.credentials ?? (async () => undefined),
        insecure: deps.insecure,
        retry: deps.retry,
        timeouts: deps.timeouts,
        now: deps.now,
      }),
      rules,
      vault: deps.vault,
      publisher: deps.publisher,
      store: deps.store,
      now: (deps.now ?? (() => new Date()))(),
      digestDays: deps.digestDays,
    });
    const summary = { ...summarise(report), versions };
    logger.info('upstream check done', { ...summary });
    return summary;
  };
}
