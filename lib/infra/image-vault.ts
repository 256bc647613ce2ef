import { Stack, Token } from 'aws-cdk-lib';
import type * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as glue from 'aws-cdk-lib/aws-glue';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { versionRulesProblems, type VersionWatchRules } from '../drift/version-rules';
import { acknowledgeGranteeWildcard, acknowledgeWildcards } from './acknowledge';
import { Alerts } from './alerts';
import {
  checkInventoryOptions,
  INVENTORY_DEFAULTS,
  InventoryScan,
  type InventoryScanOptions,
} from './inventory-scan';
import { checkRetentionOptions, RetentionRun, type RetentionRunOptions } from './retention-run';
import { Monitoring } from './monitoring';
import { ProvenancePipeline } from './provenance-pipeline';
import { Reconcile } from './reconcile';
import { SnapshotPipeline } from './snapshot-pipeline';
import { UpstreamWatcher } from './upstream-watcher';
import { VAULT_DEFAULTS } from './vault-defaults';
import { pinFeatureFlags } from './feature-flags';
import { keepFlatLogicalIds } from './logical-ids';
import {
  checkCandidateBases,
  checkEmails,
  checkInteger,
  checkKeyPrefix,
  checkProvenanceRetention,
  checkProvenanceTrail,
  checkRepositories,
  Problems,
  type ProvenanceTrailMode,
} from './validation';
import {
  checkStorageProps,
  STORAGE_DEFAULTS,
  VaultBucket,
  type VaultReplicaTarget,
  type VaultStorageProps,
} from './vault-bucket';

export { VAULT_DEFAULTS } from './vault-defaults';
export {
  ecrImageActionPattern,
  ecrPullThroughCachePattern,
  ecrPutImagePattern,
  ecrReplicationPattern,
  ecrScanPattern,
  inspectorScanPattern,
} from './event-patterns';

/** Props of ImageVault; the storage props (Object Lock, noncurrent versions) are the replica's too. */
export interface ImageVaultProps extends VaultStorageProps, InventoryScanOptions, RetentionRunOptions {
  /**
   * Which ECR repositories (in this account and region) are protected: `['*']` for all, or repository name
   * prefixes such as `['team-a/', 'payments']`. Decides the event rule's filter, the Lambdas' IAM scope and what
   * the reconcile walks.
   *
   * @default ['*']
   */
  readonly repositories?: string[];

  /**
   * E-mail addresses subscribed to the alert topic. Each gets a confirmation mail from SNS first.
   *
   * @default - no subscriptions; subscribe to `alertTopic` yourself
   */
  readonly alertEmails?: string[];

  /**
   * When the reconcile runs (it also runs once right after the first deployment). It enqueues every image in ECR
   * that the vault does not hold yet and alerts on tags that point at digests the vault has no record of.
   *
   * @default events.Schedule.rate(Duration.hours(6))
   */
  readonly reconcileSchedule?: events.Schedule;

  /**
   * Replicate the vault into this bucket in another region (see VaultReplica).
   *
   * @default - no replication
   */
  readonly replica?: VaultReplicaTarget;

  /**
   * Key prefix of the vault inside the bucket, for a bucket shared with other data. `s3://<bucket>/<prefix>` is
   * then the `--store` of the CLI.
   *
   * @default '' (the vault is the whole bucket)
   */
  readonly vaultPrefix?: string;

  /**
   * Most snapshot Lambdas running at once (the SQS event source's maximum concurrency, 2–1000). Bounds the load on
   * ECR and S3 when a burst of pushes arrives, e.g. from the first reconcile.
   *
   * @default 10
   */
  readonly maxSnapshotConcurrency?: number;

  /**
   * Reserve Lambda concurrency: `maxSnapshotConcurrency` for the snapshot function, so that the queue's pollers are
   * never throttled by other functions in the account (a throttled batch counts a receive, and after
   * `maxReceiveCount` receives goes to the dead-letter queue unprocessed), and 1 for the reconcile, so that two runs
   * never overlap (a schedule firing while the first backfill still runs waits in Lambda's asynchronous queue).
   * Reserved concurrency comes out of the account's pool, which must keep at least 10 unreserved: an account whose
   * concurrency quota is still the new-account 10 cannot deploy this until the quota is raised, or with `false`.
   *
   * @default true
   */
  readonly reserveConcurrency?: boolean;

