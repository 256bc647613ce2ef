import type { TagObservation, Vault } from '../content';
import type { InUse, InUseEntry } from '../content/inventory';
import { ecrRegistryHost } from '../registry';
import {
  RepositoryFilter,
  reconcileEvent,
  type EventQueue,
  type ImageActionEvent,
  type ReconcileMode,
} from '../events';
import { ProvenanceLog, refreshProvenance, type LogRetention } from '../provenance';
import type { Alert, AlertPublisher, ReconcileGap } from '../alerts';
import { pulledFrom } from './deletion-guard';
import { SILENT_LOG, type Log } from './log';

/*
 * Reconcile: compare ECR with the vault and enqueue what the event path missed. ECR events are best effort, and
 * images pushed before imagevault was deployed never had one; this is also the backfill.
 */

/**
 * ECR image archiving: DescribeImages without a status filter lists ACTIVE images only, so an archived image (and
 * one being restored from the archive, ACTIVATING) would look deleted. ANY lists them all; these two are present
 * in ECR but cannot be pulled until restored, so they are neither deleted nor snapshotted.
 */
const NOT_PULLABLE: ReadonlySet<string> = new Set(['ARCHIVED', 'ACTIVATING']);

/** More gaps than this in one run are sent as one alert listing them all, not one mail each. */
export const DEFAULT_MAX_GAP_ALERTS = 10;

/** An image as ECR's DescribeImages lists it (the fields reconcile reads). */
export interface ImageDetail {
  readonly imageDigest?: string;
  readonly imageTags?: readonly string[];
  readonly imagePushedAt?: Date;
  /** ACTIVE, ARCHIVED or ACTIVATING (see NOT_PULLABLE). */
  readonly imageStatus?: string;
}

/** A repository of the registry: its name and the account (registry id) it lives in. */
export interface Repo {
  readonly name: string;
  readonly account: string;
}

/**
 * What reconcile reads of ECR: every repository of the registry, every image of one, archived ones included.
 * lib/aws/ecr-images.ts reads them with the SDK.
 */
export interface EcrReader {
  repositories(): AsyncIterable<Repo>;
  images(repository: Repo): AsyncIterable<ImageDetail>;
}

export interface ReconcileDeps {
  readonly ecr: EcrReader;
  readonly queue: EventQueue;
  readonly vault: Vault;
  readonly publisher: AlertPublisher;
  /** The region of the ECR client (events and alerts name it). */
  readonly region: string;
  /** @default RepositoryFilter.ALL */
  readonly repositories?: RepositoryFilter;
  /** @default nothing logged (lambdas/reconcile.ts passes a Powertools Logger) */
  readonly logger?: Log;
  /**
   * Images pushed this recently are left to their own push event, which is probably still on its way: enqueueing
   * them too would only duplicate work, and alerting would be a false alarm. @default 900 (15 minutes)
   */
  readonly gracePeriodSeconds?: number;
  /** @default DEFAULT_MAX_GAP_ALERTS */
  readonly maxGapAlerts?: number;
  /** @default `<account>.dkr.ecr.<region>.amazonaws.com` */
  readonly registryFor?: (account: string, region: string) => string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Rewrite the vault's OCI index.json at the end of the run (lib/services/snapshot-events.ts says why here). @default true */
  readonly writeLayoutIndex?: boolean;
  /**
   * Ask again what provenance records left pending (replication, the CloudTrail identity): nothing else calls back
   * when those change. @default true
   */
  readonly refreshProvenance?: boolean;
  /** Object Lock on provenance entries the refresh appends. @default none (the bucket's default retention) */
  readonly provenanceRetention?: LogRetention;
  /**
   * The in-use inventory: a digest running now that ECR no longer has at all is sent to the snapshot queue as a
   * DELETE, for the deletion guard there (lib/services/deletion-guard.ts). @default none: not checked
   */
  readonly inUse?: InUse;
}

