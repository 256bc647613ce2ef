import { X509Certificate } from 'node:crypto';
import { isAttestationManifest, type Descriptor } from '../oci';
import type { ReferrerKind, ReferrerPredicate, Signer } from './types';

/** Artifact types by what they are. Sources: cosign, Notation, SPDX, CycloneDX, in-toto, Sigstore, BuildKit. */
export const ArtifactType = {
  CosignSignature: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  CosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  CosignSbom: 'application/vnd.dev.cosign.artifact.sbom.v1+json',
  CosignAttestation: 'application/vnd.dsse.envelope.v1+json',
  NotationSignature: 'application/vnd.cncf.notary.signature',
  SigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  Spdx: 'application/spdx+json',
  SpdxText: 'text/spdx',
  CycloneDx: 'application/vnd.cyclonedx+json',
  CycloneDxXml: 'application/vnd.cyclonedx+xml',
  Syft: 'application/vnd.syft+json',
  InToto: 'application/vnd.in-toto+json',
} as const;

const KINDS: Record<string, ReferrerKind> = {
  [ArtifactType.CosignSignature]: 'signature',
  [ArtifactType.CosignSimpleSigning]: 'signature',
  [ArtifactType.NotationSignature]: 'signature',
  [ArtifactType.CosignSbom]: 'sbom',
  [ArtifactType.Spdx]: 'sbom',
  [ArtifactType.SpdxText]: 'sbom',
  [ArtifactType.CycloneDx]: 'sbom',
  [ArtifactType.CycloneDxXml]: 'sbom',
  [ArtifactType.Syft]: 'sbom',
  [ArtifactType.CosignAttestation]: 'attestation',
  [ArtifactType.InToto]: 'attestation',
  [ArtifactType.SigstoreBundle]: 'attestation',
};

/** On an attestation's layers (BuildKit) and on cosign/Sigstore bundle referrers. */
export const PREDICATE_TYPE_ANNOTATIONS = ['in-toto.io/predicate-type', 'dev.sigstore.bundle.predicateType'];

const COSIGN_CERTIFICATE = 'dev.sigstore.cosign/certificate';
const COSIGN_SIGNATURE = 'dev.cosignproject.cosign/signature';
const NOTATION_THUMBPRINTS = 'io.cncf.notary.x509chain.thumbprint#S256';

/**
 * What a referrer is, by its artifactType (or media type), and who signed it when its annotations say.
 * `predicateType` may be passed when read from the artifact's layers (BuildKit attestation manifests).
 */
export function classifyReferrer(
  d: Descriptor,
  via: 'referrer' | 'index' = 'referrer',
  predicateType?: string,
): ReferrerPredicate {
  const type = d.artifactType ?? d.mediaType;
  const annotations = d.annotations ?? {};
  const predicate =
    predicateType ?? PREDICATE_TYPE_ANNOTATIONS.map((k) => annotations[k]).find((v) => v !== undefined);
  let kind: ReferrerKind = KINDS[type] ?? 'other';
  if (via === 'index' && isAttestationManifest(d)) kind = 'attestation';
  if (kind === 'other' && predicate) kind = 'attestation';
  if (kind === 'other' && (type.includes('spdx') || type.includes('cyclonedx'))) kind = 'sbom';
  const out: ReferrerPredicate = { digest: d.digest, mediaType: d.mediaType, kind, via };
  if (d.artifactType) out.artifactType = d.artifactType;
  if (predicate) out.predicateType = predicate;
  if (kind === 'signature') out.signer = signerOf(type, annotations);
  return out;
}

function signerOf(type: string, annotations: Record<string, string>): Signer {
  if (type === ArtifactType.NotationSignature) {
    const raw = annotations[NOTATION_THUMBPRINTS];
    if (!raw) return { tool: 'notation', note: 'no certificate thumbprints annotation' };
    try {
      const thumbprints = JSON.parse(raw) as unknown;
      if (Array.isArray(thumbprints)) return { tool: 'notation', thumbprints: thumbprints.map(String) };
    } catch {
      // fall through
    }
    return { tool: 'notation', note: `unreadable ${NOTATION_THUMBPRINTS} annotation` };
  }
  if (type === ArtifactType.CosignSignature || type === ArtifactType.CosignSimpleSigning) {
    const pem = annotations[COSIGN_CERTIFICATE];
    if (pem) {
      try {
        const cert = new X509Certificate(pem);
        const identity = cert.subjectAltName?.replace(/^(email|URI):/, '');
        return { tool: 'cosign', ...(identity ? { identity } : {}), issuer: cert.issuer };
      } catch (e) {
        return { tool: 'cosign', note: `unreadable signing certificate: ${(e as Error).message}` };
      }
    }
    return {
      tool: 'cosign',
      note: annotations[COSIGN_SIGNATURE]
        ? 'key-based signature: no certificate, so the signer is whoever holds the key (not verified here)'
        : 'no signature or certificate annotation',
    };
  }
  return { tool: 'unknown', note: `signature type ${type} carries no signer we can read` };
}