  /**
   * The deletion guard's automatic restore: when ECR deletes an image that the in-use inventory says runs (its
   * DELETE event, or reconcile finding the digest gone), the snapshot function pushes it back from the vault, bit
   * for bit, and sets its tags again where the repository allows; the critical `in-use-deleted` alert says what was
   * done. Off, the alert gives the restore command and nothing is pushed: the snapshot function then has no ECR
   * push permission at all.
   *
   * @default false
   */
  readonly autoRestoreInUse?: boolean;

  /**
   * Candidate bases per repository prefix, for base detection when an image claims no base that verifies: each
   * is tried, and taken when its layers are a strict prefix of the image's. `''` applies to every repository,
   * e.g. `{ '': ['docker.io/library/ruby:2.7'], 'team-a/': ['registry.example.com/base/node:20'] }`. Passed to the
   * snapshot Lambda as CANDIDATE_BASES.
   *
   * @default - none: only annotations, provenance and the previous push
   */
  readonly candidateBases?: Record<string, string[]>;

  /**
   * When the upstream check runs: one HEAD per upstream base tag in use, an `upstream-moved` alert once per
   * transition when a tag moved under images built on it.
   *
   * @default events.Schedule.rate(Duration.hours(1))
   */
  readonly upstreamSchedule?: events.Schedule;

  /**
   * Newer versions of the bases in use, per vault repository prefix (`''` for every repository; the longest
   * matching prefix applies): which upstream repositories to watch (`upstreams`, globs on `registry/repository`,
   * default `['*']`, `[]` for none), tags never to report (`ignore`, globs), hours between two listings of an
   * upstream's tags (`intervalHours`, default 24), and whether pre-releases (`prereleases`) or date tags (`dates`)
   * count. The upstream Lambda lists each watched upstream's tags at most once per interval (kept in the vault under
   * `imagevault/upstream/`) and sends a `newer-versions` digest every `newerVersionsDigestDays`. `{}` turns the
   * watch and its digest off. Passed to the upstream Lambda as NEWER_VERSIONS.
   *
   * @default - `{ '': {} }`: every upstream base of every repository, listed daily, releases only
   */
  readonly newerVersions?: VersionWatchRules;

  /**
   * Days between two `newer-versions` digests (one SNS message each, sent only when a base has a newer version).
   *
   * @default 7
   */
  readonly newerVersionsDigestDays?: number;

  /**
   * Credentials for private upstream registries: a secret whose string is JSON keyed by registry host,
   * `{"<host>": {"username": "...", "password": "..."} | {"token": "..."}}`. The upstream Lambda may read this
   * secret only (and decrypt it through Secrets Manager with its key). A secret encrypted with a customer managed
   * key must carry it: import it with `Secret.fromSecretAttributes(scope, id, { secretCompleteArn, encryptionKey })`,
   * or the Lambdas get no `kms:Decrypt` and cannot read it.
   *
   * @default - none: upstream registries are asked anonymously
   */
  readonly upstreamCredentialsSecret?: secretsmanager.ISecret;

  /**
   * Where the CloudTrail `ecr:PutImage` events that say who pushed an image come from. EventBridge receives
   * CloudTrail management events for ECR only when a trail in this account logs management events in this region:
   * `'existing'` relies on one (an organization trail counts); `'create'` makes a single-region trail that logs
   * write management events only (no data events), with log file validation on, into a new bucket (SSE-S3,
   * SSL only, access logged, no public access). Without any trail, provenance records say the pusher is unknown.
   *
   * @default 'existing'
   */
  readonly provenanceTrail?: ProvenanceTrailMode;

  /**
   * With `objectLock` on: how long each provenance log entry is locked, in days, in the bucket's Object Lock mode.
   * Set on each entry as it is written (so records can outlive the blobs' default retention); at least
   * `objectLockDays`, so a record is never less protected than what it describes.
   *
   * @default the larger of 365 and `objectLockDays` when objectLock is on; must not be set when it is 'off'
   */
  readonly provenanceRetentionDays?: number;
}

/**
 * imagevault on AWS: every image pushed to the protected ECR repositories is snapshotted, by digest and bit for
 * bit, into a versioned, KMS-encrypted S3 vault (optionally replicated to another region); a scheduled reconcile
 * backfills what events missed; alerts go to an SNS topic.
 *
 *   ECR push/delete → EventBridge rule → SQS (DLQ after 3 receives) → snapshot Lambda → S3 vault → replica
 *   schedule + first deploy → reconcile Lambda → SQS
 */
