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
