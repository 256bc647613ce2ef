import type { ImageRecord, Vault } from '../content';
import { Reference, type ImageManifest } from '../oci';
import { loadPlatforms, type PlatformImage } from './base';
import { VaultFirstSource } from './source';
import { createdBy, diffLines, diffLayers, layerInfos, type ImageConfig, type LayerChange } from './diff';
import { BASE_EXTENSION, type BaseRecord, type BaseRef } from './types';

/*
 * Build drift, at push time: the same tag rebuilt on the same base reference (`ruby:2.7`), but the base reference
 * now names different content. Which base layer positions changed, and how the base's history reads old vs new.
 */

export interface HistoryDiff {
  /** `created_by` of the old image's entries (in the range compared). */
  old: string[];
  new: string[];
  /** Unified-style lines: `- ` only in the old, `+ ` only in the new, `  ` in both. */
  diff: string[];
}

export interface BuildDriftSide {
  /** The pushed image (index or manifest) digest. */
  digest: string;
  /** The image's manifest for the platform. */
  manifestDigest: string;
  base: BaseRef;
}

/** What the build-drift alert is made of. Positions are 0-based; the base's layers come first. */
export interface BuildDrift {
  kind: 'build-drift';
  repository: string;
  tag: string;
  platform: string;
  previous: BuildDriftSide;
  current: BuildDriftSide;
  /** Changes within the base's layer positions: what the base moving did. */
  layers: LayerChange[];
  /** Changes in the image's own layers (after the base). */
  ownLayers: LayerChange[];
  /** The base's history entries, old vs new. */
  history: HistoryDiff;
  /** The image's own history entries (after the base's), old vs new. */
  ownHistory: HistoryDiff;
}

/** One platform of a pushed image, with the base recorded for it. */
export interface PushedPlatform {
  digest: string;
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  base?: BaseRef;
}

/**
 * The drift between two pushes of a tag for one platform, or undefined when there is none: both built on a base
 * with the same (tagged) reference, whose platform manifest differs. Pure: manifests and configs in, report out.
 */
export function buildDrift(
  image: { repository: string; tag: string; platform: string },
  previous: PushedPlatform,
  current: PushedPlatform,
): BuildDrift | undefined {
  const [a, b] = [previous.base, current.base];
  if (!a || !b || !a.reference || a.reference !== b.reference) return undefined;
  if (a.manifestDigest === b.manifestDigest || !a.verified || !b.verified) return undefined;
  const oldLayers = layerInfos(previous.manifest, previous.config);
  const newLayers = layerInfos(current.manifest, current.config);
  const baseEnd = Math.max(a.layers, b.layers);
  const oldHistory = createdBy(previous.config.history ?? []);
  const newHistory = createdBy(current.config.history ?? []);
  const oldEnd = a.historyEntries ?? 0;
  const newEnd = b.historyEntries ?? 0;
  return {
    kind: 'build-drift',
    ...image,
    previous: { digest: previous.digest, manifestDigest: previous.manifestDigest, base: a },
    current: { digest: current.digest, manifestDigest: current.manifestDigest, base: b },
    layers: diffLayers(oldLayers, newLayers, 0, baseEnd),
    ownLayers: diffLayers(oldLayers, newLayers, baseEnd),
    history: historyDiff(oldHistory.slice(0, oldEnd), newHistory.slice(0, newEnd)),
    ownHistory: historyDiff(oldHistory.slice(oldEnd), newHistory.slice(newEnd)),
  };
}

function historyDiff(old: string[], now: string[]): HistoryDiff {
  return { old, new: now, diff: diffLines(old, now) };
}

/** The base record stored in an image record, if any. */
export function baseRecordOf(record: ImageRecord | undefined): BaseRecord | undefined {
  const b = record?.extensions?.[BASE_EXTENSION] as BaseRecord | undefined;
  return b && Array.isArray(b.platforms) ? b : undefined;
}

/**
 * Compares a new push of `repository:tag` with the previous push of the tag that has a base record (pushes
 * snapshotted before base detection existed are passed over): one BuildDrift per platform whose base moved.
 * Reads only the vault. Call it after the new image's record (with its base) is written.
 */
export async function compareWithPrevious(
  vault: Vault,
  repository: string,
  tag: string,
  newRecord: ImageRecord,
): Promise<BuildDrift[]> {
  const newBase = baseRecordOf(newRecord);
  if (!newBase) return [];
  const digest = newRecord.descriptor.digest;
  const pushes = (await vault.history(repository, tag)).filter((o) => o.action === 'push');
  // Only pushes before this one: when the new push is already in the history, what came after it is not older.
  const at = pushes.map((o) => o.descriptor.digest).lastIndexOf(digest);
  const before = (at >= 0 ? pushes.slice(0, at) : pushes).filter((o) => o.descriptor.digest !== digest);
  let previous: ImageRecord | undefined;
  for (const o of before.reverse()) {
    const record = await vault.image(repository, o.descriptor.digest);
    if (baseRecordOf(record)) {
      previous = record;
      break;
    }
  }
  const oldBase = baseRecordOf(previous);
  if (!previous || !oldBase) return [];
  const source = new VaultFirstSource(vault);
  let oldImages: PlatformImage[] | undefined;
  let newImages: PlatformImage[] | undefined;
  const out: BuildDrift[] = [];
  for (const now of newBase.platforms) {
    const then = oldBase.platforms.find((p) => p.platform === now.platform);
    const [a, b] = [then?.chain[0], now.chain[0]];
    if (!then || !a || !b || a.reference !== b.reference || a.manifestDigest === b.manifestDigest) continue;
    oldImages ??= await loadPlatforms(source, vaultRef(repository, previous.descriptor.digest));
    newImages ??= await loadPlatforms(source, vaultRef(repository, digest));
    const oldImage = oldImages.find((p) => p.manifestDigest === then.manifestDigest);
    const newImage = newImages.find((p) => p.manifestDigest === now.manifestDigest);
    if (!oldImage || !newImage) continue;
    const drift = buildDrift(
      { repository, tag, platform: now.platform },
      { ...pushed(oldImage, previous.descriptor.digest), base: a },
      { ...pushed(newImage, digest), base: b },
    );
    if (drift) out.push(drift);
  }
  return out;
}

/** The vault source reads by digest only; the registry part of this reference is never contacted. */
function vaultRef(repository: string, digest: string): Reference {
  return Reference.of('vault.invalid', repository, digest);
}

function pushed(p: PlatformImage, digest: string): PushedPlatform {
  return { digest, manifestDigest: p.manifestDigest, manifest: p.manifest, config: p.config };
}
