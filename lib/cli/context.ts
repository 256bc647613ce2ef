import type { Vault } from '../content';
import { openVault } from '../content/open';
import {
  IDLE_TIMEOUT_VARIABLE,
  TimeoutSettingError,
  timeoutsFromEnv,
  type Timeouts,
} from '../content/timeouts';
import { dockerConfigCredentials, type CredentialProvider } from '../registry';
import { Registries, type RepositoryControl } from '../services';
import { UsageError } from './exit';
import { createProgress, type Progress } from './progress';

/** The global options every command sees. */
export interface GlobalCommandOptions {
  store: string;
  json: boolean;
  insecure: boolean;
  concurrency: number;
  /** --timeout (or IMAGEVAULT_TIMEOUT): seconds to wait for a registry's answer; absent means the client's default. */
  timeout?: number;
  /** False with --no-progress; absent means on. */
  progress?: boolean;
}

/** What a command's action is handed: the parsed global options and the clients built from them, once per run. */
export interface CommandContext {
  opts(): GlobalCommandOptions;
  registries(): Registries;
  vault(): Promise<Vault>;
}

export type ProgressMode = 'bars' | 'lines' | 'none';

/** Bars on a terminal, one line per image otherwise, nothing with --json or --no-progress. */
export function progressMode(opts: GlobalCommandOptions): ProgressMode {
  if (opts.progress === false || opts.json) return 'none';
  return process.stderr.isTTY ? 'bars' : 'lines';
}

export function progressOf(opts: GlobalCommandOptions): Progress {
  return createProgress(progressMode(opts));
}

/** The context of a CLI run: registries and the vault are built on first use and then shared. */
export function cliContext(opts: GlobalCommandOptions): CommandContext {
  let registries: Registries | undefined;
  let vault: Promise<Vault> | undefined;
  return {
    opts: () => opts,
    registries: () =>
      (registries ??= new Registries({
        insecure: opts.insecure,
        credentials: registryCredentials(),
        ...timeoutsOf(opts),
        // A note (a registry without the referrers API), not an error: said with the progress, on stderr.
        warn:
          progressMode(opts) === 'none'
            ? () => undefined
            : (line) => process.stderr.write(`imagevault: ${line}\n`),
      })),
    vault: () => (vault ??= openVault(opts.store, { timeouts: timeoutsOf(opts) })),
  };
}

/**
 * IMAGEVAULT_IDLE_TIMEOUT: seconds a response body may stall before it fails (and a download resumes). An environment
 * variable only: it is a knob for a slow or flaky link, not something a command line needs to say. Read as the
 * Lambda functions read it (lib/content/timeouts.ts); a bad value is a usage error.
 */
export function idleTimeoutMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  try {
    return timeoutsFromEnv({ [IDLE_TIMEOUT_VARIABLE]: env[IDLE_TIMEOUT_VARIABLE] }).idleTimeoutMs;
  } catch (e) {
    throw e instanceof TimeoutSettingError ? new UsageError(e.message) : e;
  }
}

/** The timeouts of a run: --timeout (or IMAGEVAULT_TIMEOUT, which commander reads for it) and IMAGEVAULT_IDLE_TIMEOUT. */
export function timeoutsOf(opts: GlobalCommandOptions): Timeouts {
  const idle = idleTimeoutMs();
  return {
    ...(opts.timeout !== undefined ? { requestTimeoutMs: opts.timeout * 1000 } : {}),
    ...(idle !== undefined ? { idleTimeoutMs: idle } : {}),
  };
}

/**
 * A cheap first look at a host: only names containing `.dkr.ecr` can be ECR, and only for those is the ECR module
 * (and the AWS SDK, ~0.4 s to load) loaded; its isEcrRegistry then gives the exact answer.
 */
const mayBeEcr = (host: string) => host.toLowerCase().includes('.dkr.ecr');

export async function isEcrHost(host: string): Promise<boolean> {
  if (!mayBeEcr(host)) return false;
  const { isEcrRegistry } = await import('../aws/ecr-auth');
  return isEcrRegistry(host) !== undefined;
}

/** docker's config.json for every registry, and GetAuthorizationToken (standard AWS chain) for ECR registries. */
function registryCredentials(): CredentialProvider {
  const docker = dockerConfigCredentials();
  let ecr: Promise<CredentialProvider> | undefined;
  return async (registry) => {
    if (!mayBeEcr(registry)) return docker(registry);
    ecr ??= import('../aws/ecr-auth').then((m) => m.ecrCredentials({ fallback: docker }));
    return (await ecr)(registry);
  };
}

/** ECR's control plane (DescribeRepositories, CreateRepository) for an ECR destination; nothing for others. */
export async function repositoryControl(registry: string): Promise<RepositoryControl | undefined> {
  if (!(await isEcrHost(registry))) return undefined;
  const { EcrRepositories } = await import('../aws/ecr-repositories');
  return new EcrRepositories();
}
