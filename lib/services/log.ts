/**
 * Where a use case writes what it did: a message and structured fields. Powertools' Logger is one (the Lambda
 * handlers in lib/aws/handlers pass theirs), so the use cases need not load it.
 */
export interface Log {
  debug(message: string, ...fields: Record<string, unknown>[]): void;
  info(message: string, ...fields: Record<string, unknown>[]): void;
  warn(message: string, ...fields: Record<string, unknown>[]): void;
  error(message: string, ...fields: Record<string, unknown>[]): void;
}

/** Writes nothing: for callers that present the outcome themselves. */
export const SILENT_LOG: Log = { debug() {}, info() {}, warn() {}, error() {} };
