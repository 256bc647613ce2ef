/** Data on stdout: JSON with --json, else the human text. */
export function out(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

export const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
