import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { blobKey, readAll, REF_NAME, type Vault } from '../content';
import { writeTar, type TarEntry } from '../content/tar';
import {
  MediaType,
  Reference,
  isImageManifest,
  isNonDistributable,
  parseManifest,
  platformString,
  type Descriptor,
  type ImageManifest,
  type Platform,
} from '../oci';

export interface DockerArchiveResult {
  /** The archive written. */
  file: string;
  /** The platform image manifest exported (the index entry when the image was an index). */
  manifest: Descriptor;
  /** Digest of the image config: the image ID `docker load` reports. */
  config: string;
  layers: number;
  /** Size of the archive in bytes. */
  bytes: number;
  /** The names in manifest.json, in the familiar form `docker save` writes (`app:1.0`, not `docker.io/library/app:1.0`). */
  repoTags: string[];
}

export interface DockerArchiveOptions {
  /**
   * The name `docker load` tags the image with, e.g. `app:1.0`.
   * @default none: the image loads untagged, known by its config digest
   */
  readonly repoTag?: string;
  /**
   * `os/architecture[/variant]` of the image to take from an index. Ignored when the descriptor is an image
   * manifest: a docker-archive holds one image, and a single manifest is that image whatever its platform.
   * @default 'linux/amd64'
   */
  readonly platform?: string;
}

/** Thrown when an image cannot be exported as a docker-archive; `image` is the digest asked for. */
export class DockerArchiveError extends Error {
  constructor(
    readonly image: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DockerArchiveError';
  }
}

export const DEFAULT_PLATFORM = 'linux/amd64';

/** containers/image refuses configs over 4 MiB (iolimits.MaxConfigBodySize); so do we, before buffering one. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Annotation containerd (and so `docker load` on Docker 25+ with the containerd store) names the image by. */
const CONTAINERD_IMAGE_NAME = 'io.containerd.image.name';

/** One element of manifest.json, as `docker save` writes it and `docker load` / containers/image read it. */
interface ManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
  /** Foreign layers by diff ID, so `docker load` keeps them foreign (a later push leaves them out, as it must). */
  LayerSources?: Record<string, Descriptor>;
}

/**
 * Writes one image from the vault as a docker-archive tar: what `docker save` (Docker 25+) writes and `docker load`
 * and `skopeo copy docker-archive:FILE` read. The archive is also an OCI image layout (oci-layout, index.json, the
 * manifest blob), as Docker 25's is, so `oci-archive:FILE` reads it too.
 *
 * Blobs go in exactly as stored (gzip or plain tar): every docker-archive reader decompresses by sniffing, and
 * keeping the bytes keeps the OCI side of the archive valid. Layers are streamed from the vault straight into the
 * tar with their known size as the entry size, so memory does not grow with the image, and each is verified as it
 * passes: a blob that rotted in the vault fails the export instead of being handed on. The tar is written to a temp
 * file beside `file` and renamed over it only when complete, so `file` is never a partial archive.
 */
