import type { Vault } from '../content';
import {
  REFERENCE_DIGEST_ANNOTATION,
  Reference,
  SLSA_PROVENANCE_V1,
  isAttestationManifest,
  isImageManifest,
  isSlsaProvenanceLayer,
  parseManifest,
  platformString,
  type Descriptor,
  type ImageManifest,
  type Index,
} from '../oci';
import {
  commonPrefix,
  createdBy,
  diffIds,
  historyEntriesFor,
  isStrictPrefix,
  parseImageConfig,
  type ImageConfig,
} from './diff';
import {
  RegistrySource,
  VaultFirstSource,
  memoSource,
  type ImageSource,
  type RepositoryOpener,
} from './source';
import type { BaseMethod, BaseRecord, BaseRef, PlatformBase } from './types';

/*
 * Base detection: what each platform of an image is built on, most trusted evidence first, every claim verified
 * by the layer diff_id prefix. Network access goes through ImageSource so that the vault answers first and tests
 * can count what reaches a registry.
 */

export const BASE_NAME_ANNOTATION = 'org.opencontainers.image.base.name';
export const BASE_DIGEST_ANNOTATION = 'org.opencontainers.image.base.digest';

/** Chains longer than this are cut: real ones are 2–3 deep, a longer one is more likely a loop we did not see. */
export const DEFAULT_MAX_DEPTH = 5;
/** Candidate bases per repository prefix (`app/` → [`registry/base/ruby:2.7`, ...]); `''` applies to all. */
export type CandidateBases = Readonly<Record<string, readonly string[]>>;

export interface DetectOptions {
  /** Bases tried when no claim verifies, for repositories under each prefix. @default none */
  readonly candidates?: CandidateBases;
  /** The previous push of the same repository, pinned by digest, for the common-prefix fallback. @default none */
  readonly previous?: Reference;
  /** Bases followed from the image (app → internal base → ruby). @default DEFAULT_MAX_DEPTH */
  readonly maxDepth?: number;
  readonly now?: () => Date;
}

/** One platform of an image, loaded: its manifest, config, and where it sits. */
export interface PlatformImage {
  /** Where the image was read from (its name, and the tag or digest it was asked by). */
  ref: Reference;
  indexDigest?: string;
  index?: Index;
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  platform: string;
  /** BuildKit's attestation manifest for this platform, in the same index. */
  attestation?: Descriptor;
}

/** Loads every platform of `ref` (an index → each image manifest, attestations aside). */
export async function loadPlatforms(source: ImageSource, ref: Reference): Promise<PlatformImage[]> {
  const digest = ref.digest ?? (await source.resolve(ref)).digest;
  const bytes = await source.manifest(ref, digest);
  const node = parseManifest(bytes);
  if (node.kind === 'manifest') return [await loadManifest(source, ref, digest, node.manifest)];
  const index = node.index;
  const attestations = new Map<string, Descriptor>();
  for (const m of index.manifests) {
    const subject = m.annotations?.[REFERENCE_DIGEST_ANNOTATION];
    if (isAttestationManifest(m) && subject) attestations.set(subject, m);
  }
  const out: PlatformImage[] = [];
  for (const m of index.manifests) {
    if (!isImageManifest(m.mediaType) || isAttestation(m)) continue;
    const child = parseManifest(await source.manifest(ref, m.digest), m.mediaType);
    if (child.kind !== 'manifest') continue;
    const image = await loadManifest(
      source,
      ref,
      m.digest,
      child.manifest,
      m.platform && platformString(m.platform),
    );
    out.push({ ...image, indexDigest: digest, index, attestation: attestations.get(m.digest) });
  }
  return out;
}

function isAttestation(d: Descriptor): boolean {
  return isAttestationManifest(d) || platformString(d.platform) === 'unknown/unknown';
}

async function loadManifest(
  source: ImageSource,
  ref: Reference,
  digest: string,
  manifest: ImageManifest,
  platform?: string,
): Promise<PlatformImage> {
  const config = parseImageConfig(await source.blob(ref, manifest.config));
  const own =
    config.os && config.architecture
      ? platformString({ os: config.os, architecture: config.architecture, variant: config.variant })
      : 'unknown';
  return { ref, manifestDigest: digest, manifest, config, platform: platform ?? own };
}

/** The platform `platform` of `ref`: the matching entry of an index (os/arch when no exact match), or the manifest. */
export async function loadPlatform(
  source: ImageSource,
  ref: Reference,
  platform: string,
): Promise<PlatformImage | undefined> {
  const all = await loadPlatforms(source, ref);
  if (all.length === 1 && all[0].indexDigest === undefined) return all[0];
  const osArch = (p: string) => p.split('/').slice(0, 2).join('/');
  return all.find((p) => p.platform === platform) ?? all.find((p) => osArch(p.platform) === osArch(platform));
}

