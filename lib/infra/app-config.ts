import type { App } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import { versionRulesProblems, type VersionWatchRules } from '../drift/version-rules';
import { ImageVaultStack, ReplicaStack } from './stacks';
import {
  checkCandidateBases,
  checkEmails,
  checkInteger,
  checkKeyPrefix,
  checkObjectLock,
  checkProvenanceRetention,
  checkProvenanceTrail,
  checkRepositories,
  OBJECT_LOCK_MODES,
  Problems,
  type ObjectLockMode,
  type ProvenanceTrailMode,
} from './validation';
import { STORAGE_DEFAULTS } from './vault-bucket';

/** The app's settings, from cdk.json's context (or `-c key=value`) and the CDK CLI's environment. */
export interface AppConfig {
  /** The account of both stacks: CDK_DEFAULT_ACCOUNT. @default unresolved (`AWS::AccountId`), for an offline synth */
  readonly account?: string;
  /** The primary region: where ECR and the vault are. */
  readonly region: string;
  /** The replica's region; never the primary region. */
  readonly replicaRegion: string;
  /** `['*']` or ECR repository name prefixes. */
  readonly repositories: string[];
  /** E-mail addresses subscribed to the alert topic. */
  readonly alertEmails: string[];
  /** The reconcile's EventBridge schedule expression, `rate(...)` or `cron(...)`. */
  readonly reconcileSchedule: string;
  /** Object Lock on the vault and its replica. */
  readonly objectLock: ObjectLockMode;
  /** Default retention in days with Object Lock on. @default the construct's (30) */
  readonly objectLockDays?: number;
  /** Days before noncurrent versions move to a cheaper storage class. */
  readonly noncurrentTransitionDays: number;
  /** Days before what gc deleted (noncurrent versions) expires. @default the construct's (30) */
  readonly noncurrentExpirationDays?: number;
  /** Key prefix of the vault in its bucket; '' for the whole bucket. */
  readonly vaultPrefix: string;
  /** Repository prefix ('' for all) → candidate base references. @default none */
  readonly candidateBases?: Record<string, string[]>;
  /** The upstream check's EventBridge schedule expression. */
  readonly upstreamSchedule: string;
  /** The newer-versions watch per repository prefix; `{}` is off. @default the construct's (every upstream, daily) */
  readonly newerVersions?: VersionWatchRules;
  /** Days between two newer-versions digests. @default the construct's (7) */
  readonly newerVersionsDigestDays?: number;
  /** The complete ARN of the secret with upstream registry credentials. @default none: anonymous */
  readonly upstreamCredentialsSecretArn?: string;
  /** The ARN of the customer managed KMS key that encrypts that secret. @default none: the secret's key is `aws/secretsmanager` */
  readonly upstreamCredentialsKeyArn?: string;
  /** Where the CloudTrail PutImage events come from: an existing trail, or one the stack creates. */
  readonly provenanceTrail: ProvenanceTrailMode;
  /** Object Lock days of each provenance entry. @default the construct's (365, or objectLockDays if longer) */
  readonly provenanceRetentionDays?: number;
  /** Reserve Lambda concurrency for the snapshot (its maximum) and the reconcile (1). */
  readonly reserveConcurrency: boolean;
  /** The scheduled in-use inventory. */
  readonly inventory: boolean;
  /** Its EventBridge schedule expression. */
  readonly inventorySchedule: string;
  /** More regions whose ECS and Lambda it scans. @default none */
  readonly inventoryRegions?: string[];
  /** EKS clusters (names, in `region`) whose pods it lists. @default none */
  readonly eksClusters?: string[];
  /** Give the inventory's role an EKS access entry on each cluster. @default the construct's (true) */
  readonly eksAccessEntries?: boolean;
  /** The retention policy; unset, no retention function (nothing can delete). @default none */
  readonly retentionPolicy?: Record<string, unknown>;
  /** The retention function's EventBridge schedule expression. */
  readonly retentionSchedule?: string;
  /** gc's grace period in hours. @default the construct's (24) */
  readonly gcGraceHours?: number;
  /** Push a deleted image that still runs back from the vault (the deletion guard). */
  readonly autoRestoreInUse: boolean;
}

