import type { CopyEvent } from '../copy';
import type { Vault } from '../content';
import { snapshotBaseDetector, type CandidateBases } from '../drift/base';
import { compareWithPrevious, type BuildDrift } from '../drift/build-drift';
import { recordProvenance, type LogRetention, type RecordProvenanceResult } from '../provenance';
import type { Registries } from '../registry';
import { Snapshotter, type SnapshotRequest, type SnapshotResult } from './snapshot';

/*
 * The snapshot story, told once: copy the image by digest → write its record (with its base) → record the tag →
 * compare the build with the tag's previous push → append the provenance record. The CLI's `snapshot` and the
 * snapshot queue's consumer call this and present what it returns.
 */

export interface SnapshotImageDeps {
  readonly vault: Vault;
  readonly registries: Registries;
  /** Blob transfers at once. @default the copy engine's (4) */
  readonly concurrency?: number;
  /**
   * Find what the image is built on (stored in its record) and compare a newly recorded push of a tag with the one
   * before it (build drift); `candidates` are tried for images that do not say what they were built on.
   * @default none: no base detection, no build drift
   */
  readonly bases?: { readonly candidates?: CandidateBases };
}

export interface SnapshotImageRequest extends SnapshotRequest {
  /** The copy's progress. @default none */
  readonly onEvent?: (event: CopyEvent) => void;
  /**
   * Whether a CloudTrail `ecr:PutImage` can name the pusher (false: the provenance record says the pusher is
   * unknown, and why). @default true
   */
  readonly cloudTrail?: boolean;
  /** Why no PutImage will name a pusher, for an image that arrived without a push here. @default none */
  readonly arrivedWithoutPush?: string;
  /** Object Lock on the provenance entry. @default none (the bucket's default retention, if any) */
  readonly retention?: LogRetention;
}

/** Everything a caller presents of one snapshot. */
export interface SnapshotOutcome extends SnapshotResult {
  /** The build drift of a newly recorded push: one per platform whose base moved under the same reference. */
  readonly drift: readonly BuildDrift[];
  /** The image's provenance record, as appended (or as it already was: `appended` false). */
  readonly provenance: RecordProvenanceResult;
}

export async function snapshotImage(
  deps: SnapshotImageDeps,
  request: SnapshotImageRequest,
): Promise<SnapshotOutcome> {
  const { vault, registries } = deps;
  const { onEvent } = request;
  const snapshotter = new Snapshotter(vault, registries, {
    concurrency: deps.concurrency,
    ...(onEvent && { onEvent: (_ref, e) => onEvent(e) }),
    ...(deps.bases && {
      detectBase: snapshotBaseDetector(vault, registries, { candidates: deps.bases.candidates }),
    }),
  });
  const result = await snapshotter.snapshot(request);
  // Only a push recorded now is compared: a re-run or a second delivery of the same push must not report it again.
  const drift =
    result.tag && result.observation && result.record
      ? await compareWithPrevious(vault, result.repository, result.tag, result.record)
      : [];
  // Written after the tag (the record lists the image's tags); appended only when something about the image is new.
  const provenance = await recordProvenance(vault, result.repository, result.descriptor.digest, {
    registry: request.reference.registry,
    retention: request.retention,
    ...(request.cloudTrail !== undefined && { cloudTrail: request.cloudTrail }),
    push: {
      // An event says when; otherwise when the tag was seen, else when the vault first held the image.
      time:
        request.observedAt ??
        result.observation?.observedAt ??
        result.record?.firstSnapshotAt ??
        new Date().toISOString(),
      tags: result.tag ? [result.tag] : [],
    },
    ...(request.arrivedWithoutPush && { arrivedWithoutPush: request.arrivedWithoutPush }),
  });
  return { ...result, drift, provenance };
}
