import * as z from 'zod';
import { DescriptorSchema, type Descriptor } from './descriptor';
import { InvalidManifestError } from './errors';
import { MediaType, isImageManifest, isIndex } from './mediatype';

/** Image manifests can hold at most this much JSON; registries refuse bigger ones (distribution: 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const ImageManifestSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    config: DescriptorSchema,
    layers: z.array(DescriptorSchema),
    subject: DescriptorSchema.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .passthrough();
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export const IndexSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    manifests: z.array(DescriptorSchema),
    subject: DescriptorSchema.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .passthrough();
export type Index = z.infer<typeof IndexSchema>;

export type Node =
  | { kind: 'index'; mediaType: string; index: Index }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/**
 * Parses manifest or index bytes. `declared` is the media type the registry or descriptor gave; the JSON's own
 * `mediaType`, when present, must agree with it (OCI image-spec: the field is there to stop type confusion).
 */
export function parseManifest(bytes: Uint8Array, declared?: string): Node {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new InvalidManifestError(
      `manifest is ${bytes.length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new InvalidManifestError(`manifest is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidManifestError('manifest is not a JSON object');
  }
  const own = (json as { mediaType?: unknown }).mediaType;
  if (own !== undefined && typeof own !== 'string')
    throw new InvalidManifestError('manifest mediaType is not a string');
  if (declared && own && declared !== own) {
    throw new InvalidManifestError(`manifest declares mediaType ${own} but was served as ${declared}`);
  }
  let mediaType = (own as string | undefined) ?? declared;
  if (!mediaType || !(isIndex(mediaType) || isImageManifest(mediaType))) {
    // OCI allows the field to be absent: tell an index from a manifest by its shape.
    if (!mediaType || mediaType === 'application/json') {
      if ('manifests' in json) mediaType = MediaType.OciIndex;
      else if ('config' in json) mediaType = MediaType.OciManifest;
    }
  }
  if (isIndex(mediaType)) {
    const r = IndexSchema.safeParse(json);
    if (!r.success) throw new InvalidManifestError(`invalid index: ${formatIssues(r.error)}`);
    return { kind: 'index', mediaType: mediaType!, index: r.data };
  }
  if (isImageManifest(mediaType)) {
    const r = ImageManifestSchema.safeParse(json);
    if (!r.success) throw new InvalidManifestError(`invalid image manifest: ${formatIssues(r.error)}`);
    return { kind: 'manifest', mediaType: mediaType!, manifest: r.data };
  }
  throw new InvalidManifestError(`unsupported manifest media type ${mediaType ?? '(none)'}`);
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Layers that registries are not required to hold (Windows base layers): the manifest names them by URL.
 * A snapshot records them but cannot copy them; a restore pushes the manifest without them, as docker does.
 */
export function isNonDistributable(d: Descriptor): boolean {
  return (
    d.mediaType === MediaType.DockerForeignLayerGzip ||
    d.mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.')
  );
}

/**
 * The children of a node, in the order a copy must finish them before the node itself: the subject (a referrer
 * cannot be pushed before what it refers to, on registries that check), then config and layers, or index entries.
 */
export function successors(node: Node): Descriptor[] {
  const out: Descriptor[] = [];
  const subject = node.kind === 'index' ? node.index.subject : node.manifest.subject;
  if (subject) out.push(subject);
  if (node.kind === 'index') {
    out.push(...node.index.manifests);
  } else {
    out.push(node.manifest.config);
    out.push(...node.manifest.layers.filter((l) => !isNonDistributable(l)));
  }
  return out;
}

export function subjectOf(node: Node): Descriptor | undefined {
  return node.kind === 'index' ? node.index.subject : node.manifest.subject;
}

/**
 * The descriptor a referrers list holds for a manifest (distribution spec): its media type, digest and size, its
 * `artifactType` — the manifest's own, else its config's media type — and all its annotations.
 */
export function referrerDescriptor(desc: Descriptor, node: Node): Descriptor {
  const m = node.kind === 'index' ? node.index : node.manifest;
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  const artifactType =
    m.artifactType ?? (node.kind === 'manifest' ? node.manifest.config.mediaType : undefined);
  if (artifactType) entry.artifactType = artifactType;
  if (m.annotations && Object.keys(m.annotations).length > 0) entry.annotations = m.annotations;
  return entry;
}