/** Context defaults; cdk.json repeats them so that they are visible (and documented in the README). */
export const CONTEXT_DEFAULTS = {
  replicaRegion: 'us-west-2',
  repositories: ['*'],
  alertEmails: [] as string[],
  reconcileSchedule: 'rate(6 hours)',
  upstreamSchedule: 'rate(1 hour)',
  objectLock: 'off' as ObjectLockMode,
  noncurrentTransitionDays: 30,
  provenanceTrail: 'existing' as ProvenanceTrailMode,
  vaultPrefix: '',
  reserveConcurrency: true,
  inventory: true,
  inventorySchedule: 'rate(15 minutes)',
  retentionSchedule: 'rate(1 day)',
  autoRestoreInUse: false,
  /** When neither the `region` context nor CDK_DEFAULT_REGION says (an offline synth). */
  region: 'us-east-1',
};

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** EventBridge's rate(): singular unit for 1, plural otherwise; cron() with six fields. */
const RATE = /^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$/;
const CRON = /^cron\(\S+( \S+){5}\)$/;
/** A complete secret ARN: the name and Secrets Manager's six-character suffix. */
const SECRET_ARN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
/** A KMS key ARN (not an alias: an alias ARN does not authorize through a key's policy). */
const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

type Context = (key: string) => unknown;

/**
 * Reads and validates the app's settings; every problem is reported at once, naming the context key. Values from
 * `-c key=value` arrive as strings: lists may then be JSON (`'["a","b"]'`) or comma-separated, numbers numeric.
 */
