/** Exit codes, so scripts can tell a failure from a finding. */
export const ExitCode = { Ok: 0, Failed: 1, Usage: 2, Drift: 3, VerifyFailed: 4 } as const;

/** Bad input found inside a command (after commander's own parsing): exit code 2, the message as it is. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
