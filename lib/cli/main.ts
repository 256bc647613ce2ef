import { ExitCode } from './exit';
import { buildProgram, type CommandsLoader } from './program';

/** Errors that mean bad input: exit code 2. */
const USAGE_ERRORS: ReadonlySet<string> = new Set([
  'UsageError',
  'InvalidReferenceError',
  'InvalidDigestError',
]);

/** Runs the CLI; never throws: errors become a one-line message on stderr and an exit code. */
export async function main(argv: string[], loadCommands?: CommandsLoader): Promise<number> {
  const program = buildProgram(loadCommands);
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.Ok);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      // help and version are not failures; commander printed them already
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    // By name: the installed CLI loads the commands from a bundle of their own, with its own copy of UsageError.
    if (USAGE_ERRORS.has(err.name)) {
      process.stderr.write(`imagevault: ${err.message}\n`);
      return ExitCode.Usage;
    }
    process.stderr.write(`imagevault: ${err.message}\n`);
    if (process.env.IMAGEVAULT_DEBUG) process.stderr.write(`${err.stack}\n`);
    return ExitCode.Failed;
  }
}
