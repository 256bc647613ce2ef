import type { Descriptor } from './descriptor';

/*
 * How BuildKit stores attestations next to an image (docs.docker.com/build/metadata/attestations/attestation-storage):
 * an attestation manifest per platform inside the image's index, marked by two annotations, whose layers are in-toto
 * statements annotated with their predicate type.
 */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';
export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
export const SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';

/** True for an index entry that is a BuildKit attestation manifest rather than a platform image. */
export function isAttestationManifest(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST;
}

/** True for an attestation layer holding SLSA provenance (v0.2 or v1). */
export function isSlsaProvenanceLayer(d: Descriptor): boolean {
  const type = d.annotations?.[PREDICATE_TYPE_ANNOTATION];
  return (
    d.mediaType.startsWith(IN_TOTO_MEDIA_TYPE) &&
    (type === SLSA_PROVENANCE_V02 || type === SLSA_PROVENANCE_V1)
  );
}
