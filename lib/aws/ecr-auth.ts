import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import {
  CredentialError,
  dockerConfigCredentials,
  ecrRegistryHost,
  isEcrRegistry,
  type Credential,
  type CredentialProvider,
} from '../registry';

export { ecrRegistryHost, isEcrRegistry };

/** An ECR token is valid for 12 hours; renew it this long before it expires, so no request races the expiry. */
export const ECR_TOKEN_RENEW_BEFORE_MS = 5 * 60 * 1000;

export interface EcrCredentialsOptions {
  /** The ECR client for a region. @default `new ECRClient({ region })` from the standard credential chain, one per region */
  readonly client?: (region: string) => ECRClient;
  /** For hosts that are not ECR. @default dockerConfigCredentials() */
  readonly fallback?: CredentialProvider;
  /** The clock, for tests. @default Date.now */
  readonly now?: () => number;
}

interface Cached {
  credential: Credential;
  /** When to stop using it (expiresAt minus the renewal margin), ms since the epoch. */
  renewAt: number;
}

/**
 * Credentials for ECR registries from `GetAuthorizationToken` (the same call `aws ecr get-login-password` makes),
 * in the host's region for its account; other hosts are asked of `fallback`. A token is kept per registry until
 * 5 minutes before it expires, and concurrent asks for the same registry share one call.
 */
export function ecrCredentials(options: EcrCredentialsOptions = {}): CredentialProvider {
  const fallback = options.fallback ?? dockerConfigCredentials();
  const now = options.now ?? Date.now;
  const clients = new Map<string, ECRClient>();
  const clientFor = (region: string): ECRClient => {
    let c = clients.get(region);
    if (!c) clients.set(region, (c = options.client ? options.client(region) : new ECRClient({ region })));
    return c;
  };
  const cache = new Map<string, Cached>();
  const inflight = new Map<string, Promise<Credential>>();

  return async (registry) => {
    const ecr = isEcrRegistry(registry);
    if (!ecr) return fallback(registry);
    const hit = cache.get(registry);
    if (hit && now() < hit.renewAt) return hit.credential;
    let pending = inflight.get(registry);
    if (!pending) {
      pending = fetchToken(clientFor(ecr.region), registry, ecr.account, now)
        .then((fresh) => {
          cache.set(registry, fresh);
          return fresh.credential;
        })
        .finally(() => inflight.delete(registry));
      inflight.set(registry, pending);
    }
    return pending;
  };
}

async function fetchToken(
  client: ECRClient,
  registry: string,
  account: string,
  now: () => number,
): Promise<Cached> {
  const fail = (detail: string, cause?: unknown) =>
    new CredentialError({ method: 'ecr:GetAuthorizationToken', url: `https://${registry}`, detail, cause });
  let out;
  try {
    out = await client.send(new GetAuthorizationTokenCommand({ registryIds: [account] }));
  } catch (e) {
    throw fail(`${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`, e);
  }
  const data = out.authorizationData?.[0];
  if (!data?.authorizationToken) throw fail('the answer has no authorizationData');
  const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw fail('authorizationToken is not base64 of user:password');
  // Without an expiry (never seen) assume ECR's documented 12 hours.
  const expiresAt = data.expiresAt?.getTime() ?? now() + 12 * 60 * 60 * 1000;
  const renewAt = expiresAt - ECR_TOKEN_RENEW_BEFORE_MS;
  return {
    // expiresAt tells a long-lived registry client to ask again (and get the renewed one from this cache).
    credential: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), expiresAt: renewAt },
    renewAt,
  };
}
