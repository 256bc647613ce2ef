import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  BLOBS_PREFIX,
  FORGETS_PREFIX,
  GC_PREFIX,
  INDEX_FILE,
  INVENTORY_PREFIX,
  INVENTORY_RUNNING_PREFIX,
  PROVENANCE_PREFIX,
  REFERRERS_PREFIX,
  REPOSITORIES_PREFIX,
  UPSTREAM_PREFIX,
} from '../content/keys';
import { acknowledgeGranteeWildcards } from './acknowledge';
import { checkInteger, checkObjectLock, Problems, type ObjectLockMode } from './validation';

/** Storage settings shared by the vault bucket and its replica, so that both keep history the same way. */
export interface VaultStorageProps {
  /**
   * Object Lock on the bucket. 'governance' or 'compliance' creates the bucket with Object Lock enabled and a default
   * retention of `objectLockDays` on every object version; in compliance mode nobody, not even the account root, can
   * delete a version before it ends. Object Lock can only be chosen when the bucket is created.
   *
   * @default 'off'
   */
  readonly objectLock?: ObjectLockMode;

  /**
   * Default retention of every object version, in days, when `objectLock` is not 'off'.
   *
   * @default 30 when objectLock is 'governance' or 'compliance'; must not be set when it is 'off'
   */
  readonly objectLockDays?: number;

  /**
   * Days after which a noncurrent object version (an overwritten index.json or image record) moves to
   * `noncurrentStorageClass`. Records and their history never expire (see `noncurrentExpirationDays` for what gc
   * deletes).
   *
   * @default 30
   */
  readonly noncurrentTransitionDays?: number;

  /**
   * Days a version that garbage collection deleted stays as a noncurrent version before S3 removes it for good: the
   * window in which `imagevault gc`'s delete (a delete marker) can still be undone, and after which its bytes stop
   * being billed. Applies only to the keys gc deletes (blobs, referrer links, gc's own protocol files), whose lone
   * delete markers are removed too, and to the old versions of the inventory's running records (rewritten by every
   * scan; the scan records keep the history). Image records, tag history and provenance are never expired. Equal to `noncurrentTransitionDays` (the default), a deleted blob expires instead of moving to the
   * cheaper class (S3 prefers expiry); longer, it moves first, and Glacier Instant Retrieval bills at least 90 days.
   *
   * @default 30
   */
  readonly noncurrentExpirationDays?: number;

  /**
   * Where noncurrent versions go after `noncurrentTransitionDays`. Glacier Instant Retrieval keeps them readable in
   * milliseconds (a point-in-time restore needs no thaw) at about a third of Standard-IA's price.
   *
   * @default s3.StorageClass.GLACIER_INSTANT_RETRIEVAL
   */
  readonly noncurrentStorageClass?: s3.StorageClass;
}

/** Defaults of VaultStorageProps, named so that the README and the tests quote the same numbers. */
export const STORAGE_DEFAULTS = {
  objectLock: 'off' as ObjectLockMode,
  objectLockDays: 30,
  noncurrentTransitionDays: 30,
  noncurrentStorageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
  noncurrentExpirationDays: 30,
  /** Server access logs are kept this long; they are for audits, not for restores. */
  accessLogDays: 365,
};

/** S3 refuses noncurrent transitions to the infrequent-access classes earlier than 30 days. */
const IA_CLASSES = [
  s3.StorageClass.INFREQUENT_ACCESS.value,
  s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS.value,
];

/** Validates VaultStorageProps into `problems`: Object Lock mode and days, the noncurrent transition's days. */
export function checkStorageProps(problems: Problems, props: VaultStorageProps): void {
  checkObjectLock(
    problems,
    { mode: 'objectLock', days: 'objectLockDays' },
    props.objectLock ?? STORAGE_DEFAULTS.objectLock,
    props.objectLockDays,
  );
  if (props.noncurrentTransitionDays !== undefined) {
    const storageClass = props.noncurrentStorageClass ?? STORAGE_DEFAULTS.noncurrentStorageClass;
    const min = IA_CLASSES.includes(storageClass.value) ? 30 : 1;
    checkInteger(problems, 'noncurrentTransitionDays', props.noncurrentTransitionDays, min, 36500);
  }
  if (props.noncurrentExpirationDays !== undefined)
    checkInteger(problems, 'noncurrentExpirationDays', props.noncurrentExpirationDays, 1, 36500);
}

/**
 * The keys garbage collection deletes (lib/services/gc.ts): unneeded blobs, the referrer links of deleted
 * manifests, and its own protocol files. Only their noncurrent versions expire; only the retention role may delete
 * them (VaultBucket.grantGarbageCollection).
 */
export const GC_DELETED_PREFIXES = [BLOBS_PREFIX, REFERRERS_PREFIX, GC_PREFIX] as const;

