import { MediaType, type Descriptor } from '../../../lib/oci';
import { ArtifactType, buildProvenance, classifyReferrer } from '../../../lib/provenance';
import { attestedIndex, putImage, tempVault } from '../helpers';

const d = (artifactType: string, annotations?: Record<string, string>): Descriptor => ({
  mediaType: MediaType.OciManifest,
  digest: `sha256:${'b'.repeat(64)}`,
  size: 10,
  artifactType,
  ...(annotations ? { annotations } : {}),
});

describe('Function: classifyReferrer', () => {
  it.each([
    [ArtifactType.CosignSignature, 'signature'],
    [ArtifactType.CosignSimpleSigning, 'signature'],
    [ArtifactType.NotationSignature, 'signature'],
    [ArtifactType.Spdx, 'sbom'],
    [ArtifactType.CycloneDx, 'sbom'],
    ['application/vnd.cyclonedx+json;version=1.5', 'sbom'],
    [ArtifactType.InToto, 'attestation'],
    [ArtifactType.CosignAttestation, 'attestation'],
    ['application/vnd.example.thing', 'other'],
  ])('%s is a %s', (type, kind) => {
    expect(classifyReferrer(d(type)).kind).toBe(kind);
  });

  it('names a key-based cosign signer honestly as unknown', () => {
    const r = classifyReferrer(
      d(ArtifactType.CosignSignature, { 'dev.cosignproject.cosign/signature': 'MEUC' }),
    );
    expect(r.signer).toEqual({ tool: 'cosign', note: expect.stringContaining('key-based') });
  });

  it('reads Notation certificate thumbprints', () => {
    const r = classifyReferrer(
      d(ArtifactType.NotationSignature, { 'io.cncf.notary.x509chain.thumbprint#S256': '["abc","def"]' }),
    );
    expect(r.signer).toEqual({ tool: 'notation', thumbprints: ['abc', 'def'] });
  });

  it('takes an in-toto predicate type annotation as an attestation', () => {
    const r = classifyReferrer(
      d('application/vnd.dev.sigstore.bundle.v0.3+json', {
        'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1',
      }),
    );
    expect(r).toMatchObject({ kind: 'attestation', predicateType: 'https://slsa.dev/provenance/v1' });
  });
});

describe('Function: buildProvenance', () => {
  it('reads platforms, labels and annotations, and a BuildKit attestation manifest in the index', async () => {
    // Prepare: an index of one platform image and its BuildKit attestation manifest
    const vault = await tempVault();
    const img = await putImage(vault, [Buffer.from('app')], {
      annotations: {
        'org.opencontainers.image.source': 'https://github.com/example/app',
        'org.opencontainers.image.revision': '0123abcd',
      },
    });
    const { index, attestation: att } = await attestedIndex(vault, 'app/web', img, {
      bytes: Buffer.from('{"_type":"https://in-toto.io/Statement/v0.1"}'),
      predicateType: 'https://slsa.dev/provenance/v0.2',
    });

    // Act
    const s = await buildProvenance(vault, 'app/web', index.digest, { registry: 'ecr.example' });
    // Assess
    expect(s.subject).toEqual([{ name: 'ecr.example/app/web', digest: { sha256: index.digest.slice(7) } }]);
    expect(s.predicateType).toBe('https://imagevault.dev/provenance/v1');
    expect(s.predicate.image).toMatchObject({
      mediaType: MediaType.OciIndex,
      platforms: ['linux/amd64'],
      source: 'https://github.com/example/app',
      revision: '0123abcd',
    });
    expect(s.predicate.referrers).toEqual([
      expect.objectContaining({
        digest: att!.digest,
        kind: 'attestation',
        via: 'index',
        predicateType: 'https://slsa.dev/provenance/v0.2',
      }),
    ]);
    expect(s.predicate.base).toMatchObject({
      status: 'unknown',
      reason: expect.stringContaining('did not run'),
    });
    expect(s.predicate.scan).toMatchObject({ status: 'unknown' });
    expect(s.predicate.snapshot).toMatchObject({
      store: vault.url,
      keys: { manifest: `blobs/sha256/${index.digest.slice(7)}` },
      verifiedAt: '2026-01-10T09:00:00.000Z',
      replication: 'not-replicated',
      replicationReason: 'this store has no replication (a directory or an unversioned bucket)',
    });
    expect(s.predicate.snapshot.versionIds).toBeUndefined();
  });
});
