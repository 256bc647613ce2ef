import type { Vault } from '../content';
import {
  Inventory,
  mergeSightings,
  placementLabel,
  type Gap,
  type Placement,
  type ScanRecord,
  type Sighting,
  type SourceResult,
} from '../content/inventory';
import { Digest, Reference } from '../oci';
import type { Registries } from '../registry';
import { snapshotImage } from './snapshot-image';

/*
 * The in-use inventory scan: ask each source (ECS, Lambda, Kubernetes — adapters in lib/aws and lib/kubernetes)
 * what runs, name every running image by repository and digest, record the scan in the vault, and snapshot at once
 * any running digest the vault does not hold. The CLI (`imagevault inventory`) and a scheduled Lambda call this
 * with their own scanners; nothing here knows an SDK.
 */

/** One container (or function) running an image, as its platform names it. */
export interface RunningImage {
  /**
   * The platform's name for what runs: a Kubernetes `imageID` (`docker-pullable://repo@sha256:…`, `repo@sha256:…`,
   * or a bare `sha256:…`), a Lambda `ResolvedImageUri`, an ECS container's `image`.
   */
  image: string;
  /** The digest, where the platform gives it apart (ECS `imageDigest`). */
  digest?: string;
  /** The image as the workload asked for it (a pod spec's `image`): used when `image` names no repository. */
  requested?: string;
  placement: Placement;
}

/** What one source runs; `errors` name what could not be listed (the source then counts as failed). */
export interface SourceScan {
  running: RunningImage[];
  errors: string[];
}

/** A place images run: ECS or Lambda in one region, one Kubernetes cluster. */
export interface InventoryScanner {
  /** `ecs:<region>`, `lambda:<region>`, `kubernetes:<context>`. */
  readonly source: string;
  /** Everything the source runs. Rejects when the source cannot be listed at all. */
  scan(): Promise<SourceScan>;
}

/** Snapshots one image into the vault by its digest (the snapshot use case, as the CLI runs it). */
export type SnapshotGap = (reference: Reference) => Promise<void>;

export interface InventoryScanDeps {
  readonly vault: Vault;
  readonly scanners: readonly InventoryScanner[];
  /** How a running digest the vault lacks is snapshotted. @default none: gaps are reported only */
  readonly snapshot?: SnapshotGap;
  readonly now?: () => Date;
  /** One line per step, for progress on stderr. */
  readonly progress?: (line: string) => void;
}

/** One running (repository, digest), where it runs, and whether the vault held it before the scan. */
export interface RunningDigest {
  repository: string;
  digest: string;
  where: string[];
  held: boolean;
}

export interface InventoryReport {
  key: string;
  startedAt: string;
  finishedAt: string;
  sources: SourceResult[];
  running: RunningDigest[];
  gaps: Gap[];
}

/** A running image by repository and digest, or why it cannot be named so. */
export type ParsedRunningImage =
  { repository: string; digest: string; reference: Reference } | { reason: string };

const RUNTIME_SCHEMES = /^(docker-pullable|docker|containerd|cri-o):\/\//;

/**
 * Names a running image by repository and digest, the way snapshots name it: the registry host is dropped (the
 * vault keys by repository path), Docker Hub short names are spelled out (`nginx` → `library/nginx`).
 */
export function parseRunningImage(
  r: Pick<RunningImage, 'image' | 'digest' | 'requested'>,
): ParsedRunningImage {
  const named = (text: string, digest?: string): ParsedRunningImage => {
    let ref: Reference;
    try {
      ref = Reference.parse(text);
      if (digest) ref = ref.withDigest(Digest.parse(digest).toString());
    } catch (e) {
      return { reason: (e as Error).message };
    }
    if (!ref.digest) return { reason: `${text} names no digest` };
    return { repository: ref.repository, digest: ref.digest, reference: ref };
  };
  const image = r.image.replace(RUNTIME_SCHEMES, '');
  if (image === '') return { reason: 'the platform names no image yet (not pulled)' };
  if (/^[a-z0-9]+:[a-f0-9]+$/.test(image)) {
    // A bare digest is the runtime's local image id (often the config's digest, not the manifest's): only the
    // requested name can say what it is, and only when that pins a digest.
    if (r.requested?.includes('@')) return named(r.requested);
    return { reason: `${r.image} names no repository (the runtime's local image id)` };
  }
  return named(image, r.digest);
}

