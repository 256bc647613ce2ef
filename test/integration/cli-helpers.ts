import { main } from '../../lib/cli/main';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process, capturing what it writes; process.exitCode is reset so one run cannot leak into the next. */
export async function cli(...args: string[]): Promise<CliResult> {
  return run(['--no-progress', ...args]);
}

/** Like cli(), with progress on: lines on stderr, since stderr is not a terminal under jest. */
export async function cliWithProgress(...args: string[]): Promise<CliResult> {
  return run(args);
}

async function run(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'imagevault', ...args]);
    return { code, stdout, stderr };
  } finally {
    process.exitCode = undefined;
    out.mockRestore();
    err.mockRestore();
  }
}

export async function cliJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const r = await cli('--json', ...args);
  if (r.code !== 0) throw new Error(`imagevault ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
