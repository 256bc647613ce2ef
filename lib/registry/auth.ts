import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { CredentialError } from './errors';

/**
 * What a registry login yields. `username`/`password` go out as Basic credentials (to the registry, or to its token
 * service); `identityToken` is an OAuth2 refresh token for the token service; `registryToken` is a bearer token
 * sent to the registry as is.
 */
export interface Credential {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
  /**
   * When to stop using it (ms since the epoch): a client asks its provider again after this. ECR passwords last
   * 12 hours, and a bulk restore of a whole registry can outlast one. @default never
   */
  expiresAt?: number;
}

/** Looks up the credential for a registry (`host[:port]`, `docker.io` for Docker Hub); undefined means anonymous. */
export type CredentialProvider = (registry: string) => Promise<Credential | undefined>;

/** Where docker keeps Docker Hub's credentials: the v1 index URL, from before the v2 API. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** Hostnames that all mean Docker Hub in a config.json key or a client's registry name. */
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Credential helpers may unlock a keychain or call a cloud API (ECR); give them time, but not forever. */
const HELPER_TIMEOUT_MS = 60_000;

/** What a credential helper's `Username` is when `Secret` is an identity token rather than a password. */
const IDENTITY_TOKEN_USERNAME = '<token>';

export function staticCredentials(map: Record<string, Credential>): CredentialProvider {
  return async (registry) => map[registry] ?? (isDockerHub(registry) ? findDockerHub(map) : undefined);
}

function findDockerHub(map: Record<string, Credential>): Credential | undefined {
  const key = Object.keys(map).find((k) => isDockerHub(configHostname(k)));
  return key === undefined ? undefined : map[key];
}

interface DockerConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * Reads credentials the way the docker CLI does: `credHelpers[registry]`, else `credsStore`, run as
 * `docker-credential-<helper> get`; else (or when the helper has nothing) the `auths` entry. A missing
 * config.json means anonymous access. The file is read on each lookup, which the client does once per registry.
 */
export function dockerConfigCredentials(configPath?: string): CredentialProvider {
  const file = configPath ?? defaultDockerConfigPath();
  return async (registry) => {
    const config = await readDockerConfig(file);
    if (!config) return undefined;
    const helper = findHelper(config, registry);
    if (helper) {
      const fromHelper = await runCredentialHelper(helper, helperServer(registry));
      if (fromHelper) return fromHelper;
    }
    return fromAuths(config, registry, file);
  };
}

export function defaultDockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(homedir(), '.docker');
  return path.join(dir, 'config.json');
}

async function readDockerConfig(file: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CredentialError({ method: 'READ', url: pathUrl(file), cause: e });
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new CredentialError({
      method: 'READ',
      url: pathUrl(file),
      detail: `invalid JSON: ${(e as Error).message}`,
      cause: e,
    });
  }
}

function pathUrl(file: string): string {
  return `file://${path.resolve(file)}`;
}

function findHelper(config: DockerConfig, registry: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  const key = Object.keys(helpers).find((k) => sameRegistry(configHostname(k), registry));
  return key !== undefined ? helpers[key] : config.credsStore || undefined;
}

function fromAuths(config: DockerConfig, registry: string, file: string): Credential | undefined {
  const auths = config.auths ?? {};
  // An exact key wins over one that only normalises to the same host (`https://host/v1/`).
  const key =
    registry in auths ? registry : Object.keys(auths).find((k) => sameRegistry(configHostname(k), registry));
  if (key === undefined) return undefined;
  const entry = auths[key];
  const cred: Credential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new CredentialError({
        method: 'READ',
        url: pathUrl(file),
        detail: `auths["${key}"].auth is not base64 of user:password`,
      });
    }
    cred.username = decoded.slice(0, colon);
    cred.password = decoded.slice(colon + 1);
  } else if (entry.username !== undefined) {
    cred.username = entry.username;
    cred.password = entry.password;
  }
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  return Object.keys(cred).length > 0 ? cred : undefined;
}

/**
 * Runs `docker-credential-<helper> get` with the server on stdin (the credential-helpers protocol). A helper that
 * has nothing for the server says so on stdout and exits non-zero; that is anonymous, not an error.
 */
export async function runCredentialHelper(helper: string, server: string): Promise<Credential | undefined> {
  const command = `docker-credential-${helper}`;
  const { code, stdout, stderr, error } = await run(command, ['get'], server);
  const fail = (detail: string, cause?: unknown) =>
    new CredentialError({ method: `${command} get`, url: server, detail, cause });
  if (error) throw fail(error.message, error);
  if (code === null) throw fail(`no answer within ${HELPER_TIMEOUT_MS / 1000} s`);
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined;
    throw fail(`exit ${code}: ${(stderr || stdout).trim()}`);
  }
  let reply: { Username?: string; Secret?: string };
  try {
    reply = JSON.parse(stdout) as typeof reply;
  } catch (e) {
    throw fail('output is not JSON', e);
  }
  if (!reply.Secret) return undefined;
  if (reply.Username === IDENTITY_TOKEN_USERNAME) return { identityToken: reply.Secret };
  return { username: reply.Username ?? '', password: reply.Secret };
}

function run(
  command: string,
  args: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    // Loaded here: only a docker credential helper needs it (about 5 ms of every command's start otherwise).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    // env passed explicitly: the helper is found on the PATH this process sees now, which a test may have changed.
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
    // Our own timer rather than spawn's `timeout`, which outlives a helper that failed to start.
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS).unref();
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => (error = e));
    child.stdin.on('error', () => undefined); // a helper that exits before reading stdin is reported by its exit code
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, error });
    });
    child.stdin.end(input);
  });
}

/** The server name a helper is asked about: Docker Hub's credentials are stored under the v1 index URL. */
function helperServer(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_CONFIG_KEY : registry;
}

/** `https://host:port/v1/` → `host:port`, as the docker CLI normalises config.json keys. */
function configHostname(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0];
}

function sameRegistry(hostname: string, registry: string): boolean {
  return hostname === registry || (isDockerHub(hostname) && isDockerHub(registry));
}

export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_HOSTS.has(registry);
}
