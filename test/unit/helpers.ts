import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DirectoryObjectStore, Vault } from '../../lib/content';
import { MediaType, type Descriptor } from '../../lib/oci';
import { descOf, type TestImage } from '../../fixtures/vault-images';

export function tempDir(prefix = 'imagevault-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function tempVault(): Promise<Vault> {
  const v = new Vault(new DirectoryObjectStore(tempDir()));
  await v.init();
  return v;
}

// Moved out of test/ for the benches; kept here for the tests that import them from the helpers.
export {
  descOf,
  putImage,
  recordRunning,
  snapshottedImage,
  type TestImage,
} from '../../fixtures/vault-images';

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