/** A base as some evidence names it, before verification. */
export interface BaseClaim {
  /** A reference: `registry/repo:tag`, `registry/repo@digest` or both. */
  name: string;
  digest?: string;
  /** The base's platform when the evidence says (provenance `?platform=`); else the image's. */
  platform?: string;
  method: BaseMethod;
  evidence: string;
}

/** The OCI base annotations (or labels) as a claim, when `base.name` is there. */
export function claimFromAnnotations(
  annotations: Record<string, string> | null | undefined,
  evidence: string,
): BaseClaim | undefined {
  const name = annotations?.[BASE_NAME_ANNOTATION];
  if (!name) return undefined;
  const digest = annotations?.[BASE_DIGEST_ANNOTATION];
  return { name, ...(digest ? { digest } : {}), method: 'annotation', evidence };
}

interface Material {
  uri?: unknown;
  digest?: Record<string, unknown>;
}

/**
 * The base named by a BuildKit SLSA provenance statement (v0.2 `materials`, v1 `resolvedDependencies`): the
 * first `pkg:docker/` material that is not the Dockerfile frontend.
 */
export function claimFromProvenance(statement: unknown): BaseClaim | undefined {
  const s = statement as {
    predicateType?: string;
    predicate?: { materials?: Material[]; buildDefinition?: { resolvedDependencies?: Material[] } };
  };
  const v1 = s?.predicateType === SLSA_PROVENANCE_V1;
  const materials = (v1 ? s.predicate?.buildDefinition?.resolvedDependencies : s?.predicate?.materials) ?? [];
  for (const m of Array.isArray(materials) ? materials : []) {
    if (typeof m?.uri !== 'string') continue;
    const purl = parseDockerPurl(m.uri);
    if (!purl || isFrontend(purl.reference)) continue;
    const sha = m.digest?.sha256;
    return {
      name: purl.reference.toString(),
      ...(typeof sha === 'string' ? { digest: `sha256:${sha}` } : {}),
      ...(purl.platform ? { platform: purl.platform } : {}),
      method: 'provenance',
      evidence: v1 ? 'slsa v1' : 'slsa v0.2',
    };
  }
  return undefined;
}

/** `pkg:docker/ruby@2.7?platform=linux%2Famd64` → docker.io/library/ruby:2.7 and linux/amd64. */
export function parseDockerPurl(uri: string): { reference: Reference; platform?: string } | undefined {
  if (!uri.startsWith('pkg:docker/')) return undefined;
  let rest = uri.slice('pkg:docker/'.length);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) [rest, query] = [rest.slice(0, q), rest.slice(q + 1)];
  rest = rest.replace(/#.*$/, '');
  const at = rest.lastIndexOf('@');
  const name = decodeURIComponent(at >= 0 ? rest.slice(0, at) : rest);
  const version = at >= 0 ? decodeURIComponent(rest.slice(at + 1)) : undefined;
  const platform = new URLSearchParams(query).get('platform') ?? undefined;
  try {
    const sep = version === undefined ? '' : version.includes(':') ? '@' : ':';
    return { reference: Reference.parse(`${name}${sep}${version ?? ''}`), ...(platform ? { platform } : {}) };
  } catch {
    return undefined;
  }
}

function isFrontend(ref: Reference): boolean {
  return ref.registry === 'docker.io' && /^docker\/dockerfile(-upstream)?$/.test(ref.repository);
}

/** A base found for one image, with the base loaded (to follow the chain). */
interface Found {
  base: BaseRef;
  image?: PlatformImage;
}

/**
 * What each platform of `image` is built on. Claims (manifest/index annotations, BuildKit provenance, config
 * labels) are verified by diff_id prefix; then configured candidates; then the previous push. Chains are followed
 * through each base with the same methods (without the previous-push fallback).
 */
export async function detectBase(
  source: ImageSource,
  image: Reference,
  options: DetectOptions = {},
): Promise<BaseRecord> {
  const detector = new Detector(memoSource(source), options);
  const platforms: PlatformBase[] = [];
  for (const p of await loadPlatforms(detector.source, image)) platforms.push(await detector.platform(p));
  return { detectedAt: (options.now?.() ?? new Date()).toISOString(), platforms };
}

class Detector {
  constructor(
    readonly source: ImageSource,
    private readonly options: DetectOptions,
  ) {}