export function readAppConfig(context: Context, env: NodeJS.ProcessEnv = process.env): AppConfig {
  const problems = new Problems();
  const get = (key: string) => {
    const v = context(key);
    return v === null || v === '' ? undefined : v;
  };
  const list = (key: string, fallback: string[]): string[] => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === 'string') {
      if (v.trim().startsWith('[')) {
        try {
          const parsed: unknown = JSON.parse(v);
          if (Array.isArray(parsed)) return parsed.map(String);
        } catch {
          // reported below
        }
        problems.add(`${key} ${JSON.stringify(v)} is not a JSON list`);
        return fallback;
      }
      return v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
    problems.add(`${key} ${JSON.stringify(v)} must be a list of strings`);
    return fallback;
  };
  const int = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || Number.isNaN(n)) {
      problems.add(`${key} ${JSON.stringify(v)} must be a whole number`);
      return undefined;
    }
    return n;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    problems.add(`${key} ${JSON.stringify(v)} must be true or false`);
    return fallback;
  };
  /** A structured value: as given (cdk.json), or a JSON string (`-c key='{...}'`); unparsable JSON is one problem. */
  const json = (key: string): unknown => {
    const v = get(key) as unknown;
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      problems.add(`${key} ${JSON.stringify(v)} is not a JSON object`);
      return undefined;
    }
  };
  const str = (key: string, fallback: string): string => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') problems.add(`${key} ${JSON.stringify(v)} must be a string`);
    return String(v);
  };

  const region = str('region', env.CDK_DEFAULT_REGION || CONTEXT_DEFAULTS.region);
  const replicaRegion = str('replicaRegion', CONTEXT_DEFAULTS.replicaRegion);
  for (const [key, value] of [
    ['region', region],
    ['replicaRegion', replicaRegion],
  ] as const) {
    if (!REGION.test(value))
      problems.add(`${key} ${JSON.stringify(value)} is not an AWS region like 'eu-west-1'`);
  }
  if (region === replicaRegion) {
    problems.add(
      `replicaRegion ${JSON.stringify(replicaRegion)} is the primary region too (from the region context or CDK_DEFAULT_REGION): choose another region for the replica`,
    );
  }

  const repositories = list('repositories', CONTEXT_DEFAULTS.repositories);
  checkRepositories(problems, 'repositories', repositories);
  const alertEmails = list('alertEmails', CONTEXT_DEFAULTS.alertEmails);
  checkEmails(problems, 'alertEmails', alertEmails);

  const reconcileSchedule = str('reconcileSchedule', CONTEXT_DEFAULTS.reconcileSchedule);
  if (!RATE.test(reconcileSchedule) && !CRON.test(reconcileSchedule)) {
    problems.add(
      `reconcileSchedule ${JSON.stringify(reconcileSchedule)} must be an EventBridge schedule: 'rate(6 hours)' or 'cron(0 */6 * * ? *)'`,
    );
  }
  const upstreamSchedule = str('upstreamSchedule', CONTEXT_DEFAULTS.upstreamSchedule);
  if (!RATE.test(upstreamSchedule) && !CRON.test(upstreamSchedule)) {
    problems.add(
      `upstreamSchedule ${JSON.stringify(upstreamSchedule)} must be an EventBridge schedule: 'rate(1 hour)' or 'cron(0 * * * ? *)'`,
    );
  }

  const candidateBases = json('candidateBases') as Record<string, string[]> | undefined;
  checkCandidateBases(problems, 'candidateBases', candidateBases);

  const newerVersions = json('newerVersions');
  if (newerVersions !== undefined)
    for (const p of versionRulesProblems('newerVersions', newerVersions)) problems.add(p);
  const newerVersionsDigestDays = int('newerVersionsDigestDays');
  if (newerVersionsDigestDays !== undefined)
    checkInteger(problems, 'newerVersionsDigestDays', newerVersionsDigestDays, 1, 365);

  const upstreamCredentialsSecretArn = get('upstreamCredentialsSecretArn');
  if (
    upstreamCredentialsSecretArn !== undefined &&
    (typeof upstreamCredentialsSecretArn !== 'string' || !SECRET_ARN.test(upstreamCredentialsSecretArn))
  ) {
    problems.add(
      `upstreamCredentialsSecretArn ${JSON.stringify(upstreamCredentialsSecretArn)} must be a complete secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)`,
    );
  }

  const upstreamCredentialsKeyArn = get('upstreamCredentialsKeyArn');
  if (upstreamCredentialsKeyArn !== undefined) {
    if (typeof upstreamCredentialsKeyArn !== 'string' || !KEY_ARN.test(upstreamCredentialsKeyArn))
      problems.add(
        `upstreamCredentialsKeyArn ${JSON.stringify(upstreamCredentialsKeyArn)} must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)`,
      );
    if (upstreamCredentialsSecretArn === undefined)
      problems.add(
        `upstreamCredentialsKeyArn is set but upstreamCredentialsSecretArn is not: it is the key of that secret`,
      );
  }

  const objectLock = str('objectLock', CONTEXT_DEFAULTS.objectLock) as ObjectLockMode;
  const objectLockDays = int('objectLockDays');
  checkObjectLock(problems, { mode: 'objectLock', days: 'objectLockDays' }, objectLock, objectLockDays);

  const provenanceTrail = str('provenanceTrail', CONTEXT_DEFAULTS.provenanceTrail) as ProvenanceTrailMode;
  checkProvenanceTrail(problems, 'provenanceTrail', provenanceTrail);
  const provenanceRetentionDays = int('provenanceRetentionDays');
  if ((OBJECT_LOCK_MODES as readonly string[]).includes(objectLock))
    checkProvenanceRetention(
      problems,
      objectLock,
      objectLockDays ?? STORAGE_DEFAULTS.objectLockDays,
      provenanceRetentionDays,
    );

  const noncurrentTransitionDays =
    int('noncurrentTransitionDays') ?? CONTEXT_DEFAULTS.noncurrentTransitionDays;
  checkInteger(problems, 'noncurrentTransitionDays', noncurrentTransitionDays, 1, 36500);
  const noncurrentExpirationDays = int('noncurrentExpirationDays');
  if (noncurrentExpirationDays !== undefined)
    checkInteger(problems, 'noncurrentExpirationDays', noncurrentExpirationDays, 1, 36500);

  const vaultPrefix = str('vaultPrefix', CONTEXT_DEFAULTS.vaultPrefix);
  checkKeyPrefix(problems, 'vaultPrefix', vaultPrefix);

  const reserveConcurrency = bool('reserveConcurrency', CONTEXT_DEFAULTS.reserveConcurrency);
  const autoRestoreInUse = bool('autoRestoreInUse', CONTEXT_DEFAULTS.autoRestoreInUse);

  const inventory = bool('inventory', CONTEXT_DEFAULTS.inventory);
  const schedule = (key: string, fallback: string, example: string) => {
    const v = str(key, fallback);
    if (!RATE.test(v) && !CRON.test(v))
      problems.add(`${key} ${JSON.stringify(v)} must be an EventBridge schedule: ${example}`);
    return v;
  };
  const inventorySchedule = schedule(
    'inventorySchedule',
    CONTEXT_DEFAULTS.inventorySchedule,
    "'rate(15 minutes)' or 'cron(0/15 * * * ? *)'",
  );
  const inventoryRegions = get('inventoryRegions') === undefined ? undefined : list('inventoryRegions', []);
  const eksClusters = get('eksClusters') === undefined ? undefined : list('eksClusters', []);
  const eksAccessEntries = get('eksAccessEntries') === undefined ? undefined : bool('eksAccessEntries', true);
  let retentionPolicy = json('retentionPolicy');
  if (
    retentionPolicy !== undefined &&
    (typeof retentionPolicy !== 'object' || Array.isArray(retentionPolicy))
  ) {
    problems.add(
      `retentionPolicy ${JSON.stringify(retentionPolicy)} must be a JSON object ({"rules": [...]})`,
    );
    retentionPolicy = undefined;
  }
  const retentionSchedule =
    get('retentionSchedule') === undefined
      ? undefined
      : schedule(
          'retentionSchedule',
          CONTEXT_DEFAULTS.retentionSchedule,
          "'rate(1 day)' or 'cron(0 3 * * ? *)'",
        );
  const gcGraceHours = int('gcGraceHours');

  problems.throwIfAny('imagevault context (cdk.json or -c)');
  return {
    account: env.CDK_DEFAULT_ACCOUNT || undefined,
    region,
    replicaRegion,
    repositories,
    alertEmails,
    reconcileSchedule,
    objectLock,
    objectLockDays,
    noncurrentTransitionDays,
    ...(noncurrentExpirationDays !== undefined ? { noncurrentExpirationDays } : {}),
    vaultPrefix,
    ...(candidateBases && Object.keys(candidateBases).length > 0
      ? { candidateBases: candidateBases as Record<string, string[]> }
      : {}),
    upstreamSchedule,
    ...(newerVersions !== undefined ? { newerVersions: newerVersions as VersionWatchRules } : {}),
    ...(newerVersionsDigestDays !== undefined ? { newerVersionsDigestDays } : {}),
    ...(upstreamCredentialsSecretArn
      ? { upstreamCredentialsSecretArn: upstreamCredentialsSecretArn as string }
      : {}),
    ...(upstreamCredentialsKeyArn ? { upstreamCredentialsKeyArn: upstreamCredentialsKeyArn as string } : {}),
    provenanceTrail,
    ...(provenanceRetentionDays !== undefined ? { provenanceRetentionDays } : {}),
    reserveConcurrency,
    inventory,
    inventorySchedule,
    ...(inventoryRegions ? { inventoryRegions } : {}),
    ...(eksClusters ? { eksClusters } : {}),
    ...(eksAccessEntries !== undefined ? { eksAccessEntries } : {}),
    ...(retentionPolicy !== undefined ? { retentionPolicy: retentionPolicy as Record<string, unknown> } : {}),
    ...(retentionSchedule !== undefined ? { retentionSchedule } : {}),
    ...(gcGraceHours !== undefined ? { gcGraceHours } : {}),
    autoRestoreInUse,
  };
}

