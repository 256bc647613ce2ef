/**
 * A lost registry restored: many small images that share their base layers, restored by one
 * `imagevault restore --all` next to what a script would otherwise run, a loop of `skopeo copy`, one process per
 * image. Both go into a registry started empty for each measurement, and every image must arrive under its digest.
 */
import { readFileSync } from 'node:fs';
import { LayoutBuilder, pushBlob, pushManifest, type BuiltImage } from '../fixtures';
import { measure, median, type RssProbe } from './measure';
import { registryDigest, type Testbed } from './testbed';

/** The shape: 100 images, each a shared base (two layers) plus a small layer of its own. */
export const BULK_IMAGES = 100;
const BASE_LAYER_BYTES = [4 * 1024 * 1024, 2 * 1024 * 1024];
const OWN_LAYER_BYTES = 256 * 1024;
/** How many times faster than the loop of skopeo copies the issue asks the bulk restore to be. */
export const BULK_TARGET = 2;

export interface BulkImages {
  /** The OCI layout holding every image, named `img-NNN` (what the skopeo loop copies from). */
  layoutDir: string;
  images: BuiltImage[];
  /** Bytes of every image counted in full (what a restore moves if nothing were shared). */
  bytes: number;
  /** Bytes of the distinct blobs (what a restore that skips shared blobs moves). */
  uniqueBytes: number;
}

export interface BulkRow {
  images: number;
  bytes: number;
  uniqueBytes: number;
  runs: number;
  oursSeconds: number;
  skopeoSeconds: number;
  /** skopeo loop / ours: how many times faster ours is. */
  speedup: number;
  oursPeakRssMiB: number;
  skopeoPeakRssMiB: number;
  target: { speedupAtLeast: number; pass: boolean };
}

const repoOf = (i: number) => `bulk/img-${String(i).padStart(3, '0')}`;

/** Builds the images in `dir` and pushes them to `registry` as bulk/img-NNN:1 (blobs once, over plain HTTP). */
export async function pushBulkImages(registry: string, dir: string, count: number): Promise<BulkImages> {
  const b = new LayoutBuilder(dir);
  const base = [];
  for (const [i, size] of BASE_LAYER_BYTES.entries())
    base.push(await b.layer({ sizeBytes: size, gzip: true, seed: `bench/bulk/base-${i}` }));
  const images: BuiltImage[] = [];
  for (let i = 0; i < count; i++) {
    const own = await b.layer({ sizeBytes: OWN_LAYER_BYTES, gzip: true, seed: `bench/bulk/own-${i}` });
    images.push(await b.image({ name: `img-${String(i).padStart(3, '0')}`, layers: [...base, own] }));
  }
  const sizes = new Map<string, number>();
  let bytes = 0;
  for (const [i, img] of images.entries()) {
    const blobs = [img.config, ...img.layers];
    for (const blob of blobs) {
      sizes.set(blob.digest, blob.size);
      await pushBlob(registry, repoOf(i), blob.digest, readFileSync(b.blobPath(blob.digest)));
    }
    await pushManifest(registry, repoOf(i), '1', img.mediaType, img.manifestBytes);
    sizes.set(img.digest, img.size);
    bytes += img.size + blobs.reduce((n, blob) => n + blob.size, 0);
  }
  const uniqueBytes = [...sizes.values()].reduce((n, s) => n + s, 0);
  return { layoutDir: dir, images, bytes, uniqueBytes };
}

export interface BulkContext {
  tb: Testbed;
  probe: RssProbe;
  work: string;
  env: NodeJS.ProcessEnv;
  /** argv of our CLI, up to and including its global options. */
  cli: string[];
}

/**
 * Snapshots every image into `vault` (one CLI process), then times `runs` rounds of both restores, alternating which
 * goes first.
 */
export async function measureBulk(
  ctx: BulkContext,
  bulk: BulkImages,
  vault: string,
  runs: number,
): Promise<BulkRow> {
  const refs = bulk.images.map((_img, i) => `${ctx.tb.registry}/${repoOf(i)}:1`);
  await measure([...ctx.cli, '--store', vault, 'snapshot', ...refs], {
    probe: ctx.probe,
    scratch: ctx.work,
    env: ctx.env,
  });
  const times = { ours: [] as number[], skopeo: [] as number[] };
  const rss = { ours: 0, skopeo: 0 };
  const once = async (side: 'ours' | 'skopeo') => {
    const target = ctx.tb.freshRegistry();
    try {
      const argv =
        side === 'ours'
          ? [...ctx.cli, '--store', vault, 'restore', '--all', '--prefix', 'bulk/', '--to', target.registry]
          : ['bash', '-c', skopeoLoop(bulk, target.registry)];
      const m = await measure(argv, {
        probe: ctx.probe,
        scratch: ctx.work,
        env: ctx.env,
        timeoutSeconds: 1800,
      });
      times[side].push(m.seconds);
      rss[side] = Math.max(rss[side], m.peakRss / (1024 * 1024));
      for (const [i, img] of bulk.images.entries()) {
        const got = await registryDigest(target.registry, repoOf(i), '1');
        if (got !== img.digest)
          throw new Error(`${side}'s bulk restore left ${repoOf(i)}:1 as ${got}, expected ${img.digest}`);
      }
    } finally {
      target.stop();
    }
  };
  for (let r = 0; r < runs; r++) {
    for (const side of r % 2 === 0 ? (['ours', 'skopeo'] as const) : (['skopeo', 'ours'] as const))
      await once(side);
  }
  const oursSeconds = median(times.ours);
  const skopeoSeconds = median(times.skopeo);
  const speedup = skopeoSeconds / oursSeconds;
  return {
    images: bulk.images.length,
    bytes: bulk.bytes,
    uniqueBytes: bulk.uniqueBytes,
    runs,
    oursSeconds,
    skopeoSeconds,
    speedup,
    oursPeakRssMiB: rss.ours,
    skopeoPeakRssMiB: rss.skopeo,
    target: { speedupAtLeast: BULK_TARGET, pass: speedup >= BULK_TARGET },
  };
}

/** One skopeo process per image, one after the other, as a restore script would run them. */
function skopeoLoop(bulk: BulkImages, registry: string): string {
  const layout = bulk.layoutDir.replace(/'/g, `'\\''`);
  const copies = bulk.images.map(
    (img, i) =>
      `skopeo copy --quiet --dest-tls-verify=false 'oci:${layout}:${img.name}' docker://${registry}/${repoOf(i)}:1`,
  );
  return `set -e\n${copies.join('\n')}\n`;
}
