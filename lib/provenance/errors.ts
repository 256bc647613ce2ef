/** Base error of the provenance module. */
export class ProvenanceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProvenanceError';
  }
}

/** Thrown when an event is not a CloudTrail `ecr:PutImage` call we can join (wrong shape, failed call, no digest). */
export class InvalidPutImageEventError extends ProvenanceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidPutImageEventError';
  }
}

/** Thrown when another writer took the next log sequence number every time we tried. */
export class LogContentionError extends ProvenanceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogContentionError';
  }
}

/**
 * Thrown when an event is not a scan result we can record: not an ECR `ECR Image Scan` or Amazon Inspector
 * `Inspector2 Scan` event for an ECR image, a scan status we do not know, or no valid repository or digest.
 */
export class InvalidScanEventError extends ProvenanceError {
  constructor(
    message: string,
    readonly repository?: string,
    readonly digest?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InvalidScanEventError';
  }
}
