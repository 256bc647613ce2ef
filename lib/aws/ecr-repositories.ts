import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  type Repository as EcrRepository,
} from '@aws-sdk/client-ecr';
import { isEcrRegistry } from './ecr-auth';

/**
 * What a restore needs to know of an ECR repository. Structurally the `RepositoryState` of lib/services/restore,
 * which this module does not import (services define the interface, adapters fill it in).
 */
export interface EcrRepositoryState {
  /** True when this call created the repository. */
  readonly created: boolean;
  /** True when the repository's tags cannot be moved once set (IMMUTABLE, IMMUTABLE_WITH_EXCLUSION). */
  readonly immutableTags: boolean;
  /**
   * Wildcard filters (`*` matches any run of characters) naming tags whose mutability is the opposite of
   * `immutableTags` (the `…_WITH_EXCLUSION` settings). Empty for plain MUTABLE / IMMUTABLE.
   */
  readonly exceptions: readonly string[];
}

/** Where an ECR registry lives: its account (the registry id) and region. */
export interface EcrLocation {
  readonly account: string;
  readonly region: string;
}

export interface EcrRepositoriesOptions {
  /**
   * The ECR client for a region, created once per region.
   * @default `new ECRClient({ region })` — credentials from the standard AWS chain
   */
  readonly client?: (region: string) => ECRClient;
  /**
   * Tells the account and region of a registry host; undefined for a host that is not ECR. Tests point a local
   * registry's host at a mocked control plane with it.
   * @default isEcrRegistry from ./ecr-auth (`<account>.dkr.ecr.<region>.amazonaws.com` and its variants)
   */
  readonly locate?: (registry: string) => EcrLocation | undefined;
  /**
   * Tag mutability of the repositories this creates. A restore never needs to move a tag in a repository it just
   * created, so either works for it; the setting is for what the repository is used for afterwards.
   * @default false — MUTABLE, ECR's own default
   */
  readonly immutableTags?: boolean;
}

/** Base error of this module: a DescribeRepositories or CreateRepository call failed, or the host is not ECR. */
export class EcrRepositoryError extends Error {
  constructor(
    message: string,
    readonly action?: string,
    readonly repository?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EcrRepositoryError';
  }
}

/**
 * The slice of ECR's control plane a restore uses: DescribeRepositories and CreateRepository, nothing else.
 *
 * Repositories are created with ECR's defaults: AES256 encryption (a KMS key would need `kms:` permissions and a
 * key that exists in the target region, which a restore into a fresh region cannot assume) and no
 * repository-level scan setting — AWS deprecated `imageScanningConfiguration` in favour of the registry's scanning
 * configuration, which applies to new repositories by its own filters, so whatever scanning the account has set up
 * covers restored images without this module deciding it.
 */
export class EcrRepositories {
  private readonly clients = new Map<string, ECRClient>();
  private readonly known = new Map<string, Promise<EcrRepositoryState>>();
  private readonly clientFor: (region: string) => ECRClient;
  private readonly locate: (registry: string) => EcrLocation | undefined;

  constructor(private readonly options: EcrRepositoriesOptions = {}) {
    this.clientFor = options.client ?? ((region) => new ECRClient({ region }));
    this.locate = options.locate ?? isEcrRegistry;
  }

  /**
   * Makes sure `repository` exists in the ECR registry `registry` (a host), creating it when missing, and says
   * whether its tags are immutable. Each repository is asked about once per instance; concurrent calls share the
   * request, and a creation raced by another client counts as found.
   */
  ensureRepository(registry: string, repository: string): Promise<EcrRepositoryState> {
    const key = `${registry}/${repository}`;
    let p = this.known.get(key);
    if (!p) {
      p = this.ensure(registry, repository);
      this.known.set(key, p);
      // A failure is not remembered: the next call (after fixing IAM, say) asks again.
      p.catch(() => this.known.delete(key));
    }
    return p;
  }

