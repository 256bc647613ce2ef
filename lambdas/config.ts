import { RepositoryFilter } from '../lib/events';
import type { CandidateBases } from '../lib/drift/base';
import { versionRulesProblems, type VersionWatchRules } from '../lib/drift/version-rules';
import { Reference } from '../lib/oci/reference';
import { TimeoutSettingError, timeoutsFromEnv, type Timeouts } from '../lib/content/timeouts';
import type { LogRetention } from '../lib/provenance/log';
import { parsePolicy, type RetentionPolicy } from '../lib/services/retention-policy';

/**
 * Configuration of the Lambda functions, read from environment variables through typed helpers. Each helper throws
 * a {@link ConfigError} naming the variable, so a misconfigured function fails at its first (cold) start with a
 * message that says what to fix.
 */

/** Thrown at start-up when an environment variable is missing or malformed; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** A variable that must be set and non-empty. */
export function requiredString(name: string, env: Env = process.env): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(name, 'environment variable is required but not set');
  }
  return value.trim();
}

/** A variable that may be empty (VAULT_PREFIX '' is the bucket root) but must be present, or has a default. */
export function optionalString(name: string, fallback: string, env: Env = process.env): string {
  const value = env[name];
  return value === undefined ? fallback : value.trim();
}

/** An integer of at least `min`, or `fallback` when unset or empty. */
export function integer(name: string, fallback: number, min: number, env: Env = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!/^[+-]?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(name, `must be an integer of at least ${min}, got "${raw}"`);
  }
  return n;
}

/** `true`/`false` (also 1/0, yes/no), or `fallback` when unset or empty. */
export function boolean(name: string, fallback: boolean, env: Env = process.env): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${env[name]}"`);
}

/** An SNS topic ARN. */
export function topicArn(name: string, env: Env = process.env): string {
  const value = requiredString(name, env);
  if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/.test(value)) {
    throw new ConfigError(
      name,
      `must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>), got "${value}"`,
    );
  }
  return value;
}

/** An SQS queue URL. */
export function queueUrl(name: string, env: Env = process.env): string {
  const value = requiredString(name, env);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      name,
      `must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), got "${value}"`,
    );
  }
  if (!/^https?:$/.test(url.protocol) || url.pathname.split('/').filter(Boolean).length !== 2) {
    throw new ConfigError(
      name,
      `must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), got "${value}"`,
    );
  }
  return value;
}

/** REPOSITORY_PREFIXES: `*`, or a comma-separated list of repository-name prefixes. */
export function repositoryFilter(name: string, env: Env = process.env): RepositoryFilter {
  const value = requiredString(name, env);
  try {
    return RepositoryFilter.parse(value);
  } catch (e) {
    throw new ConfigError(name, (e as Error).message);
  }
}

/**
 * CANDIDATE_BASES: JSON `{"<repository prefix>": ["docker.io/library/ruby:2.7", ...]}`, the bases tried for images
 * under each prefix when no claim verifies (`""` applies to every repository). Undefined when unset or empty.
 */
