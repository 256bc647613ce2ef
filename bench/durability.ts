/**
 * What durable directory writes cost: the same snapshot into a directory vault with the store's syncs (file before
 * its rename, directory after) and without them, alternating, in this process, so only the writes differ. Without the
 * syncs is the unsafe setting that exists only to be measured here (DirectoryObjectStore's `durable: false`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { DirectoryObjectStore, Vault } from '../lib/content';
import { Reference } from '../lib/oci';
import { Registries, Snapshotter } from '../lib/services';
import { LayoutBuilder, pushLayout } from '../fixtures';
import { median } from './measure';

export interface DurabilityRow {
  /** What was snapshotted, e.g. `1 × 64 MiB layer`. */
  scenario: string;
  blobs: number;
  bytes: number;
  runs: number;
  /** Median seconds of the snapshot call (resolve, copy, records), with and without the syncs. */
  durableSeconds: number;
  unsyncedSeconds: number;
  /** durable / unsynced: what durability costs (1.00 = nothing). */
  ratio: number;
}

/** Many small blobs: one image of this many 8 KiB layers (the syncs are per file, so this is their worst case). */
export const SMALL_LAYERS = 200;
const SMALL_LAYER_BYTES = 8 * 1024;

/**
 * Pushes the many-small-blobs image to `registry` (built in `work`, not cached: it takes a second) and returns its
 * reference.
 */
export async function pushSmallBlobs(registry: string, work: string): Promise<string> {
  const dir = mkdtempSync(path.join(work, 'small-blobs-'));
  const b = new LayoutBuilder(dir);
  const layers = [];
  for (let i = 0; i < SMALL_LAYERS; i++)
    layers.push(await b.layer({ sizeBytes: SMALL_LAYER_BYTES, seed: `bench/small/${i}` }));
  await b.image({ name: 'image', layers });
  const ref = `${registry}/bench/small-blobs:1`;
  await pushLayout(dir, 'image', ref);
  rmSync(dir, { recursive: true, force: true });
  return ref;
}

/** Snapshots `ref` `runs` times each way into fresh vaults under `work`, alternating which way goes first. */
export async function measureDurability(
  scenario: string,
  ref: string,
  work: string,
  runs: number,
): Promise<DurabilityRow> {
  const registries = new Registries({ credentials: async () => undefined, warn: () => undefined });
  const times: Record<'durable' | 'unsynced', number[]> = { durable: [], unsynced: [] };
  let blobs = 0;
  let bytes = 0;
  try {
    const once = async (durable: boolean) => {
      const dir = mkdtempSync(path.join(work, durable ? 'durable-' : 'unsynced-'));
      try {
        const vault = new Vault(new DirectoryObjectStore(dir, { durable }));
        await vault.init();
        const started = process.hrtime.bigint();
        const r = await new Snapshotter(vault, registries).snapshot({ reference: Reference.parse(ref) });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        blobs = r.copy.blobs.copied + r.copy.manifests.copied;
        bytes = r.copy.bytes.copied;
        times[durable ? 'durable' : 'unsynced'].push(seconds);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    // One untimed snapshot first: connections, tokens and the registry's own caches are then warm for both.
    await once(false);
    times.unsynced = [];
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? [true, false] : [false, true];
      for (const durable of order) await once(durable);
    }
  } finally {
    await registries.get(Reference.parse(ref).registry).close();
  }
  const durableSeconds = median(times.durable);
  const unsyncedSeconds = median(times.unsynced);
  return {
    scenario,
    blobs,
    bytes,
    runs,
    durableSeconds,
    unsyncedSeconds,
    ratio: durableSeconds / unsyncedSeconds,
  };
}
