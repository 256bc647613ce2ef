import type { Command } from 'commander';
import { redactSecrets } from '../registry/redact';
import { ExitCode } from './exit';
import { buildProgram, type CommandsLoader } from './program';

/** Errors that mean bad input: exit code 2. By name: the commands bundle has its own copies of these classes. */
const USAGE_ERRORS: ReadonlySet<string> = new Set([
  'UsageError',
  'InvalidReferenceError',
  'InvalidDigestError',
  'StoreUrlError',
  // inventory: a kubeconfig that cannot be read or lacks the context, no AWS region.
  'KubeconfigError',
  'NoRegionError',
]);

/** What ran: `provenance show` and its operands, as typed. */
interface Invocation {
  command: string;
  operands: string[];
  json: boolean;
}

/** One failure as the CLI reports it: on stderr as one line, on stdout as JSON under --json. */
export interface CliFailure {
  command?: string;
  operands?: string[];
  name: string;
  message: string;
  exitCode: number;
  /** HTTP status and distribution-spec code, for a registry's answer. */
  status?: number;
  code?: string;
  /** The system error code of a file or socket failure (ENOSPC, EACCES, ECONNREFUSED…). */
  errno?: string;
}

/**
 * Runs the CLI; never throws. Every failure becomes one line on stderr — the command, what it was given, and the
 * reason, with credentials removed — plus, under --json, an `{"error": …}` object on stdout, and the documented exit
 * code. `--verbose` (or `DEBUG=imagevault`) adds the stack.
 */
export async function main(argv: string[], loadCommands?: CommandsLoader): Promise<number> {
  const program = buildProgram(loadCommands);
  let invoked: Invocation | undefined;
  program.hook('preAction', (_program, action) => {
    invoked = {
      command: commandPath(action),
      operands: [...action.args],
      json: Boolean(program.opts().json || action.opts().json),
    };
  });
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.Ok);
  } catch (e) {
    const err = (e instanceof Error ? e : new Error(String(e))) as Error & {
      code?: unknown;
      exitCode?: number;
    };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      // commander printed its own message (or the help, or the version) already
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    const failure = describe(err, invoked);
    process.stderr.write(`imagevault: ${failure.message}\n`);
    if (program.opts().verbose || debugging()) process.stderr.write(`${redactSecrets(err.stack ?? '')}\n`);
    if (invoked?.json ?? program.opts().json)
      process.stdout.write(`${JSON.stringify({ error: failure }, null, 2)}\n`);
    return failure.exitCode;
  }
}

export function describe(err: Error & { code?: unknown }, invoked?: Invocation): CliFailure {
  const exitCode = USAGE_ERRORS.has(err.name) ? ExitCode.Usage : ExitCode.Failed;
  const shown =
    invoked && invoked.operands.length > 3 ? [...invoked.operands.slice(0, 3), '…'] : invoked?.operands;
  const what = invoked ? [invoked.command, ...(shown ?? [])].join(' ') : '';
  const reason = reasonOf(err);
  // The image (or registry, or store) the command was given, unless the reason already starts with it.
  const message = redactSecrets(
    what && !reason.startsWith(`${invoked?.operands[0]}`) ? `${what}: ${reason}` : reason,
  );
  const registry = err as { status?: unknown; code?: unknown };
  const specCode =
    typeof registry.code === 'function' ? (registry.code as () => unknown).call(err) : undefined;
  return {
    ...(invoked ? { command: invoked.command, operands: invoked.operands } : {}),
    name: err.name,
    message,
    exitCode,
    ...(typeof registry.status === 'number' ? { status: registry.status } : {}),
    ...(typeof specCode === 'string' ? { code: specCode } : {}),
    ...(typeof err.code === 'string' ? { errno: err.code } : {}),
  };
}

/** The message, and for an error that only wraps another without saying more, the wrapped one's too. */
function reasonOf(err: Error): string {
  const message = err.message.replace(/\s*\n\s*/g, ' ').trim() || err.name;
  const cause = isError(err.cause) ? err.cause.message.replace(/\s*\n\s*/g, ' ').trim() : '';
  return cause && !message.includes(cause) ? `${message}: ${cause}` : message;
}

/** Duck-typed: an error thrown by Node's internals may come from another realm, where instanceof Error fails. */
function isError(e: unknown): e is Error {
  return typeof (e as Error)?.message === 'string' && typeof (e as Error)?.name === 'string';
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** DEBUG=imagevault (or *, as the debug convention has it), or the older IMAGEVAULT_DEBUG. */
function debugging(): boolean {
  const debug = process.env.DEBUG ?? '';
  return Boolean(process.env.IMAGEVAULT_DEBUG) || /(^|[\s,])(imagevault\b|\*)/.test(debug);
}