export interface ReconcileSummary {
  readonly mode: ReconcileMode;
  /** Protected repositories walked. */
  readonly repositories: number;
  /** Images (manifests, tagged or not) seen in them. */
  readonly images: number;
  /** Messages put on the snapshot queue. */
  readonly enqueued: number;
  /** Tags whose ECR digest the vault's history does not record as current. */
  readonly gaps: number;
  /** Tags the vault held that ECR no longer has (deleted without an event): recorded and alerted. */
  readonly deleted: number;
  /** Images skipped because they were pushed within the grace period. */
  readonly recent: number;
  /** Provenance entries appended because a pending answer changed (replicated, identity now unknown). */
  readonly provenanceUpdated: number;
  /** Running digests ECR no longer has, sent to the deletion guard. */
  readonly inUseDeleted: number;
}

export class Reconciler {
  private readonly logger: Log;
  private readonly repositories: RepositoryFilter;
  private readonly registryFor: (account: string, region: string) => string;
  private readonly now: () => Date;
  /** Alerts of the current run that could not be published. */
  private unpublished = 0;

  constructor(private readonly deps: ReconcileDeps) {
    this.logger = deps.logger ?? SILENT_LOG;
    this.repositories = deps.repositories ?? RepositoryFilter.ALL;
    this.registryFor = deps.registryFor ?? ecrRegistryHost;
    this.now = deps.now ?? (() => new Date());
  }

  /** refreshProvenance over every protected repository's log; a failure is logged, not fatal to the run. */
  private async refreshProvenance(now: Date): Promise<number> {
    let appended = 0;
    const log = ProvenanceLog.of(this.deps.vault);
    for (const repository of await log.repositories()) {
      if (!this.repositories.matches(repository)) continue;
      try {
        const r = await refreshProvenance(this.deps.vault, repository, {
          now,
          retention: this.deps.provenanceRetention,
        });
        appended += r.appended;
        if (r.appended > 0) this.logger.info('provenance updated', { ...r });
      } catch (e) {
        this.logger.error('provenance refresh failed', { repository, error: (e as Error).message });
      }
    }
    return appended;
  }

  async run(mode: ReconcileMode): Promise<ReconcileSummary> {
    const started = this.now();
    this.unpublished = 0;
    const notBefore = started.getTime() - (this.deps.gracePeriodSeconds ?? 900) * 1000;
    const gaps: ReconcileGap[] = [];
    let repositories = 0;
    let images = 0;
    let enqueued = 0;
    let recent = 0;
    let archived = 0;
    const seen = new Map<string, Repo>();
    let deleted = 0;
    let inUseDeleted = 0;
    const running = await this.runningDigests();
    for await (const repo of this.protectedRepositories()) {
      repositories++;
      seen.set(repo.name, repo);
      const pending: ImageActionEvent[] = [];
      const ecrTags = new Set<string>();
      const ecrDigests = new Set<string>();
      for await (const image of this.images(repo)) {
        images++;
        for (const t of image.imageTags ?? []) ecrTags.add(t);
        if (!image.imageDigest) continue;
        ecrDigests.add(image.imageDigest);
        if (image.imageStatus && NOT_PULLABLE.has(image.imageStatus)) {
          archived++;
          continue;
        }
        if (image.imagePushedAt && image.imagePushedAt.getTime() > notBefore) {
          recent++;
          continue;
        }
        const found = await this.compare(repo, image, mode, started);
        pending.push(...found.events);
        gaps.push(...found.gaps);
      }
      const gone = this.goneWhileRunning(repo, running, ecrDigests);
      deleted += await this.deletedTags(repo, ecrTags, started, gone);
      pending.push(...this.guardEvents(repo, gone, started));
      inUseDeleted += gone.size;
      if (pending.length > 0) {
        await this.deps.queue.send(pending);
        enqueued += pending.length;
        this.logger.info('enqueued images missing from the vault', {
          repository: repo.name,
          enqueued: pending.length,
        });
      }
    }
    // A protected repository the vault holds but ECR no longer lists was deleted with all its tags. The account is
    // the one the other repositories live in (one registry per reconcile).
    const account = seen.values().next().value?.account;
    if (account) {
      for (const name of await this.deps.vault.repositories()) {
        if (!seen.has(name) && this.repositories.matches(name)) {
          const repo = { name, account };
          const gone = this.goneWhileRunning(repo, running, new Set());
          deleted += await this.deletedTags(repo, new Set(), started, gone);
          const guard = this.guardEvents(repo, gone, started);
          if (guard.length > 0) await this.deps.queue.send(guard);
          enqueued += guard.length;
          inUseDeleted += gone.size;
        }
      }
    }
    await this.alert(gaps, started);
    if (this.deps.writeLayoutIndex ?? true) await this.deps.vault.writeLayoutIndex();
    const provenanceUpdated =
      (this.deps.refreshProvenance ?? true) ? await this.refreshProvenance(started) : 0;
    const summary = {
      mode,
      repositories,
      images,
      enqueued,
      gaps: gaps.length,
      deleted,
      recent,
      provenanceUpdated,
      inUseDeleted,
    };
    this.logger.info('reconciled', { ...summary, archived });
    if (this.unpublished > 0)
      this.logger.error('alerts not published this run', { unpublished: this.unpublished });
    return summary;
  }

