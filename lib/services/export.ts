import { copyGraph, type CopyEvent, type CopySummary } from '../copy';
import { DirectoryObjectStore, INDEX_FILE, OciLayout, REF_NAME, type Vault } from '../content';
import { IndexSchema, type Descriptor } from '../oci';

export interface ExportResult {
  descriptor: Descriptor;
  name: string;
  path: string;
  copy: CopySummary;
}

/**
 * Exports one image from the vault into an OCI image layout directory, with its referrers, under `name` (the
 * `org.opencontainers.image.ref.name` that `skopeo copy oci:DIR:NAME` asks for). An existing layout is added to:
 * shared blobs are not copied again and other names are kept.
 */
export async function exportOciLayout(
  vault: Vault,
  descriptor: Descriptor,
  dir: string,
  name: string,
  options: { concurrency?: number; onEvent?: (e: CopyEvent) => void } = {},
): Promise<ExportResult> {
  const layout = new OciLayout(new DirectoryObjectStore(dir));
  await layout.init();
  const copy = await copyGraph(vault, layout, descriptor, {
    ...options,
    label: `export ${descriptor.digest} to ${dir}`,
  });
  const existing = await layout.store.getBytes(INDEX_FILE);
  const manifests = existing ? IndexSchema.parse(JSON.parse(existing.toString('utf8'))).manifests : [];
  const kept = manifests.filter((m) => m.annotations?.[REF_NAME] !== name);
  const entry: Descriptor = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    annotations: { [REF_NAME]: name },
  };
  await layout.writeIndex([...kept, entry]);
  return { descriptor, name, path: layout.url, copy };
}