export async function exportDockerArchive(
  vault: Vault,
  descriptor: Descriptor,
  file: string,
  options: DockerArchiveOptions = {},
): Promise<DockerArchiveResult> {
  function fail(reason: string, cause?: unknown): never {
    throw new DockerArchiveError(
      descriptor.digest,
      `cannot export ${descriptor.digest} as a docker-archive: ${reason}`,
      { cause },
    );
  }
  let repoTag: RepoTag | undefined;
  try {
    repoTag = options.repoTag === undefined ? undefined : parseRepoTag(options.repoTag);
  } catch (e) {
    fail((e as Error).message, e);
  }

  const {
    desc: manifestDesc,
    bytes: manifestBytes,
    manifest,
  } = await resolveImage(vault, descriptor, options, fail);
  const image =
    manifestDesc.digest === descriptor.digest
      ? descriptor.digest
      : `${descriptor.digest} (${manifestDesc.digest})`;

  if (
    manifest.config.mediaType !== MediaType.OciConfig &&
    manifest.config.mediaType !== MediaType.DockerConfig
  ) {
    fail(`${manifestDesc.digest} is not a container image: its config is ${manifest.config.mediaType}`);
  }
  let configBytes: Buffer;
  try {
    configBytes = await readAll(
      await vault.fetch(manifest.config),
      MAX_CONFIG_BYTES,
      `config ${manifest.config.digest}`,
    );
  } catch (e) {
    fail(`config ${manifest.config.digest}: ${(e as Error).message}`, e);
  }
  const config = parseConfig(configBytes);
  if (!config) fail(`config ${manifest.config.digest} is not an image config with a rootfs.diff_ids list`);
  if (config.diffIds.length !== manifest.layers.length) {
    // containers/image and docker load both pair layers with diff IDs by position and refuse a mismatch.
    fail(
      `manifest ${manifestDesc.digest} lists ${manifest.layers.length} layers but its config has ${config.diffIds.length} diff IDs`,
    );
  }

  // Every blob present before a byte is written: a missing one is a clear message now, not a broken stream later.
  const layerSources: Record<string, Descriptor> = {};
  for (const [i, layer] of manifest.layers.entries()) {
    const present = await vault.exists(layer);
    if (isNonDistributable(layer)) {
      if (!present) {
        fail(
          `layer ${layer.digest} is non-distributable (${layer.mediaType}${layer.urls?.length ? `, from ${layer.urls.join(' ')}` : ''}) ` +
            'and its content is not in the vault; a docker-archive must carry every layer, so it cannot be written',
        );
      }
      layerSources[config.diffIds[i]] = layer;
    } else if (!present) {
      fail(`layer ${layer.digest} is not in the vault (${vault.url})`);
    }
  }

  const item: ManifestItem = {
    Config: blobKey(manifest.config.digest),
    RepoTags: repoTag ? [repoTag.familiar] : [],
    Layers: manifest.layers.map((l) => blobKey(l.digest)),
  };
  if (Object.keys(layerSources).length > 0) item.LayerSources = layerSources;

  const indexEntry: Descriptor = {
    mediaType: manifestDesc.mediaType,
    digest: manifestDesc.digest,
    size: manifestDesc.size,
  };
  const platform = manifestDesc.platform ?? config.platform;
  if (platform) indexEntry.platform = platform;
  if (repoTag) indexEntry.annotations = { [CONTAINERD_IMAGE_NAME]: repoTag.full, [REF_NAME]: repoTag.tag };

  // Blobs first (a layer used twice is written once), then the small JSON files: the order a walk of Docker's save
  // directory gives. No reader depends on it: skopeo and docker load both look entries up by name.
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  const addBlob = (e: TarEntry) => {
    if (seen.has(e.name)) return;
    seen.add(e.name);
    entries.push(e);
  };
  addBlob({ name: blobKey(manifest.config.digest), data: configBytes });
  for (const layer of manifest.layers) addBlob({ name: blobKey(layer.digest), blob: layer });
  addBlob({ name: blobKey(manifestDesc.digest), data: manifestBytes });
  entries.push({
    name: 'index.json',
    data: json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [indexEntry] }),
  });
  entries.push({ name: 'manifest.json', data: json([item]) });
  entries.push({ name: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) });

  const target = path.resolve(file);
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${randomBytes(6).toString('hex')}`,
  );
  try {
    await writeTar(vault, tmp, entries);
    const { size } = await fs.stat(tmp);
    await fs.rename(tmp, target);
    return {
      file: target,
      manifest: manifestDesc,
      config: manifest.config.digest,
      layers: manifest.layers.length,
      bytes: size,
      repoTags: item.RepoTags,
    };
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new DockerArchiveError(
      descriptor.digest,
      `cannot export ${image} as a docker-archive to ${target}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The image manifest to export: the descriptor itself, or the entry of an index for the requested platform. */