  /** What to enqueue for one ECR image, and which of its tags are gaps. */
  private async compare(
    repo: Repo,
    image: ImageDetail,
    mode: ReconcileMode,
    now: Date,
  ): Promise<{ events: ImageActionEvent[]; gaps: ReconcileGap[] }> {
    const digest = image.imageDigest!;
    const vault = this.deps.vault;
    const events: ImageActionEvent[] = [];
    const gaps: ReconcileGap[] = [];
    const event = (tag?: string) =>
      reconcileEvent({
        account: repo.account,
        region: this.deps.region,
        repository: repo.name,
        digest,
        tag,
        time: now,
      });
    for (const tag of image.imageTags ?? []) {
      const latest: TagObservation | undefined = await vault.latest(repo.name, tag);
      if (latest?.action === 'push' && latest.descriptor.digest === digest) continue;
      // Enqueued so the history records the tag at its current digest (and the image is snapshotted if missing).
      events.push(event(tag));
      // A tag the vault never saw is a missed event on a schedule, but just an older image in a backfill.
      if (latest || mode === 'scheduled') {
        gaps.push({
          image: {
            registry: this.registryFor(repo.account, this.deps.region),
            repository: repo.name,
            tag,
            digest,
          },
          ...(image.imagePushedAt && { pushedAt: image.imagePushedAt.toISOString() }),
          ...(latest && { vault: { digest: latest.descriptor.digest, observedAt: latest.observedAt } }),
        });
      }
    }
    // An untagged image (a multi-arch child, an image whose tag moved on) is enqueued by digest when missing.
    if (events.length === 0 && !(await vault.image(repo.name, digest))) events.push(event());
    return { events, gaps };
  }

  /**
   * Registry drift: tags the vault last saw pushed that ECR no longer has, deleted without a DELETE event reaching
   * us. Each is recorded as a delete (so it is reported once) and alerted with the snapshot to restore from.
   */
  private async deletedTags(
    repo: Repo,
    ecrTags: Set<string>,
    now: Date,
    goneWhileRunning: ReadonlySet<string>,
  ): Promise<number> {
    const vault = this.deps.vault;
    let count = 0;
    for (const tag of await vault.tags(repo.name)) {
      if (ecrTags.has(tag)) continue;
      const last = await vault.latest(repo.name, tag);
      if (last?.action !== 'push') continue;
      await vault.recordTag({
        repository: repo.name,
        tag,
        action: 'delete',
        descriptor: last.descriptor,
        observedAt: now.toISOString(),
        source: { kind: 'reconcile', detail: 'tag no longer in ECR' },
      });
      count++;
      // Its digest runs and is gone: the deletion guard's critical alert names this tag, one mail instead of two.
      if (goneWhileRunning.has(last.descriptor.digest)) continue;
      const record = await vault.image(repo.name, last.descriptor.digest);
      await this.publish({
        kind: 'registry-drift',
        image: {
          registry: this.registryFor(repo.account, this.deps.region),
          repository: repo.name,
          tag,
          digest: last.descriptor.digest,
        },
        change: 'deleted',
        detectedAt: now.toISOString(),
        ...(record && {
          lastSnapshot: { digest: record.descriptor.digest, snapshottedAt: record.lastSnapshotAt },
        }),
        store: vault.url,
      });
    }
    if (count > 0) this.logger.warn('tags deleted without an event', { repository: repo.name, tags: count });
    return count;
  }