  async platform(image: PlatformImage): Promise<PlatformBase> {
    const chain: BaseRef[] = [];
    const rejected: BaseRef[] = [];
    const seen = new Set([image.manifestDigest]);
    const maxDepth = this.options.maxDepth ?? DEFAULT_MAX_DEPTH;
    let current: PlatformImage | undefined = image;
    for (let depth = 0; current && depth < maxDepth; depth++) {
      const found = await this.find(current, depth === 0, rejected);
      if (!found || seen.has(found.base.manifestDigest)) break;
      seen.add(found.base.manifestDigest);
      chain.push(found.base);
      current = found.image;
    }
    return {
      platform: image.platform,
      manifestDigest: image.manifestDigest,
      chain,
      ...(rejected.length > 0 ? { rejected } : {}),
    };
  }

  /** The nearest verified base of `image`, most trusted method first; failed claims go to `rejected`. */
  private async find(image: PlatformImage, root: boolean, rejected: BaseRef[]): Promise<Found | undefined> {
    const claims: (BaseClaim | undefined)[] = [
      claimFromAnnotations(image.manifest.annotations, 'manifest annotation'),
      claimFromAnnotations(image.index?.annotations, 'index annotation'),
      await this.provenance(image),
    ];
    for (const claim of claims) {
      if (!claim) continue;
      const found = await this.verify(claim, image);
      if (found.base.verified) return found;
      rejected.push(found.base);
    }
    const candidate = await this.candidate(image);
    const label = claimFromAnnotations(image.config.config?.Labels, 'config label');
    if (label) {
      const found = await this.verify(label, image);
      if (found.base.verified) {
        // Labels are inherited by every image built FROM one: a label naming a farther base than a candidate
        // found is its base's label, not ours. So is one the claimed base carries itself.
        const ownClaim = claimFromAnnotations(found.image?.config.config?.Labels, 'config label');
        const why =
          candidate && candidate.base.layers > found.base.layers
            ? `label inherited: ${candidate.base.reference ?? candidate.base.manifestDigest} is nearer`
            : ownClaim?.name === label.name && (ownClaim.digest ?? '') === (label.digest ?? '')
              ? 'label inherited: the claimed base carries the same claim'
              : undefined;
        if (!why) return found;
        rejected.push({ ...found.base, verified: false, reason: why });
      } else rejected.push(found.base);
    }
    if (candidate) return candidate;
    return root ? this.previousPush(image) : undefined;
  }

  private async provenance(image: PlatformImage): Promise<BaseClaim | undefined> {
    if (!image.attestation) return undefined;
    const node = parseManifest(await this.source.manifest(image.ref, image.attestation.digest));
    if (node.kind !== 'manifest') return undefined;
    for (const layer of node.manifest.layers) {
      if (!isSlsaProvenanceLayer(layer)) continue;
      const statement: unknown = JSON.parse((await this.source.blob(image.ref, layer)).toString('utf8'));
      const claim = claimFromProvenance(statement);
      if (claim) return claim;
    }
    return undefined;
  }

  /** Loads the claimed base and checks that its diff_ids are a strict prefix of the image's. */
  private async verify(claim: BaseClaim, image: PlatformImage): Promise<Found> {
    const unverified = (reason: string, parsed?: Reference): Found => ({
      base: {
        ...(parsed?.tag ? { reference: `${parsed.name}:${parsed.tag}` } : {}),
        ...(parsed ? { repository: parsed.name } : {}),
        manifestDigest: claim.digest ?? parsed?.digest ?? '',
        layers: 0,
        method: claim.method,
        verified: false,
        evidence: claim.evidence,
        reason,
      },
    });
    let parsed: Reference;
    try {
      parsed = Reference.parse(claim.name);
      if (claim.digest) parsed = parsed.withDigest(claim.digest);
    } catch (e) {
      return unverified(`not a reference: ${(e as Error).message}`);
    }
    let base: PlatformImage | undefined;
    try {
      base = await loadPlatform(this.source, parsed, claim.platform ?? image.platform);
    } catch (e) {
      return unverified(`cannot read the base: ${(e as Error).message}`, parsed);
    }
    if (!base) return unverified(`the base has no ${claim.platform ?? image.platform} image`, parsed);
    const found = this.baseRef(base, image, claim.method, parsed);
    found.evidence = claim.evidence;
    if (!found.verified) found.reason = `its ${found.layers} layers are not a strict prefix of the image's`;
    return { base: found, image: base };
  }