/** Where the vault replicates to: a bucket in another region, encrypted with that region's key. */
export interface VaultReplicaTarget {
  /** The replica bucket. Versioned; in another region than the vault. */
  readonly bucket: s3.IBucket;
  /**
   * ARN of the replica bucket's KMS key, which S3 uses to encrypt the replicas. An ARN rather than the key: a Key
   * object from another stack would make the two stacks depend on each other.
   */
  readonly encryptionKeyArn: string;
  /**
   * Whether the replica bucket has Object Lock. S3 replicates locked object versions only into such a bucket.
   *
   * @default false
   */
  readonly objectLockEnabled?: boolean;
}

/**
 * Server access logs of `source`, delivered into `target` under `prefix` by a bucket policy for S3's logging
 * service, limited to the source bucket and its account. Written out rather than left to the `serverAccessLogsBucket`
 * prop: without the feature flag `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` (an app without our cdk.json)
 * aws-cdk-lib grants delivery by the LogDeliveryWrite ACL instead, which a BUCKET_OWNER_ENFORCED bucket refuses.
 * The template is the same as the flag's.
 */
export function logAccessInto(source: s3.Bucket, target: s3.Bucket, prefix: string): void {
  const cfn = source.node.defaultChild as s3.CfnBucket;
  cfn.loggingConfiguration = { destinationBucketName: target.bucketName, logFilePrefix: prefix };
  target.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
      actions: ['s3:PutObject'],
      resources: [target.arnForObjects(`${prefix}*`)],
      conditions: {
        ArnLike: { 'aws:SourceArn': source.bucketArn },
        StringEquals: { 'aws:SourceAccount': source.env.account },
      },
    }),
  );
}

/** The replication rule's ID: the RuleId dimension of S3's replication metrics. */
export const REPLICATION_RULE_ID = 'imagevault-replica';

/** Props of VaultBucket. */
export interface VaultBucketProps extends VaultStorageProps {
  /** What the bucket is, for key and bucket descriptions: "vault" or "replica". */
  readonly purpose: string;
  /** @default - CloudFormation generates a name */
  readonly bucketName?: string;
  /** @default - no replication */
  readonly replica?: VaultReplicaTarget;
  /**
   * Key prefix of the vault inside the bucket: the named grants cover the vault's keys below it.
   *
   * @default '' (the vault is the whole bucket)
   */
  readonly vaultPrefix?: string;
}

/**
 * A versioned bucket encrypted with its own customer managed key, with server access logs in a separate bucket and
 * lifecycle rules that expire nothing but the noncurrent versions of what garbage collection deleted. Props are validated
 * by the constructs that use it.
 */
export class VaultBucket extends Construct {
  /** The versioned, KMS-encrypted bucket. */
  readonly bucket: s3.Bucket;
  /** The bucket's customer managed key, rotated yearly. */
  readonly encryptionKey: kms.Key;
  /** Where the bucket's server access logs go (SSE-S3: log delivery cannot use a KMS key). */
  readonly accessLogsBucket: s3.Bucket;
  /** The role S3 replicates with, when there is a replica. */
  readonly replicationRole?: iam.Role;
  /** Key prefix of the vault inside the bucket; '' for the whole bucket. */
  readonly vaultPrefix: string;
  /** Whether the bucket has Object Lock: entries of the provenance log are then locked as they are written. */
  private readonly objectLock: boolean;

  constructor(scope: Construct, id: string, props: VaultBucketProps) {
    super(scope, id);
    const mode = props.objectLock ?? STORAGE_DEFAULTS.objectLock;
    this.vaultPrefix = props.vaultPrefix ?? '';
    this.objectLock = mode !== 'off';
    const lockDays = Duration.days(props.objectLockDays ?? STORAGE_DEFAULTS.objectLockDays);

    this.encryptionKey = new kms.Key(this, 'Key', {
      description: `imagevault ${props.purpose} bucket`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Server access logs cannot be delivered to an SSE-KMS bucket: this one uses SSE-S3.
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(STORAGE_DEFAULTS.accessLogDays) },
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.accessLogsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access log bucket of the vault bucket; logging it into itself would loop.',
    });

