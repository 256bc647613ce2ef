import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LayoutBuilder, pushLayout, type BuiltImage } from '../fixtures';

const MiB = 1024 * 1024;

/** One benchmark image: `layers` layers of `layerMiB` MiB of random content each. */
export interface ImageSpec {
  /** Short id used in repository names and the table, e.g. `16x32mib`. */
  id: string;
  layers: number;
  layerMiB: number;
}

export interface BenchImage extends ImageSpec {
  /** The layout in the cache holding it, under the name `image`. */
  layoutDir: string;
  digest: string;
  mediaType: string;
  /** Bytes the copy moves: every layer, the config and the manifest. */
  bytes: number;
  blobs: { digest: string; size: number }[];
}

export function imageSpec(layers: number, layerMiB: number): ImageSpec {
  // Lower case: it is part of repository names.
  const size = layerMiB >= 1024 && layerMiB % 1024 === 0 ? `${layerMiB / 1024}gib` : `${layerMiB}mib`;
  return { id: `${layers}x${size}`, layers, layerMiB };
}

/**
 * Layers are gzip (application/vnd.oci.image.layer.v1.tar+gzip), as real images are, so both tools copy them as they
 * are with no question of whether one of them (re)compresses. The content is AES-CTR noise, which does not compress:
 * a gzip layer is ~0.03 % larger than its tar. Building uses gzip's Huffman-only mode (~175 MiB/s here), once: the
 * layouts are kept in the cache directory, keyed by the sizes and the format version, and reused while every blob is
 * there with its size (the registry re-checks every digest when they are pushed).
 */
const FORMAT = 'v1-gzip';

const MANIFEST_FILE = 'bench-image.json';

export async function cachedImage(
  cacheDir: string,
  spec: ImageSpec,
  log: (msg: string) => void,
): Promise<BenchImage> {
  const dir = path.join(cacheDir, `${FORMAT}-${spec.id}`);
  const cached = readCached(dir, spec);
  if (cached) return cached;
  rmSync(dir, { recursive: true, force: true });
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const total = spec.layers * spec.layerMiB;
  log(`building fixture ${spec.id} (${total} MiB of gzip layers) in ${dir} — once; later runs reuse it`);
  const t0 = Date.now();
  const b = new LayoutBuilder(building);
  const layers = [];
  for (let i = 0; i < spec.layers; i++) {
    layers.push(await b.layer({ sizeBytes: spec.layerMiB * MiB, gzip: true, seed: `bench/${spec.id}/${i}` }));
  }
  const img = await b.image({ name: 'image', layers });
  writeFileSync(path.join(building, MANIFEST_FILE), JSON.stringify(summary(img, spec), null, 2));
  renameSync(building, dir);
  log(`built ${spec.id} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const built = readCached(dir, spec);
  if (!built) throw new Error(`fixture ${spec.id} in ${dir} is incomplete right after building it`);
  return built;
}

function summary(img: BuiltImage, spec: ImageSpec) {
  const blobs = [
    { digest: img.digest, size: img.size },
    { digest: img.config.digest, size: img.config.size },
    ...img.layers.map((l) => ({ digest: l.digest, size: l.size })),
  ];
  return { ...spec, digest: img.digest, mediaType: img.mediaType, blobs };
}

function readCached(dir: string, spec: ImageSpec): BenchImage | undefined {
  const file = path.join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof summary>;
    if (s.layers !== spec.layers || s.layerMiB !== spec.layerMiB) return undefined;
    for (const b of s.blobs) {
      const blob = path.join(dir, 'blobs', 'sha256', b.digest.slice('sha256:'.length));
      if (!existsSync(blob) || statSync(blob).size !== b.size) return undefined;
    }
    return {
      ...spec,
      layoutDir: dir,
      digest: s.digest,
      mediaType: s.mediaType,
      bytes: s.blobs.reduce((n, b) => n + b.size, 0),
      blobs: s.blobs,
    };
  } catch {
    return undefined;
  }
}

/** Pushes the cached layout into `registry` as REPO:TAG with skopeo (digests preserved). */
export async function pushImage(img: BenchImage, target: string): Promise<void> {
  await pushLayout(img.layoutDir, 'image', target);
}