export class ImageVault extends Construct {
  /** The vault bucket: holds the OCI-layout key layout the CLI reads with `--store s3://<bucket>`. */
  readonly bucket: s3.Bucket;
  /** The vault bucket's customer managed key. */
  readonly encryptionKey: kms.Key;
  /** The alert topic and the key of the topic and the queues. */
  readonly alerts: Alerts;
  /** Key of the queues and the alert topic. */
  readonly messagingKey: kms.Key;
  /** The event path of every image: rules, queues and the snapshot Lambda. */
  readonly snapshot: SnapshotPipeline;
  /** ECR image actions waiting to be snapshotted. */
  readonly queue: sqs.Queue;
  /** Messages that failed `maxReceiveCount` times; alarmed on. */
  readonly deadLetterQueue: sqs.Queue;
  /** Where every alert goes: the Lambdas' own and the alarms'. Subscribe to it (or use `alertEmails`). */
  readonly alertTopic: sns.Topic;
  /** Snapshots one ECR image per queue message into the vault. */
  readonly snapshotFunction: lambda.Function;
  /** The reconcile: its function, schedule and run after deployment. */
  readonly reconcile: Reconcile;
  /** Enqueues what the vault lacks (on a schedule and once after deployment) and alerts on gaps. */
  readonly reconcileFunction: lambda.Function;
  /** The scheduled upstream check: its function and schedule. */
  readonly upstreamWatcher: UpstreamWatcher;
  /** The scheduled upstream check. */
  readonly upstreamFunction: lambda.Function;
  /** The reconcile's schedule (`reconcileSchedule`). */
  readonly reconcileRule: events.Rule;
  /** The upstream check's schedule (`upstreamSchedule`). */
  readonly upstreamRule: events.Rule;
  /** Who pushed each image and its scan results, into its provenance log; the Athena table over the logs. */
  readonly provenance: ProvenancePipeline;
  /** Records who pushed each image (CloudTrail ecr:PutImage) in its provenance log. */
  readonly identityFunction: lambda.Function;
  /** Identity events that failed after their retries (or could not be delivered); alarmed on. */
  readonly identityDeadLetterQueue: sqs.Queue;
  /** Records ECR basic and Inspector scan results in each image's provenance log. */
  readonly scanFunction: lambda.Function;
  /** Scan events that failed after their retries (or could not be delivered); alarmed on. */
  readonly scanDeadLetterQueue: sqs.Queue;
  /** The trail, when `provenanceTrail: 'create'`. */
  readonly trail?: cloudtrail.Trail;
  /** The Glue database of the Athena table over the provenance logs. */
  readonly provenanceDatabase: glue.CfnDatabase;
  /** `<database>.provenance_log`: one row per log entry. */
  readonly provenanceTable: glue.CfnTable;
  /** The scheduled in-use inventory, unless `inventory: false`. */
  readonly inventoryScan?: InventoryScan;
  /** Scheduled retention and gc, when a `retentionPolicy` is given: the only role that may delete. */
  readonly retentionRun?: RetentionRun;
  /** The alarms, the self-test alarm and the dashboard. */
  readonly monitoring: Monitoring;
  /** The alarms, each publishing to `alertTopic`; their descriptions say what to do next. */
  readonly alarms: cloudwatch.Alarm[];
  /**
   * An alarm on a metric nothing publishes, so it never fires by itself: `imagevault aws selftest` sets it to ALARM
   * to send a test alert through the path every alarm uses (alarm → topic → key → subscriptions).
   */
  readonly selfTestAlarm: cloudwatch.Alarm;
  /** Queue depth and age, Lambda durations and errors, bytes copied, replication. */
  readonly dashboard: cloudwatch.Dashboard;
  private readonly vault: VaultBucket;
  /** PROVENANCE_LOCK_MODE/DAYS for every function that appends to a provenance log; empty without Object Lock. */
  private readonly provenanceLock: Record<string, string>;