async function resolveImage(
  vault: Vault,
  descriptor: Descriptor,
  options: DockerArchiveOptions,
  fail: (reason: string, cause?: unknown) => never,
): Promise<{ desc: Descriptor; bytes: Buffer; manifest: ImageManifest }> {
  const load = async (desc: Descriptor) => {
    const bytes = await vault
      .fetchManifest(desc)
      .catch((e: unknown) => fail(`manifest ${desc.digest}: ${(e as Error).message}`, e));
    try {
      return { bytes, node: parseManifest(bytes, desc.mediaType) };
    } catch (e) {
      return fail(`manifest ${desc.digest}: ${(e as Error).message}`, e);
    }
  };
  const top = await load(descriptor);
  if (top.node.kind === 'manifest')
    return { desc: descriptor, bytes: top.bytes, manifest: top.node.manifest };

  let wanted: WantedPlatform;
  try {
    wanted = parsePlatform(options.platform ?? DEFAULT_PLATFORM);
  } catch (e) {
    fail((e as Error).message, e);
  }
  // Attestation manifests (buildx) sit in the index as unknown/unknown: never an image to run.
  const candidates = top.node.index.manifests.filter(
    (m) =>
      isImageManifest(m.mediaType) &&
      m.platform &&
      !(m.platform.os === 'unknown' && m.platform.architecture === 'unknown'),
  );
  const chosen = selectPlatform(candidates, wanted);
  if (!chosen) {
    const available = [...new Set(candidates.map((m) => platformString(m.platform)))];
    fail(
      `index has no ${options.platform ?? DEFAULT_PLATFORM} image; ` +
        (available.length > 0
          ? `available platforms: ${available.join(', ')}`
          : 'it lists no platform images'),
    );
  }
  const child = await load(chosen);
  if (child.node.kind !== 'manifest')
    fail(`index entry ${chosen.digest} for ${platformString(chosen.platform)} is not an image manifest`);
  return { desc: chosen, bytes: child.bytes, manifest: child.node.manifest };
}

interface WantedPlatform {
  os: string;
  architecture: string;
  variant: string;
  /** Whether the variant was given: `linux/arm` takes any arm image when there is no v7 one. */
  explicitVariant: boolean;
}

function parsePlatform(value: string): WantedPlatform {
  const parts = value.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) {
    throw new Error(`invalid platform "${value}": expected os/architecture[/variant], e.g. linux/arm64/v8`);
  }
  const n = normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
  return { ...n, explicitVariant: parts.length === 3 };
}

/**
 * containerd's normalisation (platforms.Normalize), so that `linux/arm64/v8` finds an arm64 entry written without a
 * variant (and the reverse), and `linux/arm` means arm/v7 — the spellings Docker users type.
 */
function normalizePlatform(p: { os: string; architecture: string; variant?: string }): {
  os: string;
  architecture: string;
  variant: string;
} {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return { os, architecture, variant };
}

function selectPlatform(candidates: Descriptor[], wanted: WantedPlatform): Descriptor | undefined {
  const norm = candidates.map((d) => ({ d, p: normalizePlatform(d.platform!) }));
  const sameArch = norm.filter(({ p }) => p.os === wanted.os && p.architecture === wanted.architecture);
  const exact = sameArch.find(({ p }) => p.variant === wanted.variant);
  if (exact) return exact.d;
  return wanted.explicitVariant ? undefined : sameArch[0]?.d;
}

interface RepoTag {
  /** `app:1.0`: what `docker save` writes in RepoTags. */
  familiar: string;
  /** `docker.io/library/app:1.0`: what containerd names the image. */
  full: string;
  tag: string;
}

function parseRepoTag(value: string): RepoTag {
  const ref = Reference.parse(value);
  if (!ref.tag || ref.digest)
    throw new Error(`invalid repo tag "${value}": expected name:tag (docker load names images by tag)`);
  let familiar = ref.toString();
  if (ref.registry === 'docker.io') {
    familiar = familiar.slice('docker.io/'.length);
    if (familiar.startsWith('library/') && !familiar.slice('library/'.length).includes('/'))
      familiar = familiar.slice('library/'.length);
  }
  return { familiar, full: ref.toString(), tag: ref.tag };
}

/** The parts of an image config an archive needs; undefined when it is not JSON with a list of diff IDs. */
function parseConfig(bytes: Buffer): { diffIds: string[]; platform?: Platform } | undefined {
  let c: { rootfs?: { diff_ids?: unknown }; os?: unknown; architecture?: unknown; variant?: unknown };
  try {
    c = JSON.parse(bytes.toString('utf8')) as typeof c;
  } catch {
    return undefined;
  }
  const ids = c?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) return undefined;
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return { diffIds: ids };
  const platform: Platform = { os: c.os, architecture: c.architecture };
  if (typeof c.variant === 'string') platform.variant = c.variant;
  return { diffIds: ids, platform };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
