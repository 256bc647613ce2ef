/**
 * What drift detection records and compares. Kept in the vault's per-image record under
 * `extensions.base` (see ImageRecord in lib/content/vault.ts), one entry per platform of the image.
 */

/** How a base was found, most trusted first. */
export type BaseMethod = 'annotation' | 'provenance' | 'candidate' | 'previous-push';

export interface BaseRef {
  /** Normalised reference with its tag, e.g. `docker.io/library/ruby:2.7`; undefined when only a digest is known. */
  reference?: string;
  /** The base's index (multi-platform) digest, when known. */
  indexDigest?: string;
  /** The base's platform manifest digest the image was built on. */
  manifestDigest: string;
  /** How many of the image's layers are the base's (its diff_ids are a prefix of the image's). */
  layers: number;
  method: BaseMethod;
  /** True when the base's diff_ids were checked to be a strict prefix of the image's. */
  verified: boolean;
  /** `registry/repository` of the base (or the vault repository, for previous-push), even when no tag is known. */
  repository?: string;
  /** Where the claim came from: `manifest annotation`, `index annotation`, `config label`, `slsa v0.2`, ... */
  evidence?: string;
  /** How many of the image's config history entries are the base's (its layer steps and metadata steps). */
  historyEntries?: number;
  /** Why a claim was not taken (failed verification, inherited label, base unreachable). */
  reason?: string;
}

export interface PlatformBase {
  /** `os/arch[/variant]`, e.g. `linux/amd64`. */
  platform: string;
  /** The image's own manifest for this platform. */
  manifestDigest: string;
  /** The nearest base first, then its base, and so on (app → internal base → ruby). Empty when none was found. */
  chain: BaseRef[];
  /** Claims (annotations, labels, provenance) that failed verification, with `verified: false` and a reason. */
  rejected?: BaseRef[];
}

/** `extensions.base` of an ImageRecord. */
export interface BaseRecord {
  detectedAt: string;
  platforms: PlatformBase[];
}

export const BASE_EXTENSION = 'base';
