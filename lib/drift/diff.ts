import type { Descriptor, ImageManifest } from '../oci';

/**
 * Pure comparisons of two images' platform manifests and configs: which layer positions differ, and how the
 * config `history` (`created_by`) changed — what a human did by hand with `docker image history`.
 */

/** The parts of an image config (OCI image-spec `config.json`) that drift reads. */
export interface ImageConfig {
  os?: string;
  architecture?: string;
  variant?: string;
  config?: { Labels?: Record<string, string> | null } | null;
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: HistoryEntry[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** One layer as a drift report names it. */
export interface LayerInfo {
  digest: string;
  diffId: string;
  size: number;
}

export interface LayerChange {
  /** 0-based position in the image's layer list (the base's layers come first). */
  position: number;
  old?: LayerInfo;
  new?: LayerInfo;
  change: 'changed' | 'added' | 'removed';
}

/** Parses config bytes, checking only what drift relies on (`rootfs.diff_ids` is a list of strings). */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  const json: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error('image config is not a JSON object');
  const config = json as ImageConfig;
  const ids = config.rootfs?.diff_ids;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((d) => typeof d !== 'string')))
    throw new Error('image config rootfs.diff_ids is not a list of digests');
  return config;
}

export function diffIds(config: ImageConfig): string[] {
  return config.rootfs?.diff_ids ?? [];
}

/** The manifest's layers paired with the config's diff_ids, position by position. */
export function layerInfos(manifest: ImageManifest, config: ImageConfig): LayerInfo[] {
  const ids = diffIds(config);
  return manifest.layers.map((l: Descriptor, i) => ({
    digest: l.digest,
    diffId: ids[i] ?? '',
    size: l.size,
  }));
}

/** True when `base` is a non-empty, strict prefix of `image`: the base's layers, then at least one of our own. */
export function isStrictPrefix(base: readonly string[], image: readonly string[]): boolean {
  return base.length > 0 && base.length < image.length && base.every((d, i) => image[i] === d);
}

/** How many leading entries the two lists share. */
export function commonPrefix(a: readonly string[], b: readonly string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Position-by-position differences of `old` and `now` within [from, to) (`to` defaults to the longer list).
 * Layers are compared by diff_id (the content), so a recompressed but identical layer is not a change.
 */
export function diffLayers(
  old: readonly LayerInfo[],
  now: readonly LayerInfo[],
  from = 0,
  to = Math.max(old.length, now.length),
): LayerChange[] {
  const out: LayerChange[] = [];
  for (let i = from; i < to; i++) {
    const o = old[i];
    const n = now[i];
    if (o && n) {
      if (o.diffId !== n.diffId || (!o.diffId && o.digest !== n.digest))
        out.push({ position: i, old: o, new: n, change: 'changed' });
    } else if (n) out.push({ position: i, new: n, change: 'added' });
    else if (o) out.push({ position: i, old: o, change: 'removed' });
  }
  return out;
}

/**
 * How many history entries of an image are its base's, given how many layers the base has: every entry up to the
 * base's last layer-creating one, plus `extra` (the base's trailing metadata steps, when its own history is known).
 */
export function historyEntriesFor(history: readonly HistoryEntry[], baseLayers: number): number {
  if (baseLayers <= 0) return 0;
  let layers = 0;
  for (let i = 0; i < history.length; i++) {
    if (!history[i].empty_layer) layers++;
    if (layers === baseLayers) return i + 1;
  }
  return history.length;
}

export function createdBy(history: readonly HistoryEntry[]): string[] {
  return history.map((h) => h.created_by ?? h.comment ?? '');
}

/**
 * A line diff in the unified style (`- ` old only, `+ ` new only, `  ` both), from the longest common
 * subsequence: histories are short (tens of entries), so the quadratic table is fine.
 */
export function diffLines(old: readonly string[], now: readonly string[]): string[] {
  const m = old.length;
  const n = now.length;
  const lcs: number[][] = Array.from({ length: m + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = m - 1; i >= 0; i--)
    for (let j = n - 1; j >= 0; j--)
      lcs[i][j] = old[i] === now[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < m && j < n) {
    if (old[i] === now[j]) {
      out.push(`  ${old[i]}`);
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(`- ${old[i++]}`);
    else out.push(`+ ${now[j++]}`);
  }
  while (i < m) out.push(`- ${old[i++]}`);
  while (j < n) out.push(`+ ${now[j++]}`);
  return out;
}