/** Scans every source, records the scan in the vault, and snapshots the running digests the vault lacks. */
export async function scanInventory(deps: InventoryScanDeps): Promise<InventoryReport> {
  const now = deps.now ?? (() => new Date());
  const say = deps.progress ?? (() => undefined);
  const startedAt = now().toISOString();
  const sources: SourceResult[] = [];
  const sightings: Sighting[] = [];
  // Sources are independent: one that fails (no credentials, an unreachable cluster) does not stop the others.
  const results = await Promise.all(
    deps.scanners.map(async (s) => {
      try {
        return { scanner: s, scan: await s.scan() };
      } catch (e) {
        return { scanner: s, error: (e as Error).message };
      }
    }),
  );
  for (const { scanner, scan, error } of results) {
    if (!scan) {
      say(`${scanner.source}: FAILED: ${error}`);
      sources.push({ source: scanner.source, ok: false, sightings: 0, error, unresolved: [] });
      continue;
    }
    const unresolved: SourceResult['unresolved'] = [];
    let count = 0;
    for (const r of scan.running) {
      const parsed = parseRunningImage(r);
      if ('reason' in parsed) {
        unresolved.push({
          image: r.image || r.requested || '',
          where: placementLabel(r.placement),
          reason: parsed.reason,
        });
        continue;
      }
      count++;
      sightings.push({
        repository: parsed.repository,
        digest: parsed.digest,
        image: parsed.reference.toString(),
        source: scanner.source,
        placement: r.placement,
      });
    }
    const ok = scan.errors.length === 0;
    sources.push({
      source: scanner.source,
      ok,
      sightings: count,
      ...(ok ? {} : { error: scan.errors.join('; ') }),
      unresolved,
    });
    say(`${scanner.source}: ${count} running${ok ? '' : `, errors: ${scan.errors.join('; ')}`}`);
  }

  const running = new Map<string, RunningDigest & { image: string }>();
  for (const s of mergeSightings(sightings)) {
    const key = `${s.repository}@${s.digest}`;
    const r = running.get(key) ?? {
      repository: s.repository,
      digest: s.digest,
      where: [],
      held: true,
      image: s.image,
    };
    r.where.push(placementLabel(s.placement));
    running.set(key, r);
  }
  const gaps: Gap[] = [];
  for (const r of running.values()) {
    r.held = (await deps.vault.image(r.repository, r.digest)) !== undefined;
    if (r.held) continue;
    const gap: Gap = {
      repository: r.repository,
      digest: r.digest,
      image: r.image,
      where: r.where,
      snapshotted: false,
    };
    if (deps.snapshot) {
      say(`${r.image}: runs in ${r.where.join(', ')} and is not in the vault: snapshotting`);
      try {
        await deps.snapshot(Reference.parse(r.image));
        gap.snapshotted = true;
      } catch (e) {
        gap.error = (e as Error).message;
        say(`${r.image}: snapshot FAILED: ${gap.error}`);
      }
    }
    gaps.push(gap);
  }

  const finishedAt = now().toISOString();
  const record: ScanRecord = { startedAt, finishedAt, sources, sightings, gaps };
  const key = await new Inventory(deps.vault.store).record(record);
  return {
    key,
    startedAt,
    finishedAt,
    sources,
    running: [...running.values()].map(({ image: _image, ...r }) => r),
    gaps,
  };
}

/**
 * The snapshot use case as `imagevault snapshot REPO@DIGEST` runs it (copy, image record, provenance record), for
 * a gap: the one place the inventory reaches it, so it follows that use case wherever it moves.
 */
export function snapshotGapWith(
  vault: Vault,
  registries: Registries,
  options: { concurrency?: number; cloudTrail?: (registry: string) => Promise<boolean> } = {},
): SnapshotGap {
  return async (reference) => {
    // The snapshot use case the CLI's snapshot runs: copy, record, provenance (no base detection: a gap is urgent)
    await snapshotImage(
      { vault, registries, concurrency: options.concurrency },
      {
        reference,
        source: { kind: 'inventory', detail: 'running, not in the vault' },
        cloudTrail: (await options.cloudTrail?.(reference.registry)) ?? false,
      },
    );
  };
}
