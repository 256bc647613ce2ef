import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CredentialError, staticCredentials, type Credential, type CredentialProvider } from '../registry';

/** How long the secret is kept before it is read again (a rotated password is picked up within this). */
export const SECRET_CREDENTIALS_TTL_MS = 15 * 60 * 1000;

export interface SecretsManagerCredentialsOptions {
  /** The secret's name or ARN. */
  readonly secretId: string;
  /** @default `new SecretsManagerClient({})` (the standard credential chain and region) */
  readonly client?: SecretsManagerClient;
  /** For registries the secret does not name. @default anonymous */
  readonly fallback?: CredentialProvider;
  /** How long a read of the secret is reused. @default SECRET_CREDENTIALS_TTL_MS (15 minutes) */
  readonly ttlMs?: number;
  /** The clock, for tests. @default Date.now */
  readonly now?: () => number;
}

/**
 * Registry credentials from one Secrets Manager secret, for private upstream registries. The secret string is a
 * JSON object keyed by registry host (`host[:port]`; `docker.io` for Docker Hub), each entry either a login or a
 * bearer token sent to the registry as is:
 *
 * ```json
 * {
 *   "docker.io": { "username": "ci-bot", "password": "dckr_pat_..." },
 *   "registry.example.com:5000": { "token": "..." }
 * }
 * ```
 *
 * The secret is read on first use and reused for `ttlMs`; concurrent asks share one read. A registry the secret
 * does not name is asked of `fallback`. A missing, unreadable or malformed secret is a {@link CredentialError}
 * naming the secret id, never its content.
 */
export function secretsManagerCredentials(options: SecretsManagerCredentialsOptions): CredentialProvider {
  const fallback: CredentialProvider = options.fallback ?? (async () => undefined);
  const ttlMs = options.ttlMs ?? SECRET_CREDENTIALS_TTL_MS;
  const now = options.now ?? Date.now;
  let client = options.client;
  let cached: { provider: CredentialProvider; readAt: number } | undefined;
  let inflight: Promise<CredentialProvider> | undefined;

  const load = async (): Promise<CredentialProvider> => {
    if (cached && now() - cached.readAt < ttlMs) return cached.provider;
    inflight ??= readSecret((client ??= new SecretsManagerClient({})), options.secretId)
      .then((map) => {
        const provider = staticCredentials(map);
        cached = { provider, readAt: now() };
        return provider;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  return async (registry) => (await (await load())(registry)) ?? fallback(registry);
}

async function readSecret(
  client: SecretsManagerClient,
  secretId: string,
): Promise<Record<string, Credential>> {
  const fail = (detail: string, cause?: unknown) =>
    new CredentialError({
      method: 'secretsmanager:GetSecretValue',
      url: `secretsmanager:${secretId}`,
      detail,
      cause,
    });
  let text: string | undefined;
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    text = out.SecretString;
  } catch (e) {
    const err = e as Error;
    throw fail(`${err.name ?? 'Error'}: ${err.message ?? String(e)}`, e);
  }
  if (text === undefined) throw fail('the secret has no SecretString (a binary secret is not supported)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: not repeated here, it may hold a password.
    throw fail(
      'the secret string is not JSON; expected {"<registry host>": {"username","password"} | {"token"}}',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fail('the secret is not a JSON object keyed by registry host');
  }
  const out: Record<string, Credential> = {};
  for (const [host, entry] of Object.entries(parsed as Record<string, unknown>)) {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof e.token === 'string' && e.token !== '') {
      out[host] = { registryToken: e.token };
    } else if (typeof e.username === 'string' && typeof e.password === 'string' && e.username !== '') {
      out[host] = { username: e.username, password: e.password };
    } else {
      throw fail(
        `entry ${JSON.stringify(host)} must be {"username": "...", "password": "..."} or {"token": "..."}`,
      );
    }
  }
  return out;
}
