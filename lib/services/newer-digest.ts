import * as z from 'zod';
import { UPSTREAM_PREFIX } from '../content/keys';
import type { Vault } from '../content/vault';
import type { NewerVersionsCheck, NewerVersionsReport } from '../drift/newer-versions';
import { VERSION_WATCH_DEFAULTS, type VersionWatchRules } from '../drift/version-rules';
import { newerVersionsAlertOf, type AlertPublisher } from '../alerts';

/*
 * When the Upstream Lambda sends the newer-versions digest: at most once per `digestDays` (default weekly), not on
 * every hourly run, and only when some base tag in use has a newer version. What was sent is remembered in the
 * vault, under the watcher's own prefix (the only place the function may write):
 *
 *   imagevault/upstream/_digests/<time>.json
 *
 * `_` starts no registry host, so the key cannot collide with an upstream's state.
 */

export const DIGESTS_PREFIX = `${UPSTREAM_PREFIX}_digests/`;

const SentDigestSchema = z.object({
  sentAt: z.string(),
  bases: z.number().int().nonnegative(),
});
export type SentDigest = z.infer<typeof SentDigestSchema>;

/** The digests sent so far, oldest first. */
export async function sentDigests(vault: Vault): Promise<SentDigest[]> {
  const out: SentDigest[] = [];
  for await (const obj of vault.store.list(DIGESTS_PREFIX)) {
    const bytes = await vault.store.getBytes(obj.key);
    if (!bytes) continue;
    const parsed = SentDigestSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    if (parsed.success) out.push(parsed.data);
  }
  return out.sort((a, b) => (a.sentAt < b.sentAt ? -1 : a.sentAt > b.sentAt ? 1 : 0));
}

export type DigestOutcome =
  { status: 'sent'; bases: number } | { status: 'not-due'; lastSentAt: string } | { status: 'nothing-newer' };

/**
 * Publishes the digest of `report` if the last one went out `digestDays` or more ago (or none did) and a base has
 * a newer version; records it after the publish succeeded, so a failed publish is retried by the next run.
 */
export async function sendDigestIfDue(options: {
  vault: Vault;
  publisher: AlertPublisher;
  report: NewerVersionsReport;
  store: string;
  now: Date;
  /** @default VERSION_WATCH_DEFAULTS.digestDays (7) */
  digestDays?: number;
}): Promise<DigestOutcome> {
  const { vault, report, now } = options;
  const days = options.digestDays ?? VERSION_WATCH_DEFAULTS.digestDays;
  const last = (await sentDigests(vault)).pop();
  if (last && now.getTime() - Date.parse(last.sentAt) < days * 86_400_000)
    return { status: 'not-due', lastSentAt: last.sentAt };
  const alert = newerVersionsAlertOf(report.results, {
    checkedAt: report.checkedAt,
    ...(last ? { since: last.sentAt } : {}),
    store: options.store,
  });
  if (alert.bases.length === 0) return { status: 'nothing-newer' };
  await options.publisher.publish(alert);
  const sentAt = now.toISOString();
  const record: SentDigest = { sentAt, bases: alert.bases.length };
  await vault.store.putBytes(
    `${DIGESTS_PREFIX}${sentAt.replace(/[-:]/g, '').replace('.', '')}.json`,
    Buffer.from(JSON.stringify(record, null, 2) + '\n'),
    { contentType: 'application/json' },
  );
  return { status: 'sent', bases: alert.bases.length };
}

/** What a scheduled run did about newer versions (logged, and returned in the run's summary). */
export interface NewerVersionsSummary {
  /** Base tags compared (listed this run or kept from an earlier listing). */
  compared: number;
  /** Of those, with a newer version of any kind. */
  withNewer: number;
  deferred: number;
  failed: number;
  digest: DigestOutcome['status'] | 'off';
  /** Upstream requests for versions: tag list pages and index GETs (0 inside the interval). */
  requests: { tagPages: number; get: number };
}

/**
 * The newer-versions part of a scheduled upstream run: refreshes the tag lists that are due (none inside the
 * interval: the run then asks upstream nothing more), then sends the digest if it is due. `rules` `{}` turns it off.
 */
export async function runNewerVersions(deps: {
  check: NewerVersionsCheck;
  rules: VersionWatchRules;
  vault: Vault;
  publisher: AlertPublisher;
  store: string;
  now: Date;
  digestDays?: number;
}): Promise<NewerVersionsSummary> {
  if (Object.keys(deps.rules).length === 0)
    return {
      compared: 0,
      withNewer: 0,
      deferred: 0,
      failed: 0,
      digest: 'off',
      requests: { tagPages: 0, get: 0 },
    };
  const report = await deps.check.check();
  const digest = await sendDigestIfDue({ ...deps, report });
  const count = (s: string) => report.results.filter((r) => r.status === s).length;
  return {
    compared: report.results.filter((r) => r.listedAt !== undefined).length,
    withNewer: report.results.filter((r) => r.newer.length > 0).length,
    deferred: count('deferred'),
    failed: count('failed'),
    digest: digest.status,
    requests: { ...report.requests },
  };
}
