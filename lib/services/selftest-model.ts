import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../content';
import type { Registries } from '../registry';
import type { RepositoryControl } from './restore';

/*
 * The self-test's model: the AWS control plane it drives (SelfTestAws), its steps and report, its options and
 * defaults, and the plain rules the run applies (names, periods, the fix for each step). lib/services/selftest.ts
 * runs it.
 */

/** Where an ECR registry lives: its account and region. */
export interface AwsLocation {
  readonly account: string;
  readonly region: string;
}

/** A deployed stack, as DescribeStacks says. */
export interface StackInfo {
  /** `arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>`: where the stack lives. */
  readonly stackId: string;
  readonly status: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** When it was last created or updated. */
  readonly deployedAt?: Date;
}

export interface AlarmInfo {
  readonly state: string;
  readonly actionsEnabled: boolean;
  readonly alarmActions: readonly string[];
}

/** One `Action` item of an alarm's history: CloudWatch's attempt to run an alarm action (publish to a topic). */
export interface AlarmActionRecord {
  readonly time: Date;
  readonly succeeded: boolean;
  /** "Successfully executed action arn:…" or "Failed to execute action arn:…" */
  readonly summary: string;
  /** The error CloudWatch recorded, for a failed action. */
  readonly error?: string;
}

export interface RuleInfo {
  readonly state: string;
  readonly scheduleExpression?: string;
}

/** One period of a metric: its start and its sum. */
export interface Datapoint {
  readonly time: Date;
  readonly sum: number;
}

/**
 * The AWS control-plane calls the self-test makes, and no other (each names its IAM action). ECR's data plane (the
 * push, the restore) goes through the registry client with ECR credentials; S3 through the ObjectStore.
 */
export interface SelfTestAws extends RepositoryControl {
  /** cloudformation:DescribeStacks in `region` (the default region when undefined); undefined when none exists. */
  describeStack(stackName: string, region: string | undefined): Promise<StackInfo | undefined>;
  /** ecr:BatchDeleteImage of `tags`; returns the tags ECR could not delete, with the reason. */
  deleteImageTags(where: AwsLocation, repository: string, tags: readonly string[]): Promise<string[]>;
  /** ecr:DeleteRepository, with the images still in it. */
  deleteRepository(where: AwsLocation, repository: string): Promise<void>;
  /** cloudwatch:DescribeAlarms of one alarm; undefined when it does not exist. */
  describeAlarm(region: string, name: string): Promise<AlarmInfo | undefined>;
  /** cloudwatch:SetAlarmState. */
  setAlarmState(region: string, name: string, state: 'OK' | 'ALARM', reason: string): Promise<void>;
  /** cloudwatch:DescribeAlarmHistory, `Action` items since `since`. */
  alarmActions(region: string, name: string, since: Date): Promise<AlarmActionRecord[]>;
  /** events:DescribeRule; undefined when the rule does not exist. */
  describeRule(region: string, name: string): Promise<RuleInfo | undefined>;
  /** cloudwatch:GetMetricStatistics of AWS/Lambda Invocations (Sum) for one function. */
  invocations(
    region: string,
    functionName: string,
    start: Date,
    end: Date,
    periodSeconds: number,
  ): Promise<Datapoint[]>;
}

export type StepName =
  | 'stacks'
  | 'push'
  | 'snapshot'
  | 'replica'
  | 'restore'
  | 'alert'
  | 'reconcile-schedule'
  | 'upstream-schedule'
  | 'cleanup';

export type StepStatus = 'PASS' | 'FAIL' | 'SKIP';

export interface StepResult {
  step: StepName;
  status: StepStatus;
  /** What was found, in one line. */
  detail: string;
  /** For a FAIL: what to do, in one line. */
  fix?: string;
  seconds: number;
}

export interface SelfTestReport {
  ok: boolean;
  stack: string;
  region?: string;
  account?: string;
  /** The test image: the scratch repository, the two tags and the digest. */
  image?: { repository: string; tags: string[]; digest: string; repositoryCreated: boolean };
  /** The test alert: the mail each confirmed subscription of the topic gets. */
  mail?: { topicArn?: string; subject: string };
  steps: StepResult[];
}

