import type { InUseDeletedAlert } from './in-use-deleted-alert';
import type { NewerVersionsAlert } from './newer-versions-alert';
import type { BuildDrift } from '../drift/build-drift';
import type { LayerChange } from '../drift/diff';
import type { AffectedImage, PlatformMove } from '../drift/upstream';

/*
 * Alerts for people (an e-mail subscription reads the subject and the text) and for machines (the JSON at the end
 * of the body, and message attributes an SNS filter policy can match: kind, repository, severity).
 */

/** An image as an alert names it: where it lives in ECR, and what the vault calls it. */
export interface AlertImage {
  /** The ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest: string;
}

export type Severity = 'critical' | 'warning';

/** A snapshot failed on its last attempt; the message goes to the dead-letter queue. */
export interface SnapshotFailedAlert {
  readonly kind: 'snapshot-failed';
  readonly image: AlertImage;
  readonly reason: string;
  readonly attempts: number;
  /** The event that asked for the snapshot. */
  readonly event: { readonly id: string; readonly origin: string; readonly time: string };
  /** The vault, `s3://bucket/prefix`. */
  readonly store: string;
}

/**
 * An event on the snapshot queue could not be read, on its last attempt: whatever image it was about is not being
 * snapshotted from it. Says what was received (an excerpt, credentials removed) so the sender can be found.
 */
export interface EventUnreadableAlert {
  readonly kind: 'event-unreadable';
  readonly messageId: string;
  readonly reason: string;
  readonly attempts: number;
  /** The start of the message body as received. */
  readonly excerpt: string;
  readonly store: string;
}

/** ECR deleted an image (or a tag); the vault keeps everything, and says what to restore. */
export interface ImageDeletedAlert {
  readonly kind: 'image-deleted';
  readonly image: AlertImage;
  readonly deletedAt: string;
  readonly event: { readonly id: string; readonly origin: string };
  /** The newest snapshot of the tag (or of the digest, when the delete named no tag); none: not restorable. */
  readonly lastSnapshot?: { readonly digest: string; readonly snapshottedAt: string };
  readonly store: string;
}

/** A tag in ECR whose digest the vault's history does not record as its latest. */
export interface ReconcileGap {
  readonly image: AlertImage;
  /** When ECR says the image was pushed. */
  readonly pushedAt?: string;
  /** The vault's latest observation of the tag, if it has any. */
  readonly vault?: { readonly digest: string; readonly observedAt: string };
}

/** One gap, or (when a run finds many) all of them in one alert. */
export interface ReconcileGapAlert {
  readonly kind: 'reconcile-gap';
  readonly gaps: readonly ReconcileGap[];
  readonly reconciledAt: string;
  readonly store: string;
}

/** A layer and history comparison of one platform's base, old vs new (lib/drift/diff.ts). */
export interface BaseDiff {
  readonly platform: string;
  readonly layers: readonly LayerChange[];
  /** `diffLines` of the config history's `created_by` entries: `- ` old only, `+ ` new only, `  ` both. */
  readonly history: readonly string[];
}

/** An upstream base tag now points at other content than images in the vault were built on. */
export interface UpstreamMovedAlert {
  readonly kind: 'upstream-moved';
  /** The upstream tag, normalised: `docker.io/library/ruby:2.7`. */
  readonly reference: string;
  readonly oldDigest: string;
  readonly newDigest: string;
  readonly platforms: readonly PlatformMove[];
  readonly affected: readonly AffectedImage[];
  /** Per moved platform, when the watcher could fetch both sides. */
  readonly diff?: readonly BaseDiff[];
  readonly detectedAt: string;
  /** Where the affected images are pushed (ECR host), for the restore command; unknown: a placeholder. */
  readonly registry?: string;
  readonly store: string;
}

/** A new push of a tag was built on the same base reference as the previous push, but on other base content. */
export interface BuildDriftAlert {
  readonly kind: 'build-drift';
  readonly image: AlertImage;
  /** The push it is compared with: the previous push of the tag, or its last known-good one. */
  readonly previous: { readonly digest: string; readonly pushedAt: string };
  readonly base: {
    readonly reference: string;
    readonly platform: string;
    readonly oldDigest: string;
    readonly newDigest: string;
  };
  readonly layers: readonly LayerChange[];
  readonly history: readonly string[];
  readonly detectedAt: string;
  readonly store: string;
}

/**
 * The alert for one platform's build drift, as compareWithPrevious found it: the base's changed layer positions
 * and its history lines, old vs new. `previousPushedAt` is when the compared push was observed.
 */
export function buildDriftAlertOf(
  drift: BuildDrift,
  context: { registry: string; store: string; previousPushedAt: string; detectedAt: string },
): BuildDriftAlert {
  return {
    kind: 'build-drift',
    image: {
      registry: context.registry,
      repository: drift.repository,
      tag: drift.tag,
      digest: drift.current.digest,
    },
    previous: { digest: drift.previous.digest, pushedAt: context.previousPushedAt },
    base: {
      reference: drift.current.base.reference ?? drift.current.base.manifestDigest,
      platform: drift.platform,
      oldDigest: drift.previous.base.manifestDigest,
      newDigest: drift.current.base.manifestDigest,
    },
    layers: drift.layers,
    history: drift.history.diff,
    detectedAt: context.detectedAt,
    store: context.store,
  };
}

/** ECR changed under the vault: a tag moved to a digest with no push record, or an image was deleted. */
export interface RegistryDriftAlert {
  readonly kind: 'registry-drift';
  readonly image: AlertImage;
  readonly change: 'retagged' | 'deleted';
  readonly detectedAt: string;
  /** The snapshot to restore from: what the vault recorded last for the tag (or digest). */
  readonly lastSnapshot?: { readonly digest: string; readonly snapshottedAt: string };
  readonly store: string;
}

export type Alert =
  | SnapshotFailedAlert
  | EventUnreadableAlert
  | ImageDeletedAlert
  | ReconcileGapAlert
  | UpstreamMovedAlert
  | BuildDriftAlert
  | RegistryDriftAlert
  | NewerVersionsAlert
  | InUseDeletedAlert;

/** Sends alerts somewhere people and machines see them (lib/aws/sns-alerts.ts: an SNS topic). */
export interface AlertPublisher {
  publish(alert: Alert): Promise<void>;
}