/** Stack names: the vault's, and its replica's. */
export const STACK_NAMES = { vault: 'ImageVault', replica: 'ImageVaultReplica' };

/**
 * Adds the replica stack (second region) and the vault stack (primary region) to an app. Both get explicit
 * regions: without them CDK would treat the two as one environment and replication could not be wired.
 */
export function addImageVaultStacks(
  app: App,
  config: AppConfig,
): { vault: ImageVaultStack; replica: ReplicaStack } {
  const storage = {
    objectLock: config.objectLock,
    objectLockDays: config.objectLockDays,
    noncurrentTransitionDays: config.noncurrentTransitionDays,
    noncurrentExpirationDays: config.noncurrentExpirationDays,
  };
  const replica = new ReplicaStack(app, STACK_NAMES.replica, {
    env: { account: config.account, region: config.replicaRegion },
    description: 'imagevault: replica of the image vault bucket, restorable on its own',
    ...storage,
  });
  const vault = new ImageVaultStack(app, STACK_NAMES.vault, {
    env: { account: config.account, region: config.region },
    description: 'imagevault: snapshots every ECR push into a versioned, replicated S3 vault',
    ...storage,
    repositories: config.repositories,
    alertEmails: config.alertEmails,
    reconcileSchedule: events.Schedule.expression(config.reconcileSchedule),
    vaultPrefix: config.vaultPrefix,
    replica: replica.replica.target,
    candidateBases: config.candidateBases,
    upstreamSchedule: events.Schedule.expression(config.upstreamSchedule),
    newerVersions: config.newerVersions,
    newerVersionsDigestDays: config.newerVersionsDigestDays,
    upstreamCredentialsSecretArn: config.upstreamCredentialsSecretArn,
    upstreamCredentialsKeyArn: config.upstreamCredentialsKeyArn,
    provenanceTrail: config.provenanceTrail,
    provenanceRetentionDays: config.provenanceRetentionDays,
    reserveConcurrency: config.reserveConcurrency,
    inventory: config.inventory,
    // The default schedule stays the construct's, unless the inventory is off (it then takes no schedule).
    ...(config.inventory && { inventorySchedule: events.Schedule.expression(config.inventorySchedule) }),
    inventoryRegions: config.inventoryRegions,
    eksClusters: config.eksClusters,
    eksAccessEntries: config.eksAccessEntries,
    retentionPolicy: config.retentionPolicy,
    ...(config.retentionSchedule && {
      retentionSchedule: events.Schedule.expression(config.retentionSchedule),
    }),
    gcGraceHours: config.gcGraceHours,
    autoRestoreInUse: config.autoRestoreInUse,
  });
  return { vault, replica };
}
