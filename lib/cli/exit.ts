/** Exit codes, so scripts can tell a failure from a finding. */
export const ExitCode = {
  Ok: 0,
  Failed: 1,
  Usage: 2,
  Drift: 3,
  VerifyFailed: 4,
  /** `drift check --fail-on newer-…`: a base has a newer release of that kind (or a bigger one). */
  NewerVersion: 5,
} as const;

/** Bad input found inside a command (after commander's own parsing): exit code 2, the message as it is. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