export function candidateBases(name: string, env: Env = process.env): CandidateBases | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const shape = 'must be a JSON object of repository prefix → list of image references';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, `${shape}, got invalid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, `${shape}, got ${JSON.stringify(parsed)}`);
  }
  const out: Record<string, string[]> = {};
  for (const [prefix, refs] of Object.entries(parsed as Record<string, unknown>)) {
    if (!Array.isArray(refs) || refs.some((r) => typeof r !== 'string')) {
      throw new ConfigError(
        name,
        `${shape}: the entry for ${JSON.stringify(prefix)} is not a list of strings`,
      );
    }
    for (const r of refs as string[]) {
      try {
        Reference.parse(r);
      } catch (e) {
        throw new ConfigError(
          name,
          `the entry for ${JSON.stringify(prefix)} lists ${JSON.stringify(r)}, not an image reference: ${(e as Error).message}`,
        );
      }
    }
    out[prefix] = refs as string[];
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * PROVENANCE_LOCK_MODE (GOVERNANCE or COMPLIANCE) and PROVENANCE_LOCK_DAYS: the Object Lock each provenance log
 * entry is written with. Both or neither; undefined when neither is set (entries get the bucket's default).
 */
export function provenanceRetention(env: Env = process.env): LogRetention | undefined {
  const mode = optionalString('PROVENANCE_LOCK_MODE', '', env).toUpperCase();
  const daysSet = optionalString('PROVENANCE_LOCK_DAYS', '', env) !== '';
  if (mode === '' && !daysSet) return undefined;
  if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE')
    throw new ConfigError(
      'PROVENANCE_LOCK_MODE',
      mode === ''
        ? 'must be GOVERNANCE or COMPLIANCE when PROVENANCE_LOCK_DAYS is set, but is not set'
        : `must be GOVERNANCE or COMPLIANCE, got "${env.PROVENANCE_LOCK_MODE ?? ''}"`,
    );
  if (!daysSet) throw new ConfigError('PROVENANCE_LOCK_DAYS', 'is required when PROVENANCE_LOCK_MODE is set');
  return { mode, days: integer('PROVENANCE_LOCK_DAYS', 1, 1, env) };
}

/**
 * IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT, in seconds, read as the CLI reads them (lib/content/timeouts.ts):
 * how long a registry or S3 request may wait for its answer (default 300), and the longest pause mid-body (default
 * 60). Unset in the stacks (the defaults fit a Lambda); set them on a function to fail faster on a hung endpoint.
 */
export function timeouts(env: Env = process.env): Timeouts {
  try {
    return timeoutsFromEnv(env);
  } catch (e) {
    if (!(e instanceof TimeoutSettingError)) throw e;
    throw new ConfigError(e.setting, `must be a number of seconds greater than 0, got "${e.value}"`);
  }
}

/** What both functions read. */
export interface CommonConfig {
  readonly vaultBucket: string;
  /** Key prefix in the bucket; '' is the bucket root. */
  readonly vaultPrefix: string;
  readonly alertTopicArn: string;
  readonly repositories: RepositoryFilter;
  /** Registry and S3 request and idle timeouts. @default the clients' (300 s, 60 s) */
  readonly timeouts: Timeouts;
}

export interface SnapshotConfig extends CommonConfig {
  /** The queue's maxReceiveCount: the attempt on which a failure is final and alerted. @default 3 */
  readonly maxReceiveCount: number;
  /**
   * Add `repository` as a metric dimension. Every repository then becomes its own CloudWatch custom metric per
   * metric name (4 × repositories × $0.30 a month), so it is off by default: the per-image log line carries the
   * repository, and CloudWatch Logs Insights sums bytes per repository from it. @default false
   */
  readonly metricsPerRepository: boolean;
  /** Candidate bases per repository prefix, for base detection. @default none */
  readonly candidates?: CandidateBases;
  /**
   * The secret (name or ARN) with credentials for upstream registries, used by base detection to read candidate
   * bases (Docker Hub rate-limits anonymous pulls per address, and Lambda's addresses are shared). @default none
   */
  readonly credentialsSecret?: string;
  /** Object Lock on provenance entries. @default none */
  readonly provenanceRetention?: LogRetention;
  /** Push a deleted image that runs back from the vault (the deletion guard). @default false */
  readonly autoRestoreInUse: boolean;
}

export interface ReconcileConfig extends CommonConfig {
  readonly queueUrl: string;
  /** Images pushed this recently are left to their own push event (probably still in the queue). @default 900 */
  readonly gracePeriodSeconds: number;
  /** Object Lock on provenance entries the refresh appends. @default none */
  readonly provenanceRetention?: LogRetention;
}

function commonConfig(env: Env): CommonConfig {
  return {
    vaultBucket: requiredString('VAULT_BUCKET', env),
    vaultPrefix: optionalString('VAULT_PREFIX', '', env).replace(/^\/+|\/+$/g, ''),
    alertTopicArn: topicArn('ALERT_TOPIC_ARN', env),
    repositories: repositoryFilter('REPOSITORY_PREFIXES', env),
    timeouts: timeouts(env),
  };
}

/**
 * VAULT_BUCKET, VAULT_PREFIX (may be empty), ALERT_TOPIC_ARN, REPOSITORY_PREFIXES, MAX_RECEIVE_COUNT (default 3),
 * METRICS_PER_REPOSITORY (default false), CANDIDATE_BASES (default none), UPSTREAM_CREDENTIALS_SECRET (default none:
 * other registries anonymously), PROVENANCE_LOCK_MODE and PROVENANCE_LOCK_DAYS (default none), IMAGEVAULT_TIMEOUT and
 * IMAGEVAULT_IDLE_TIMEOUT (default: the clients'), AUTO_RESTORE_IN_USE (default false).
 */
export function snapshotConfig(env: Env = process.env): SnapshotConfig {
  const secret = optionalString('UPSTREAM_CREDENTIALS_SECRET', '', env);
  return {
    ...commonConfig(env),
    ...(secret !== '' ? { credentialsSecret: secret } : {}),
    maxReceiveCount: integer('MAX_RECEIVE_COUNT', 3, 1, env),
    metricsPerRepository: boolean('METRICS_PER_REPOSITORY', false, env),
    candidates: candidateBases('CANDIDATE_BASES', env),
    provenanceRetention: provenanceRetention(env),
    autoRestoreInUse: boolean('AUTO_RESTORE_IN_USE', false, env),
  };
}

/**
 * The common variables (IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT among them), QUEUE_URL, GRACE_PERIOD_SECONDS
 * (default 900), PROVENANCE_LOCK_MODE and PROVENANCE_LOCK_DAYS (default none).
 */
export function reconcileConfig(env: Env = process.env): ReconcileConfig {
  return {
    ...commonConfig(env),
    queueUrl: queueUrl('QUEUE_URL', env),
    gracePeriodSeconds: integer('GRACE_PERIOD_SECONDS', 900, 0, env),
    provenanceRetention: provenanceRetention(env),
  };
}

export interface UpstreamConfig {
  readonly vaultBucket: string;
  /** Key prefix in the bucket; '' is the bucket root. */
  readonly vaultPrefix: string;
  readonly alertTopicArn: string;
  /** The secret (name or ARN) with credentials for private upstreams. @default none: anonymous */
  readonly credentialsSecret?: string;
  /** The ECR host quoted in alerts. @default derived from the function's ARN at invocation */
  readonly ecrRegistry?: string;
  /** Registry and S3 request and idle timeouts. @default the clients' (300 s, 60 s) */
  readonly timeouts: Timeouts;
  /** The newer-versions watch per repository prefix; `{}` is off. @default every upstream base, daily */
  readonly versionRules?: VersionWatchRules;
  /** Days between two newer-versions digests. @default 7 */
  readonly digestDays?: number;
}

/**
 * NEWER_VERSIONS: JSON `{"<repository prefix>": {"upstreams": [...], "ignore": [...], "intervalHours": 24,
 * "prereleases": false, "dates": false}}` (lib/drift/version-rules.ts); `{}` turns the watch off. Undefined when
 * unset or empty (the default watch).
 */
export function versionRules(name: string, env: Env = process.env): VersionWatchRules | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'must be a JSON object of repository prefix → watch rule, got invalid JSON');
  }
  const problems = versionRulesProblems(name, parsed);
  if (problems.length > 0) throw new ConfigError(name, problems.join('; '));
  return parsed as VersionWatchRules;
}

/**
 * VAULT_BUCKET, VAULT_PREFIX (may be empty), ALERT_TOPIC_ARN, UPSTREAM_CREDENTIALS_SECRET (optional),
 * ECR_REGISTRY (optional), IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (optional), NEWER_VERSIONS (optional:
 * every upstream base, daily) and NEWER_VERSIONS_DIGEST_DAYS (optional: 7).
 */
export function upstreamConfig(env: Env = process.env): UpstreamConfig {
  const secret = optionalString('UPSTREAM_CREDENTIALS_SECRET', '', env);
  const registry = optionalString('ECR_REGISTRY', '', env);
  const rules = versionRules('NEWER_VERSIONS', env);
  if (registry !== '' && !/^[a-z0-9.-]+(:\d+)?$/i.test(registry)) {
    throw new ConfigError(
      'ECR_REGISTRY',
      `must be a registry host like 123456789012.dkr.ecr.eu-west-1.amazonaws.com, got "${registry}"`,
    );
  }
  return {
    vaultBucket: requiredString('VAULT_BUCKET', env),
    vaultPrefix: optionalString('VAULT_PREFIX', '', env).replace(/^\/+|\/+$/g, ''),
    alertTopicArn: topicArn('ALERT_TOPIC_ARN', env),
    ...(secret !== '' ? { credentialsSecret: secret } : {}),
    ...(registry !== '' ? { ecrRegistry: registry } : {}),
    timeouts: timeouts(env),
    ...(rules ? { versionRules: rules } : {}),
    digestDays: integer('NEWER_VERSIONS_DIGEST_DAYS', 7, 1, env),
  };
}

export interface IdentityConfig {
  readonly vaultBucket: string;
  /** Key prefix in the bucket; '' is the bucket root. */
  readonly vaultPrefix: string;
  /** Object Lock on provenance entries. @default none */
  readonly provenanceRetention?: LogRetention;
  /** S3 request and idle timeouts. @default the S3 store's (300 s, 60 s) */
  readonly timeouts: Timeouts;
}

/**
 * VAULT_BUCKET, VAULT_PREFIX (may be empty), PROVENANCE_LOCK_MODE and PROVENANCE_LOCK_DAYS (optional),
 * IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (optional).
 */
export function identityConfig(env: Env = process.env): IdentityConfig {
  return {
    vaultBucket: requiredString('VAULT_BUCKET', env),
    vaultPrefix: optionalString('VAULT_PREFIX', '', env).replace(/^\/+|\/+$/g, ''),
    provenanceRetention: provenanceRetention(env),
    timeouts: timeouts(env),
  };
}

/** The scan function reads what the identity function reads. */
export type ScanConfig = IdentityConfig;

/** What identityConfig reads. */
export function scanConfig(env: Env = process.env): ScanConfig {
  return identityConfig(env);
}

/** A comma-separated list (empty entries dropped); `fallback` when unset or empty. */
function list(name: string, fallback: string[], env: Env): string[] {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** An EKS cluster name: 1–100 letters, digits, `-` and `_`, starting with a letter or digit. */
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;

export interface InventoryConfig {
  readonly vaultBucket: string;
  /** Key prefix in the bucket; '' is the bucket root. */
  readonly vaultPrefix: string;
  /** The snapshot queue: gaps in this account's ECR go there. */
  readonly queueUrl: string;
  readonly repositories: RepositoryFilter;
  /** The function's own region: its ECS, Lambda and EKS, and the ECR gaps are enqueued from. */
  readonly region: string;
  /** Every region whose ECS and Lambda are scanned, the function's first. */
  readonly regions: string[];
  /** EKS clusters (in the function's region) whose pods are scanned. */
  readonly eksClusters: string[];
  /** S3 request and idle timeouts. @default the S3 store's (300 s, 60 s) */
  readonly timeouts: Timeouts;
}

/**
 * VAULT_BUCKET, VAULT_PREFIX (may be empty), QUEUE_URL, REPOSITORY_PREFIXES, AWS_REGION (set by Lambda),
 * INVENTORY_REGIONS (optional, comma-separated: more regions whose ECS and Lambda are scanned), EKS_CLUSTERS
 * (optional, comma-separated cluster names), IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (optional).
 */
export function inventoryConfig(env: Env = process.env): InventoryConfig {
  const region = requiredString('AWS_REGION', env);
  const extra = list('INVENTORY_REGIONS', [], env);
  const bad = extra.filter((r) => !REGION.test(r));
  if (bad.length > 0)
    throw new ConfigError('INVENTORY_REGIONS', `not AWS regions: ${bad.map((r) => `"${r}"`).join(', ')}`);
  const clusters = list('EKS_CLUSTERS', [], env);
  const badClusters = clusters.filter((c) => !CLUSTER_NAME.test(c));
  if (badClusters.length > 0)
    throw new ConfigError(
      'EKS_CLUSTERS',
      `not EKS cluster names: ${badClusters.map((c) => `"${c}"`).join(', ')}`,
    );
  return {
    vaultBucket: requiredString('VAULT_BUCKET', env),
    vaultPrefix: optionalString('VAULT_PREFIX', '', env).replace(/^\/+|\/+$/g, ''),
    queueUrl: queueUrl('QUEUE_URL', env),
    repositories: repositoryFilter('REPOSITORY_PREFIXES', env),
    region,
    regions: [...new Set([region, ...extra])],
    eksClusters: clusters,
    timeouts: timeouts(env),
  };
}

export interface RetentionConfig {
  readonly vaultBucket: string;
  /** Key prefix in the bucket; '' is the bucket root. */
  readonly vaultPrefix: string;
  /** The policy, checked as `imagevault retention` checks a policy file. */
  readonly policy: RetentionPolicy;
  /** gc's grace period: blobs younger than this are never marked. @default 24 hours */
  readonly graceMs: number;
  /** S3 request and idle timeouts. @default the S3 store's (300 s, 60 s) */
  readonly timeouts: Timeouts;
}

/**
 * VAULT_BUCKET, VAULT_PREFIX (may be empty), RETENTION_POLICY (the policy's JSON), GC_GRACE_HOURS (optional: 24),
 * IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (optional).
 */
export function retentionConfig(env: Env = process.env): RetentionConfig {
  let policy: RetentionPolicy;
  try {
    policy = parsePolicy(requiredString('RETENTION_POLICY', env), 'RETENTION_POLICY');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError('RETENTION_POLICY', (e as Error).message.replace(/^RETENTION_POLICY: /, ''));
  }
  return {
    vaultBucket: requiredString('VAULT_BUCKET', env),
    vaultPrefix: optionalString('VAULT_PREFIX', '', env).replace(/^\/+|\/+$/g, ''),
    policy,
    graceMs: integer('GC_GRACE_HOURS', 24, 1, env) * 3_600_000,
    timeouts: timeouts(env),
  };
}
