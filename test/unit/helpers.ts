import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DirectoryObjectStore, Vault } from '../../lib/content';
import { Digest, MediaType, type Descriptor } from '../../lib/oci';

export function tempDir(prefix = 'imagevault-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function tempVault(): Promise<Vault> {
  const v = new Vault(new DirectoryObjectStore(tempDir()));
  await v.init();
  return v;
}

export function descOf(mediaType: string, data: Buffer): Descriptor {
  return { mediaType, digest: Digest.of(data).toString(), size: data.length };
}

export interface TestImage {
  manifest: Descriptor;
  manifestBytes: Buffer;
  blobs: Map<string, Buffer>;
}

/** A small image written straight into a vault: config + layers + manifest, optionally a subject. */
export async function putImage(
  vault: Vault,
  layers: Buffer[],
  extra: Record<string, unknown> = {},
): Promise<TestImage> {
  const blobs = new Map<string, Buffer>();
  const put = async (mediaType: string, data: Buffer) => {
    const d = descOf(mediaType, data);
    blobs.set(d.digest, data);
    await vault.push(d, Readable.from([data]));
    return d;
  };
  const layerDescs = [];
  for (const l of layers) layerDescs.push(await put(MediaType.OciLayer, l));
  const config = await put(
    MediaType.OciConfig,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) },
      }),
    ),
  );
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config,
      layers: layerDescs,
      ...extra,
    }),
  );
  const manifest = await put(MediaType.OciManifest, manifestBytes);
  return { manifest, manifestBytes, blobs };
}

/**
 * An image as the snapshot path leaves it: content in the vault, its record, and one push observation of
 * repository:tag. `extra` goes into the manifest (annotations, subject…).
 */
export async function snapshottedImage(
  vault: Vault,
  repository: string,
  tag: string,
  seed: string,
  extra: Record<string, unknown> = {},
  at = '2026-01-10T09:06:00.000Z',
): Promise<TestImage> {
  const img = await putImage(vault, [Buffer.from(seed)], extra);
  await vault.putImage({
    repository,
    descriptor: img.manifest,
    firstSnapshotAt: at,
    lastSnapshotAt: at,
    blobs: 3,
    bytes: 100,
    referrers: [],
    extensions: {},
  });
  await vault.recordTag({
    repository,
    tag,
    action: 'push',
    descriptor: img.manifest,
    observedAt: at,
    source: { kind: 'test' },
  });
  return img;
}

/**
 * A one-platform index recorded in the vault as repository's image, with (when `statement` is given) the BuildKit
 * attestation manifest BuildKit puts beside the platform: one in-toto layer of `predicateType` holding `statement`.
 */
export async function attestedIndex(
  vault: Vault,
  repository: string,
  image: TestImage,
  statement?: { bytes: Buffer; predicateType: string },
  at = '2026-01-10T09:00:00.000Z',
): Promise<{ index: Descriptor; attestation?: Descriptor; layer?: Descriptor }> {
  const manifests: Descriptor[] = [{ ...image.manifest, platform: { os: 'linux', architecture: 'amd64' } }];
  let attestation: Descriptor | undefined;
  let layer: Descriptor | undefined;
  if (statement) {
    layer = {
      ...descOf('application/vnd.in-toto+json', statement.bytes),
      annotations: { 'in-toto.io/predicate-type': statement.predicateType },
    };
    await vault.push(layer, Readable.from([statement.bytes]));
    const configBytes = Buffer.from('{}');
    const config = descOf(MediaType.OciConfig, configBytes);
    await vault.push(config, Readable.from([configBytes]));
    const bytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }),
    );
    attestation = {
      ...descOf(MediaType.OciManifest, bytes),
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: {
        'vnd.docker.reference.type': 'attestation-manifest',
        'vnd.docker.reference.digest': image.manifest.digest,
      },
    };
    await vault.push(attestation, Readable.from([bytes]));
    manifests.push(attestation);
  }
  const indexBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }),
  );
  const index = descOf(MediaType.OciIndex, indexBytes);
  await vault.push(index, Readable.from([indexBytes]));
  await vault.putImage({
    repository,
    descriptor: index,
    firstSnapshotAt: at,
    lastSnapshotAt: at,
    blobs: manifests.length + 4,
    bytes: 100,
    referrers: [],
    extensions: {},
  });
  return { index, ...(attestation ? { attestation, layer } : {}) };
}