    const replica = props.replica;
    if (replica)
      this.replicationRole = new iam.Role(this, 'ReplicationRole', {
        assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
        description: `S3 replication of the imagevault ${props.purpose} bucket`,
      });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: props.bucketName,
      versioned: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      // One KMS request per bucket key and time window instead of one per object: most of KMS's cost goes away.
      bucketKeyEnabled: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        {
          id: 'noncurrent-versions-to-cheaper-class',
          noncurrentVersionTransitions: [
            {
              storageClass: props.noncurrentStorageClass ?? STORAGE_DEFAULTS.noncurrentStorageClass,
              transitionAfter: Duration.days(
                props.noncurrentTransitionDays ?? STORAGE_DEFAULTS.noncurrentTransitionDays,
              ),
            },
          ],
        },
        // What gc deleted: noncurrent versions expire after a window, then their lone delete markers go.
        ...GC_DELETED_PREFIXES.map((key) => ({
          id: `expire-deleted-${key.replace(/^imagevault\//, '').replace(/\/$/, '')}`,
          prefix: this.vaultKey(key),
          noncurrentVersionExpiration: Duration.days(
            props.noncurrentExpirationDays ?? STORAGE_DEFAULTS.noncurrentExpirationDays,
          ),
          expiredObjectDeleteMarker: true,
        })),
        // Every inventory scan rewrites each running record (its last-seen time); the scan records keep the whole
        // history, so the old versions are only cost: they go after the same window.
        {
          id: 'expire-inventory-running-history',
          prefix: this.vaultKey(INVENTORY_RUNNING_PREFIX),
          noncurrentVersionExpiration: Duration.days(
            props.noncurrentExpirationDays ?? STORAGE_DEFAULTS.noncurrentExpirationDays,
          ),
        },
      ],
      objectLockEnabled: mode !== 'off' ? true : undefined,
      objectLockDefaultRetention:
        mode === 'governance'
          ? s3.ObjectLockRetention.governance(lockDays)
          : mode === 'compliance'
            ? s3.ObjectLockRetention.compliance(lockDays)
            : undefined,
      replicationRole: this.replicationRole,
      replicationRules: replica && [
        {
          id: REPLICATION_RULE_ID,
          priority: 1,
          destination: replica.bucket,
          // Every object version, encrypted again with the replica region's own key.
          sseKmsEncryptedObjects: true,
          kmsKey: kms.Key.fromKeyArn(this, 'ReplicaKey', replica.encryptionKeyArn),
          // Replication Time Control: 99.99% of objects within 15 minutes, with metrics to alarm on.
          replicationTimeControl: s3.ReplicationTimeValue.FIFTEEN_MINUTES,
          metrics: s3.ReplicationTimeValue.FIFTEEN_MINUTES,
          // A delete in the vault must not reach the replica: the replica is the copy that survives a mistake.
          deleteMarkerReplication: false,
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    logAccessInto(this.bucket, this.accessLogsBucket, `${props.purpose}/`);
    if (replica && this.replicationRole) this.grantReplication(this.replicationRole, replica);
  }

  /**
   * What S3 needs to replicate: read object versions (with their Object Lock retention and legal hold) here, write
   * replicas there, decrypt with this key and encrypt with the replica's, each key only through S3 in its region.
   * No s3:ReplicateDelete: delete markers are not replicated.
   */
  private grantReplication(role: iam.Role, replica: VaultReplicaTarget): void {
    const replicaRegion = replica.bucket.env.region;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        resources: [this.bucket.bucketArn],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [
          's3:GetObjectVersionForReplication',
          's3:GetObjectVersionAcl',
          's3:GetObjectVersionTagging',
          's3:GetObjectRetention',
          's3:GetObjectLegalHold',
        ],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ReplicateObject', 's3:ReplicateTags'],
        resources: [replica.bucket.arnForObjects('*')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [this.encryptionKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: [replica.encryptionKeyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${replicaRegion}.amazonaws.com` } },
      }),
    );
  }

  /** Read objects (and list keys): what a restore or a reconcile needs. */
  grantRead(grantee: iam.IGrantable, options: { versions?: boolean } = {}): iam.Grant {
    const objects = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.bucket.arnForObjects('*')],
    });
    const bucket = iam.Grant.addToPrincipal({
      grantee,
      // With versions (the on-call reader's grant): `imagevault provenance verify` reads the log's version history
      // (an overwritten or deleted entry shows there), and `imagevault verify` lists interrupted multipart uploads
      // to report them.
      actions: options.versions
        ? ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads']
        : ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
    });
    this.encryptionKey.grantDecrypt(grantee);
    return objects.combine(bucket);
  }

  /**
   * The ARN of the vault's objects under `key`, one of the vault's keys or key prefixes (lib/content/keys.ts), with
   * `*` for everything below a prefix: `arn:…:<bucket>/<vaultPrefix>/<key>`.
   */
  arnForVaultKeys(key: string): string {
    return this.bucket.arnForObjects(this.vaultKey(key));
  }

  /** A vault key (lib/content/keys.ts) as the bucket's key: `<vaultPrefix>/<key>`. */
  private vaultKey(key: string): string {
    return this.vaultPrefix ? `${this.vaultPrefix}/${key}` : key;
  }

  /**
   * What a snapshot writes: any new object (blobs and manifests are content addresses, not known in advance),
   * including multipart uploads and their abort, and the retention of provenance entries under Object Lock. No
   * delete: the vault only ever appends, and overwritten objects stay as noncurrent versions.
   */
  grantSnapshotWrite(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resourceArns: [this.bucket.arnForObjects('*')],
    });
    this.grantProvenanceRetention(grantee);
    return grant;
  }

  /**
   * What the reconcile writes: the OCI layout's index.json (rebuilt each run), tag history (a tag deleted in ECR
   * without an event is recorded as a delete) and provenance entries (replication done, identity now unknown).
   */
  grantReconcileWrite(grantee: iam.IGrantable): iam.Grant {
    const history = this.arnForVaultKeys(`${REPOSITORIES_PREFIX}*`);
    const provenance = this.arnForVaultKeys(`${PROVENANCE_PREFIX}*`);
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [this.arnForVaultKeys(INDEX_FILE), history, provenance],
    });
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey');
    this.grantProvenanceRetention(grantee);
    acknowledgeGranteeWildcards(grantee, [
      [history, 'tag history: one object per observation, per repository and tag'],
      [provenance, 'the provenance logs: the refresh appends one object per entry'],
    ]);
    return grant;
  }

  /**
   * Append to the provenance logs (and their pending identities and scans): new objects under
   * `imagevault/provenance/` only, each locked as it is written under Object Lock.
   */
  grantProvenanceAppend(grantee: iam.IGrantable, reason: string): iam.Grant {
    const provenance = this.arnForVaultKeys(`${PROVENANCE_PREFIX}*`);
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [provenance],
    });
    this.grantProvenanceRetention(grantee);
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    acknowledgeGranteeWildcards(grantee, [[provenance, reason]]);
    return grant;
  }

  /** The upstream watcher's own state (observations, alerted transitions): new objects under `imagevault/upstream/`. */
  grantUpstreamStateWrite(grantee: iam.IGrantable): iam.Grant {
    const state = this.arnForVaultKeys(`${UPSTREAM_PREFIX}*`);
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: [state] });
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    acknowledgeGranteeWildcards(grantee, [
      [state, "the watcher's state: one object per observation and per alerted transition"],
    ]);
    return grant;
  }

  /** The in-use inventory's records (scans, where each digest runs, each source's state): `imagevault/inventory/`. */
  grantInventoryWrite(grantee: iam.IGrantable): iam.Grant {
    const inventory = this.arnForVaultKeys(`${INVENTORY_PREFIX}*`);
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: [inventory] });
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    acknowledgeGranteeWildcards(grantee, [
      [inventory, 'the inventory: one record per scan, per source and per running workload'],
    ]);
    return grant;
  }

  /**
   * What retention and gc do: append forget records (`imagevault/retention/forgotten/`) and gc's protocol files
   * (`imagevault/gc/`), and delete — the only grant that may — under GC_DELETED_PREFIXES only: the blobs no kept
   * image needs, the referrer links of deleted manifests, gc's own files. On a versioned bucket a delete is a marker;
   * deleting a version (s3:DeleteObjectVersion) and bypassing governance retention are denied outright, so that no
   * other grant can add them to this role. With Object Lock, it reads a blob's retention to report what stays billed.
   */
  grantRetention(grantee: iam.IGrantable): iam.Grant {
    const forgets = this.arnForVaultKeys(`${FORGETS_PREFIX}*`);
    const gc = this.arnForVaultKeys(`${GC_PREFIX}*`);
    const deletable = GC_DELETED_PREFIXES.map((p) => this.arnForVaultKeys(`${p}*`));
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [forgets, gc],
    }).combine(iam.Grant.addToPrincipal({ grantee, actions: ['s3:DeleteObject'], resourceArns: deletable }));
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:DeleteObjectVersion', 's3:BypassGovernanceRetention'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    const blobs = this.arnForVaultKeys(`${BLOBS_PREFIX}*`);
    if (this.objectLock)
      iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObjectRetention'], resourceArns: [blobs] });
    this.encryptionKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
    acknowledgeGranteeWildcards(grantee, [
      [forgets, 'forget records: one object per image forgotten'],
      [gc, "gc's protocol files: runs, marks, sweeps, rescues and writers' sessions"],
      [blobs, 'blobs are content addresses: gc deletes the ones no kept image needs'],
      [this.arnForVaultKeys(`${REFERRERS_PREFIX}*`), 'referrer links of manifests gc deleted'],
    ]);
    return grant;
  }

  /** With Object Lock on: setting a provenance entry's retention as it is written needs s3:PutObjectRetention. */
  private grantProvenanceRetention(grantee: iam.IGrantable): void {
    if (!this.objectLock) return;
    const provenance = this.arnForVaultKeys(`${PROVENANCE_PREFIX}*`);
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObjectRetention'], resourceArns: [provenance] });
    acknowledgeGranteeWildcards(grantee, [
      [provenance, 'the provenance log entries, one object per entry, each locked as it is written'],
    ]);
  }
}
