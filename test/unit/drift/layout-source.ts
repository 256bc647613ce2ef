import { readFileSync } from 'node:fs';
import type { ImageSource } from '../../../lib/drift/source';
import { Digest, MediaType, Reference, parseManifest, type Descriptor } from '../../../lib/oci';
import type { BuiltImage, LayoutBuilder } from '../../../fixtures';

/**
 * An ImageSource over one LayoutBuilder directory: every "registry" shares its blobs, tags are set by the test,
 * and every call is counted so tests can assert how much a detection asks for.
 */
export class LayoutSource implements ImageSource {
  readonly requests: string[] = [];
  private readonly tags = new Map<string, string>();

  constructor(private readonly layout: LayoutBuilder) {}

  /** Points `ref` (registry/repo:tag) at an image. */
  tag(ref: string, image: { digest: string }): void {
    this.tags.set(Reference.parse(ref).toString(), image.digest);
  }

  async resolve(ref: Reference): Promise<Descriptor> {
    this.requests.push(`resolve ${ref.toString()}`);
    const digest = ref.digest ?? this.tags.get(ref.toString());
    if (!digest) throw new Error(`${ref.toString()}: MANIFEST_UNKNOWN`);
    const bytes = this.read(digest);
    return { mediaType: parseManifest(bytes).mediaType, digest, size: bytes.length };
  }

  async manifest(ref: Reference, digest: string): Promise<Buffer> {
    this.requests.push(`manifest ${ref.name}@${digest}`);
    return this.read(digest);
  }

  async blob(ref: Reference, desc: Descriptor): Promise<Buffer> {
    this.requests.push(`blob ${ref.name}@${desc.digest}`);
    return this.read(desc.digest);
  }

  private read(digest: string): Buffer {
    try {
      return readFileSync(this.layout.blobPath(digest));
    } catch {
      throw new Error(`${digest}: BLOB_UNKNOWN`);
    }
  }
}

export interface StatementOptions {
  predicateType?: string;
  materials: { uri: string; digest?: Record<string, string> }[];
}

/** An in-toto SLSA provenance statement as BuildKit writes it (v0.2 `materials`, v1 `resolvedDependencies`). */
export function provenanceStatement(subject: BuiltImage, opts: StatementOptions): object {
  const predicateType = opts.predicateType ?? 'https://slsa.dev/provenance/v0.2';
  const v1 = predicateType.endsWith('/v1');
  return {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType,
    subject: [{ name: 'pkg:docker/app', digest: { sha256: Digest.parse(subject.digest).hex } }],
    predicate: v1
      ? {
          buildDefinition: {
            buildType: 'https://mobyproject.org/buildkit@v1',
            resolvedDependencies: opts.materials,
          },
        }
      : { builder: { id: '' }, buildType: 'https://mobyproject.org/buildkit@v1', materials: opts.materials },
  };
}

/**
 * A BuildKit-style index: the platform images, and for each an attestation manifest (platform unknown/unknown,
 * `vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest`) holding the statement.
 */
export function buildkitIndex(
  layout: LayoutBuilder,
  images: { image: BuiltImage; statement: object }[],
  annotations?: Record<string, string>,
): { digest: string } {
  const entries: object[] = [];
  const attestations: object[] = [];
  for (const { image, statement } of images) {
    entries.push({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      platform: image.platform ?? { os: 'linux', architecture: 'amd64' },
    });
    const payload = Buffer.from(JSON.stringify(statement));
    const config = Buffer.from('{}');
    const predicateType = (statement as { predicateType: string }).predicateType;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: layout.writeBlob(config), size: config.length },
        layers: [
          {
            mediaType: 'application/vnd.in-toto+json',
            digest: layout.writeBlob(payload),
            size: payload.length,
            annotations: { 'in-toto.io/predicate-type': predicateType },
          },
        ],
      }),
    );
    attestations.push({
      mediaType: MediaType.OciManifest,
      digest: layout.writeBlob(manifest),
      size: manifest.length,
      annotations: {
        'vnd.docker.reference.digest': image.digest,
        'vnd.docker.reference.type': 'attestation-manifest',
      },
      platform: { architecture: 'unknown', os: 'unknown' },
    });
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [...entries, ...attestations],
      ...(annotations ? { annotations } : {}),
    }),
  );
  return { digest: layout.writeBlob(index) };
}