  /** What ensureRepository would find, creating nothing: undefined when the repository does not exist. */
  async describeRepository(registry: string, repository: string): Promise<EcrRepositoryState | undefined> {
    const cached = this.known.get(`${registry}/${repository}`);
    if (cached) return { ...(await cached), created: false };
    const found = await this.describe(this.where(registry), repository);
    return found && stateOf(found, false);
  }

  private async ensure(registry: string, repository: string): Promise<EcrRepositoryState> {
    const where = this.where(registry);
    const found = await this.describe(where, repository);
    if (found) return stateOf(found, false);
    const immutable = this.options.immutableTags ?? false;
    try {
      const out = await this.client(where.region).send(
        new CreateRepositoryCommand({
          registryId: where.account,
          repositoryName: repository,
          imageTagMutability: immutable ? 'IMMUTABLE' : 'MUTABLE',
        }),
      );
      return out.repository
        ? stateOf(out.repository, true)
        : { created: true, immutableTags: immutable, exceptions: [] };
    } catch (e) {
      if (errorName(e) === 'RepositoryAlreadyExistsException') {
        const now = await this.describe(where, repository);
        if (now) return stateOf(now, false);
      }
      throw explain(e, 'CreateRepository', repository, where);
    }
  }

  private async describe(where: EcrLocation, repository: string): Promise<EcrRepository | undefined> {
    try {
      const out = await this.client(where.region).send(
        new DescribeRepositoriesCommand({ registryId: where.account, repositoryNames: [repository] }),
      );
      return out.repositories?.find((r) => r.repositoryName === repository);
    } catch (e) {
      if (errorName(e) === 'RepositoryNotFoundException') return undefined;
      throw explain(e, 'DescribeRepositories', repository, where);
    }
  }

  private where(registry: string): EcrLocation {
    const where = this.locate(registry);
    if (!where) {
      throw new EcrRepositoryError(
        `${registry} is not an ECR registry (expected <account>.dkr.ecr.<region>.amazonaws.com)`,
      );
    }
    return where;
  }

  private client(region: string): ECRClient {
    let c = this.clients.get(region);
    if (!c) {
      c = this.clientFor(region);
      this.clients.set(region, c);
    }
    return c;
  }
}

function stateOf(repo: EcrRepository, created: boolean): EcrRepositoryState {
  const mutability = repo.imageTagMutability ?? 'MUTABLE';
  return {
    created,
    immutableTags: mutability.startsWith('IMMUTABLE'),
    exceptions: mutability.endsWith('_WITH_EXCLUSION')
      ? (repo.imageTagMutabilityExclusionFilters ?? []).flatMap((f) => (f.filter ? [f.filter] : []))
      : [],
  };
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}

/** ECR's ARN for a repository, so an AccessDenied message names exactly what the policy must allow. */
function repositoryArn(where: EcrLocation, repository: string): string {
  const partition = where.region.startsWith('cn-')
    ? 'aws-cn'
    : where.region.startsWith('us-gov-')
      ? 'aws-us-gov'
      : 'aws';
  return `arn:${partition}:ecr:${where.region}:${where.account}:repository/${repository}`;
}

function explain(e: unknown, action: string, repository: string, where: EcrLocation): EcrRepositoryError {
  const name = errorName(e) ?? 'Error';
  const detail = (e as Error)?.message ?? String(e);
  const arn = repositoryArn(where, repository);
  const message =
    name === 'AccessDeniedException' || name === 'AccessDenied'
      ? `ecr:${action} on ${arn} was denied: the restore needs ecr:DescribeRepositories and ecr:CreateRepository ` +
        `on it (${name}: ${detail})`
      : `ecr:${action} of repository "${repository}" in account ${where.account}, ${where.region} failed: ${name}: ${detail}`;
  return new EcrRepositoryError(message, `ecr:${action}`, repository, { cause: e });
}