  /**
   * Every (repository, digest, workload) running now, by repository; empty without an inventory. An
   * inventory that cannot be read is logged and checks nothing this run: the guard refuses to answer short, and
   * the rest of the run (snapshots, drift) must still happen.
   */
  private async runningDigests(): Promise<Map<string, InUseEntry[]>> {
    const out = new Map<string, InUseEntry[]>();
    if (!this.deps.inUse) return out;
    try {
      for (const e of await this.deps.inUse.inUseSince(new Date(0))) {
        if (e.running) out.set(e.repository, [...(out.get(e.repository) ?? []), e]);
      }
    } catch (e) {
      this.logger.error('in-use inventory unreadable; deletions of running images not checked this run', {
        error: (e as Error).message,
      });
    }
    return out;
  }

  /** The running digests of a repository that ECR does not list at all (its list was read whole). */
  private goneWhileRunning(
    repo: Repo,
    running: Map<string, InUseEntry[]>,
    ecrDigests: ReadonlySet<string>,
  ): Set<string> {
    const registry = this.registryFor(repo.account, this.deps.region);
    const gone = new Set<string>();
    for (const e of running.get(repo.name) ?? []) {
      if (!ecrDigests.has(e.digest) && pulledFrom(e, registry)) gone.add(e.digest);
    }
    if (gone.size > 0)
      this.logger.warn('running images gone from ECR', { repository: repo.name, digests: [...gone] });
    return gone;
  }

  /**
   * One DELETE per running digest gone from ECR, onto the snapshot queue: the snapshot function's deletion guard
   * alerts and (with autoRestoreInUse) restores it, where the registry clients and the push grant are. Sent again
   * by every run while the digest stays gone and running: a running image nobody can pull again is an outage
   * waiting for the next task start. A restored one is in ECR's list again and not sent.
   */
  private guardEvents(repo: Repo, gone: ReadonlySet<string>, now: Date): ImageActionEvent[] {
    return [...gone].map((digest) =>
      reconcileEvent({
        account: repo.account,
        region: this.deps.region,
        repository: repo.name,
        digest,
        time: now,
        action: 'DELETE',
      }),
    );
  }

  private async alert(gaps: ReconcileGap[], at: Date): Promise<void> {
    if (gaps.length === 0) return;
    const reconciledAt = at.toISOString();
    const base = { kind: 'reconcile-gap' as const, reconciledAt, store: this.deps.vault.url };
    const max = this.deps.maxGapAlerts ?? DEFAULT_MAX_GAP_ALERTS;
    this.logger.warn('reconcile gaps', { gaps: gaps.length });
    // Every gap on its own line: a summary alert lists only the first ones and points here for the rest.
    for (const g of gaps) {
      this.logger.warn('reconcile gap', {
        reconciledAt,
        repository: g.image.repository,
        tag: g.image.tag,
        digest: g.image.digest,
        vaultDigest: g.vault?.digest,
      });
    }
    if (gaps.length > max) {
      await this.publish({ ...base, gaps });
      return;
    }
    for (const gap of gaps) await this.publish({ ...base, gaps: [gap] });
  }

  /**
   * An alert that cannot be published is logged, not thrown: the run's other work (the index, the provenance
   * refresh) must still happen, and a retried run would only enqueue and alert everything again.
   */
  private async publish(alert: Alert): Promise<void> {
    try {
      await this.deps.publisher.publish(alert);
    } catch (e) {
      this.unpublished++;
      this.logger.error('could not publish an alert', { kind: alert.kind, error: (e as Error).message });
    }
  }

  private async *protectedRepositories(): AsyncIterable<Repo> {
    for await (const r of this.deps.ecr.repositories()) if (this.repositories.matches(r.name)) yield r;
  }

  private images(repo: Repo): AsyncIterable<ImageDetail> {
    return this.deps.ecr.images(repo);
  }
}