  private baseRef(base: PlatformImage, image: PlatformImage, method: BaseMethod, named: Reference): BaseRef {
    const layers = diffIds(base.config).length;
    const history = image.config.history ?? [];
    const own = createdBy(base.config.history ?? []);
    // The base's own history, when the image's starts with it (docker copies it), says where the base ends.
    const copied = own.length > 0 && own.every((c, i) => createdBy(history)[i] === c);
    return {
      ...(named.tag ? { reference: `${named.name}:${named.tag}` } : {}),
      repository: named.name,
      ...(base.indexDigest ? { indexDigest: base.indexDigest } : {}),
      manifestDigest: base.manifestDigest,
      layers,
      method,
      verified: isStrictPrefix(diffIds(base.config), diffIds(image.config)),
      historyEntries: copied ? own.length : historyEntriesFor(history, layers),
    };
  }

  /** The candidate configured for the image's repository with the most layers that are a prefix of the image's. */
  private async candidate(image: PlatformImage): Promise<Found | undefined> {
    let best: Found | undefined;
    for (const name of this.candidatesFor(image.ref)) {
      let ref: Reference;
      let base: PlatformImage | undefined;
      try {
        ref = Reference.parse(name);
        base = await loadPlatform(this.source, ref, image.platform);
      } catch {
        continue; // a candidate that is gone or unreadable is not this image's base
      }
      if (!base || base.manifestDigest === image.manifestDigest) continue;
      const found = this.baseRef(base, image, 'candidate', ref);
      found.evidence = `candidate ${name}`;
      if (found.verified && (!best || found.layers > best.base.layers)) best = { base: found, image: base };
    }
    return best;
  }

  private candidatesFor(ref: Reference): string[] {
    const out: string[] = [];
    for (const [prefix, refs] of Object.entries(this.options.candidates ?? {})) {
      if (ref.repository.startsWith(prefix) || ref.name.startsWith(prefix)) out.push(...refs);
    }
    return [...new Set(out)];
  }

  /** The common layer prefix with the previous push of the repository: what did not change between pushes. */
  private async previousPush(image: PlatformImage): Promise<Found | undefined> {
    const previous = this.options.previous;
    if (
      !previous?.digest ||
      previous.digest === image.indexDigest ||
      previous.digest === image.manifestDigest
    )
      return undefined;
    let prev: PlatformImage | undefined;
    try {
      prev = await loadPlatform(this.source, previous, image.platform);
    } catch {
      return undefined;
    }
    if (!prev) return undefined;
    const ours = diffIds(image.config);
    const n = commonPrefix(diffIds(prev.config), ours);
    if (n === 0 || n >= ours.length) return undefined;
    return {
      base: {
        reference: `${previous.repository}@${previous.digest}`,
        repository: previous.repository,
        ...(prev.indexDigest ? { indexDigest: prev.indexDigest } : {}),
        manifestDigest: prev.manifestDigest,
        layers: n,
        method: 'previous-push',
        verified: true,
        evidence: 'common layers with the previous push',
        historyEntries: historyEntriesFor(image.config.history ?? [], n),
      },
    };
  }
}

/**
 * The previous push of `repository` in the vault, other than `digest`: the tag's last push before it, else the
 * repository's most recently snapshotted other image. Pinned by digest, on `registry`.
 */
export async function previousPush(
  vault: Vault,
  registry: string,
  repository: string,
  tag: string | undefined,
  digest: string,
): Promise<Reference | undefined> {
  if (tag) {
    const pushes = (await vault.history(repository, tag)).filter(
      (o) => o.action === 'push' && o.descriptor.digest !== digest,
    );
    const last = pushes.pop();
    if (last) return Reference.of(registry, repository, last.descriptor.digest);
  }
  const others = (await vault.images(repository)).filter((r) => r.descriptor.digest !== digest);
  others.sort((a, b) =>
    a.lastSnapshotAt < b.lastSnapshotAt ? 1 : a.lastSnapshotAt > b.lastSnapshotAt ? -1 : 0,
  );
  return others[0] && Reference.of(registry, repository, others[0].descriptor.digest);
}

/** The hook the Snapshotter calls after copying an image: detect over the vault first, then the registries. */
export function snapshotBaseDetector(
  vault: Vault,
  registries: RepositoryOpener,
  options: Omit<DetectOptions, 'previous'> = {},
): (image: { reference: Reference; repository: string; tag?: string }) => Promise<BaseRecord> {
  const source = new VaultFirstSource(vault, new RegistrySource(registries));
  return async ({ reference, repository, tag }) => {
    const previous = reference.digest
      ? await previousPush(vault, reference.registry, repository, tag, reference.digest)
      : undefined;
    return detectBase(source, reference, { ...options, previous });
  };
}