export interface SelfTestOptions {
  /** The vault's stack. @default 'ImageVault' (the app's, see lib/infra/app-config.ts STACK_NAMES) */
  readonly stack?: string;
  /** The vault stack's region. @default the AWS SDK's default region (AWS_REGION, the profile) */
  readonly region?: string;
  /** The replica's stack. @default the vault stack's ReplicaStackName output */
  readonly replicaStack?: string;
  /** The replica stack's region. @default the vault stack's ReplicaRegion output */
  readonly replicaRegion?: string;
  /**
   * The scratch ECR repository. Must be under one of the protected prefixes (else no event reaches the vault).
   * @default `imagevault-selftest` under the first protected prefix
   */
  readonly repository?: string;
  /** How long to wait for the snapshot to appear in the vault. @default 300 s */
  readonly snapshotTimeoutMs?: number;
  /** How long to wait for S3 to replicate the manifest. @default 900 s (Replication Time Control's 15 minutes) */
  readonly replicationTimeoutMs?: number;
  /** How long to wait for CloudWatch to record the test alarm's action. @default 60 s */
  readonly alertTimeoutMs?: number;
  /** Time between two looks while waiting. @default 5 s */
  readonly pollMs?: number;
  /** Progress lines (stderr in the CLI). @default none */
  readonly progress?: (line: string) => void;
  /** @default a random id */
  readonly runId?: string;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface SelfTestDeps {
  readonly aws: SelfTestAws;
  /** Registry clients; ECR hosts must get ECR credentials (GetAuthorizationToken). */
  readonly registries: Registries;
  /** An S3 store by URL (`s3://bucket/prefix`) in a region (the SDK's default when undefined); only read. */
  readonly openStore: (url: string, region: string | undefined) => Promise<ObjectStore>;
  /** The registry host of an account's ECR registry in a region. */
  readonly registryHost: (where: AwsLocation) => string;
}

export const SELFTEST_DEFAULTS = {
  stack: 'ImageVault',
  repositoryName: 'imagevault-selftest',
  snapshotTimeoutMs: 300_000,
  replicationTimeoutMs: 900_000,
  alertTimeoutMs: 60_000,
  pollMs: 5_000,
  /** A waiting line at most this often. */
  progressEveryMs: 15_000,
  /** A cron schedule's period is not parsed: the last run is looked for over this window. */
  cronWindowMs: 24 * 60 * 60 * 1000,
  /** GetMetricStatistics answers at most 1,440 datapoints, and older data has coarser periods. */
  maxWindowMs: 14 * 24 * 60 * 60 * 1000,
};

/** The fix for a step that threw (an AWS or registry error): most often a permission. */
export const FIXES: Partial<Record<StepName, string>> = {
  stacks: 'the self-test needs cloudformation:DescribeStacks on the stacks (README: the self-test policy)',
  push: 'the self-test needs ECR push rights on the scratch repository and ecr:GetAuthorizationToken (README: the self-test policy)',
  snapshot: 'the self-test needs read on the vault bucket and its KMS key (ImageVault.grantRead)',
  replica: 'the self-test needs s3:GetObject on the replica bucket (VaultReplica.grantRead)',
  restore: 'the self-test needs read on the vault and push on the scratch repository',
  alert:
    'the self-test needs cloudwatch:DescribeAlarms, SetAlarmState and DescribeAlarmHistory on the test alarm',
  'reconcile-schedule': 'the self-test needs events:DescribeRule and cloudwatch:GetMetricStatistics',
  'upstream-schedule': 'the self-test needs events:DescribeRule and cloudwatch:GetMetricStatistics',
};

/** Stack states in which the stack is deployed and usable. */
export const DEPLOYED = new Set([
  'CREATE_COMPLETE',
  'UPDATE_COMPLETE',
  'UPDATE_ROLLBACK_COMPLETE',
  'IMPORT_COMPLETE',
]);

/**
 * The subject of CloudWatch's alarm mail: `ALARM: "<alarm name>" in <region name>`, the region by its long name
 * (the one seen in alarm messages: "US East (N. Virginia)"); other regions' long names are not listed here.
 */
export function alarmSubject(name: string, region: string): string {
  const long = region === 'us-east-1' ? 'US East (N. Virginia)' : `<the long name of ${region}>`;
  return `ALARM: "${name}" in ${long}`;
}

/** `imagevault-selftest` under the first protected prefix: `team-a/imagevault-selftest`, `payments/imagevault-selftest`. */
export function scratchRepository(protectedRepositories: string | undefined): string {
  const first = (protectedRepositories ?? '*').split(',')[0].trim();
  if (first === '*' || first === '') return SELFTEST_DEFAULTS.repositoryName;
  const joiner = /[/_.-]$/.test(first) ? '' : '/';
  return `${first}${joiner}${SELFTEST_DEFAULTS.repositoryName}`;
}

/** The two tags of a run: the pushed one, and the one the restore writes. */
export function testTags(id: string): [string, string] {
  return [`selftest-${id}`, `selftest-${id}-restored`];
}

export function runId(now: Date): string {
  return `${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`.toLowerCase();
}

/** A rate() expression's period in ms; undefined for cron() (not parsed) or anything else. */
export function periodOf(expression: string | undefined): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression ?? '');
  if (!m) return undefined;
  const unit = m[2].startsWith('minute') ? 60_000 : m[2].startsWith('hour') ? 3600_000 : 86_400_000;
  return Number(m[1]) * unit;
}

export const seconds = (ms: number) => Math.round(ms / 1000);

export function message(e: unknown): string {
  const err = e as { name?: string; message?: string };
  const text = err?.message ?? String(e);
  return err?.name && err.name !== 'Error' && !text.startsWith(err.name) ? `${err.name}: ${text}` : text;
}