  constructor(scope: Construct, id: string, props: ImageVaultProps = {}) {
    super(scope, id);
    // Before any child exists: the flag then holds for everything below, whatever the app sets.
    pinFeatureFlags(this);
    const repositories = props.repositories ?? VAULT_DEFAULTS.repositories;
    const vaultPrefix = props.vaultPrefix ?? VAULT_DEFAULTS.vaultPrefix;
    this.validate(props, repositories, vaultPrefix);

    this.vault = new VaultBucket(this, 'Vault', {
      ...props,
      purpose: 'vault',
      replica: props.replica,
      vaultPrefix,
    });
    this.bucket = this.vault.bucket;
    this.provenanceLock = provenanceLockEnvironment(props);
    this.encryptionKey = this.vault.encryptionKey;
    if (this.vault.replicationRole) {
      acknowledgeWildcards(this.vault.replicationRole, [
        [this.bucket.arnForObjects('*'), 'replication reads every object version of the vault bucket'],
        [
          props.replica!.bucket.arnForObjects('*'),
          'replication writes every object version into the replica',
        ],
      ]);
    }

    this.alerts = new Alerts(this, 'Alerts', { emails: props.alertEmails });
    this.messagingKey = this.alerts.messagingKey;
    this.alertTopic = this.alerts.topic;

    const reserve = props.reserveConcurrency ?? VAULT_DEFAULTS.reserveConcurrency;
    this.snapshot = new SnapshotPipeline(this, 'Snapshot', {
      vault: this.vault,
      alerts: this.alerts,
      repositories,
      lockEnvironment: this.provenanceLock,
      maxConcurrency: props.maxSnapshotConcurrency ?? VAULT_DEFAULTS.maxSnapshotConcurrency,
      reserveConcurrency: reserve,
      candidateBases: props.candidateBases,
      upstreamCredentialsSecret: props.upstreamCredentialsSecret,
      autoRestoreInUse: props.autoRestoreInUse ?? VAULT_DEFAULTS.autoRestoreInUse,
    });
    this.queue = this.snapshot.queue;
    this.deadLetterQueue = this.snapshot.deadLetterQueue;
    this.snapshotFunction = this.snapshot.function;

    this.reconcile = new Reconcile(this, 'Reconcile', {
      vault: this.vault,
      alerts: this.alerts,
      repositories,
      lockEnvironment: this.provenanceLock,
      snapshotQueue: this.queue,
      runAfter: [this.queue, this.snapshotFunction, this.vault],
      schedule: props.reconcileSchedule,
      reserveConcurrency: reserve,
    });
    this.reconcileFunction = this.reconcile.function;
    this.reconcileRule = this.reconcile.rule;

    this.upstreamWatcher = new UpstreamWatcher(this, 'UpstreamWatcher', {
      vault: this.vault,
      alerts: this.alerts,
      schedule: props.upstreamSchedule,
      credentialsSecret: props.upstreamCredentialsSecret,
      newerVersions: props.newerVersions,
      newerVersionsDigestDays: props.newerVersionsDigestDays,
    });
    this.upstreamFunction = this.upstreamWatcher.function;
    this.upstreamRule = this.upstreamWatcher.rule;
    this.provenance = new ProvenancePipeline(this, 'Provenance', {
      vault: this.vault,
      alerts: this.alerts,
      repositories,
      lockEnvironment: this.provenanceLock,
      trail: props.provenanceTrail ?? VAULT_DEFAULTS.provenanceTrail,
    });
    this.identityFunction = this.provenance.identityFunction;
    this.identityDeadLetterQueue = this.provenance.identityDeadLetterQueue;
    this.scanFunction = this.provenance.scanFunction;
    this.scanDeadLetterQueue = this.provenance.scanDeadLetterQueue;
    this.trail = this.provenance.trail;
    this.provenanceDatabase = this.provenance.database;
    this.provenanceTable = this.provenance.table;

    this.monitoring = new Monitoring(this, 'Monitoring', {
      alertTopic: this.alertTopic,
      bucket: this.bucket,
      replica: props.replica,
      snapshotQueue: this.queue,
      snapshotDeadLetterQueue: this.deadLetterQueue,
      snapshotFunction: this.snapshotFunction,
      upstreamFunction: this.upstreamFunction,
      identity: { fn: this.identityFunction, deadLetterQueue: this.identityDeadLetterQueue },
      scan: { fn: this.scanFunction, deadLetterQueue: this.scanDeadLetterQueue },
      reconcileFunction: this.reconcileFunction,
    });
    this.alarms = this.monitoring.alarms;
    this.inventoryScan =
      (props.inventory ?? INVENTORY_DEFAULTS.inventory)
        ? new InventoryScan(this, 'InventoryScan', {
            ...pick(props, 'inventorySchedule', 'inventoryRegions', 'eksClusters', 'eksAccessEntries'),
            vault: this.vault,
            alerts: this.alerts,
            repositories,
            snapshotQueue: this.queue,
          })
        : undefined;
    this.retentionRun = props.retentionPolicy
      ? new RetentionRun(this, 'RetentionRun', {
          ...pick(props, 'retentionSchedule', 'gcGraceHours'),
          retentionPolicy: props.retentionPolicy,
          vault: this.vault,
          alerts: this.alerts,
          reserveConcurrency: reserve,
        })
      : undefined;
    for (const part of [this.inventoryScan, this.retentionRun]) if (part) this.alarms.push(part.errorsAlarm);
    this.selfTestAlarm = this.monitoring.selfTestAlarm;
    this.dashboard = this.monitoring.dashboard;
    // The parts' resources keep the logical IDs they had as direct children of this construct.
    keepFlatLogicalIds(this, [
      this.alerts,
      this.snapshot,
      this.reconcile,
      this.upstreamWatcher,
      this.provenance,
      this.monitoring,
    ]);
  }

