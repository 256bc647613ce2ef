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
