/** Base error of the OCI model: a value that does not parse or does not verify. */
export class OciError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OciError';
  }
}

/** Thrown when a string is not a valid digest, or uses an algorithm we cannot verify. */
export class InvalidDigestError extends OciError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDigestError';
  }
}

/** Thrown when a string is not a valid image reference. */
export class InvalidReferenceError extends OciError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

/** Thrown when content does not hash to, or is not the size of, the descriptor that names it. */
export class DigestMismatchError extends OciError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly expectedSize: number,
    readonly actualSize: number,
    context = '',
  ) {
    super(
      actualSize !== expectedSize
        ? `${context}size mismatch for ${expected}: expected ${expectedSize} bytes, got ${actualSize}`
        : `${context}digest mismatch: expected ${expected}, content hashes to ${actual}`,
    );
    this.name = 'DigestMismatchError';
  }
}

/** Thrown when manifest or index bytes are not valid JSON of a known shape. */
export class InvalidManifestError extends OciError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidManifestError';
  }
}

/** Docker's schema 1 manifests: signed JWS, deprecated since 2017, gone from current registries and clients. */
const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/;

/**
 * Thrown when a registry answers a manifest request with a media type we do not keep. Without it, the content was
 * taken for a blob and the copy failed later as "404 BLOB_UNKNOWN", which says nothing of the real reason.
 */
export class UnsupportedMediaTypeError extends OciError {
  constructor(
    readonly mediaType: string,
    context = '',
  ) {
    super(
      `${context}unsupported manifest media type ${mediaType || '(none)'}${SCHEMA1.test(mediaType) ? ' (Docker schema 1)' : ''}: ` +
        'imagevault keeps OCI and Docker schema 2 images and indexes' +
        (SCHEMA1.test(mediaType)
          ? '; push the image again with a current docker, buildah or skopeo to convert it'
          : ''),
    );
    this.name = 'UnsupportedMediaTypeError';
  }
}