  /**
   * Read the vault: what `imagevault restore --store s3://<bucket>` (an on-call role) needs, and the version history
   * `imagevault provenance verify` reads.
   */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = this.vault.grantRead(grantee, { versions: true });
    acknowledgeGranteeWildcard(grantee, this.bucket);
    return grant;
  }

  private validate(props: ImageVaultProps, repositories: string[], vaultPrefix: string): void {
    const problems = new Problems();
    checkRepositories(problems, 'repositories', repositories);
    checkEmails(problems, 'alertEmails', props.alertEmails ?? []);
    checkStorageProps(problems, props);
    checkKeyPrefix(problems, 'vaultPrefix', vaultPrefix);
    checkCandidateBases(problems, 'candidateBases', props.candidateBases);
    if (props.newerVersions !== undefined)
      for (const p of versionRulesProblems('newerVersions', props.newerVersions)) problems.add(p);
    if (props.newerVersionsDigestDays !== undefined)
      checkInteger(problems, 'newerVersionsDigestDays', props.newerVersionsDigestDays, 1, 365);
    checkProvenanceTrail(problems, 'provenanceTrail', props.provenanceTrail);
    checkInventoryOptions(problems, props);
    checkRetentionOptions(problems, props, props.inventory ?? INVENTORY_DEFAULTS.inventory);
    checkProvenanceRetention(
      problems,
      props.objectLock ?? STORAGE_DEFAULTS.objectLock,
      props.objectLockDays ?? STORAGE_DEFAULTS.objectLockDays,
      props.provenanceRetentionDays,
    );
    if (props.maxSnapshotConcurrency !== undefined) {
      checkInteger(problems, 'maxSnapshotConcurrency', props.maxSnapshotConcurrency, 2, 1000);
    }
    if (props.replica) {
      const here = Stack.of(this).region;
      const there = props.replica.bucket.env.region;
      if (Token.isUnresolved(here) || Token.isUnresolved(there)) {
        problems.add(
          `replica.bucket: cannot tell its region from the vault's; give both stacks an explicit env.region`,
        );
      } else if (here === there) {
        problems.add(
          `replica.bucket is in ${here}, the vault's own region: a replica must be in another region`,
        );
      }
      const lock = props.objectLock ?? STORAGE_DEFAULTS.objectLock;
      if (lock !== 'off' && !props.replica.objectLockEnabled) {
        problems.add(
          `objectLock is '${lock}' but replica.objectLockEnabled is not: S3 replicates locked versions only into a bucket with Object Lock`,
        );
      }
    }
    problems.throwIfAny(`ImageVault props (${this.node.path})`);
  }
}

/** The functions' PROVENANCE_LOCK_* variables: the bucket's Object Lock mode and the entries' retention. */
function provenanceLockEnvironment(props: ImageVaultProps): Record<string, string> {
  const mode = props.objectLock ?? STORAGE_DEFAULTS.objectLock;
  if (mode === 'off') return {};
  const days =
    props.provenanceRetentionDays ??
    Math.max(VAULT_DEFAULTS.provenanceRetentionDays, props.objectLockDays ?? STORAGE_DEFAULTS.objectLockDays);
  return { PROVENANCE_LOCK_MODE: mode.toUpperCase(), PROVENANCE_LOCK_DAYS: String(days) };
}

/** The named props that are set (a part's props out of ImageVault's). */
function pick<T extends object, K extends keyof T>(props: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (props[k] !== undefined) out[k] = props[k];
  return out;
}
