import { Duration, Names, Stack } from 'aws-cdk-lib';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PROVENANCE_PREFIX } from '../content/keys';
import { acknowledgeWildcards } from './acknowledge';
import type { Alerts } from './alerts';
import type { HandlerName } from './entries';
import { ecrPutImagePattern, ecrScanPattern, inspectorScanPattern, repositoryArns } from './event-patterns';
import { glueColumns, PROVENANCE_SERDE, serdeMappings } from './provenance-schema';
import type { ProvenanceTrailMode } from './validation';
import { logAccessInto, type VaultBucket } from './vault-bucket';
import { VAULT_DEFAULTS } from './vault-defaults';
import { vaultFunction } from './vault-function';

/** Props of ProvenancePipeline. */
export interface ProvenancePipelineProps {
  /** The vault whose provenance logs are appended to. */
  readonly vault: VaultBucket;
  /** Its messaging key encrypts the dead-letter queues. */
  readonly alerts: Alerts;
  /** The protected repositories: `['*']` or name prefixes. */
  readonly repositories: readonly string[];
  /** PROVENANCE_LOCK_MODE/DAYS for the functions; empty without Object Lock. */
  readonly lockEnvironment: Record<string, string>;
  /** `'create'` makes a trail for the CloudTrail PutImage events; `'existing'` relies on one. */
  readonly trail: ProvenanceTrailMode;
}

/** A function that appends to the provenance logs, and where its failed events go. */
interface ProvenanceWriter {
  readonly fn: lambda.Function;
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * What the provenance logs learn after a snapshot: who pushed (the CloudTrail `ecr:PutImage` rule and the identity
 * function) and the scan results (ECR basic scanning and Amazon Inspector rules and the scan function), each function
 * appending under `imagevault/provenance/` only, retrying twice, then into a KMS-encrypted dead-letter queue; the
 * trail when asked for; and the Glue table that lets Athena query the logs.
 */
export class ProvenancePipeline extends Construct {
  /** Records who pushed each image (CloudTrail ecr:PutImage) in its provenance log. */
  readonly identityFunction: lambda.Function;
  /** Identity events that failed after their retries (or could not be delivered). */
  readonly identityDeadLetterQueue: sqs.Queue;
  /** Records ECR basic and Inspector scan results in each image's provenance log. */
  readonly scanFunction: lambda.Function;
  /** Scan events that failed after their retries (or could not be delivered). */
  readonly scanDeadLetterQueue: sqs.Queue;
  /** The trail, when `trail: 'create'`. */
  readonly trail?: cloudtrail.Trail;
  /** The Glue database of the Athena table over the provenance logs. */
  readonly database: glue.CfnDatabase;
  /** `<database>.provenance_log`: one row per log entry. */
  readonly table: glue.CfnTable;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: ProvenancePipelineProps,
  ) {
    super(scope, id);
    const identity = this.identity();
    this.identityFunction = identity.fn;
    this.identityDeadLetterQueue = identity.deadLetterQueue;
    const scan = this.scan();
    this.scanFunction = scan.fn;
    this.scanDeadLetterQueue = scan.deadLetterQueue;
    if (props.trail === 'create') this.trail = this.createTrail();
    // The database is named after the vault construct, as it was before the vault had parts: its name is its
    // identity in the Glue catalog.
    const glueTable = this.glueTable(
      Names.uniqueResourceName(scope, { maxLength: 64, separator: '_' })
        .toLowerCase()
        .replace(/[^a-z0-9_]/g, '_'),
    );
    this.database = glueTable.database;
    this.table = glueTable.table;
  }

  /**
   * Who pushed: the CloudTrail `ecr:PutImage` rule and the function that joins the identity to the provenance log.
   */
  private identity(): ProvenanceWriter {
    const writer = this.writer('Identity', 'identity', {
      description: 'Records who pushed an ECR image (CloudTrail PutImage) in its imagevault provenance log',
      serviceName: 'imagevault-identity',
      eventsReason: 'the provenance logs: one object per entry and per pending identity, per repository',
    });
    const rule = new events.Rule(this, 'EcrPutImageRule', {
      description:
        'CloudTrail ecr:PutImage calls in the protected repositories, to the imagevault identity Lambda',
      eventPattern: ecrPutImagePattern(this.props.repositories),
    });
    // Events EventBridge cannot deliver go to the same DLQ as invocations that failed after Lambda's retries.
    rule.addTarget(
      new targets.LambdaFunction(writer.fn, {
        retryAttempts: VAULT_DEFAULTS.identityRetries,
        deadLetterQueue: writer.deadLetterQueue,
      }),
    );
    return writer;
  }

  /**
   * Scan results: ECR basic scanning (`ECR Image Scan`) and Amazon Inspector (`Inspector2 Scan`) events for the
   * protected repositories, and the function that records them (with the CRITICAL/HIGH findings read from ECR) in
   * the provenance log. Scanning itself is configured on the registry (scan on push, or Inspector); without it
   * no event comes and records say the scan is unknown.
   */
  private scan(): ProvenanceWriter {
    const { repositories } = this.props;
    const writer = this.writer('Scan', 'scan', {
      description: 'Records ECR/Inspector scan results of an ECR image in its imagevault provenance log',
      serviceName: 'imagevault-scan',
      eventsReason: 'the provenance logs: one object per entry and per pending scan, per repository',
    });
    const role = writer.fn.role!;
    const pullRepositories = repositoryArns(this, repositories);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecr:DescribeImageScanFindings'], resources: pullRepositories }),
    );
    // With Inspector (enhanced scanning), ECR answers DescribeImageScanFindings from Inspector's findings, on the
    // caller's permissions: https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-iam.html
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['inspector2:ListFindings'], resources: ['*'] }),
    );
    acknowledgeWildcards(role, [
      ['*', 'inspector2:ListFindings has no resource-level permissions'],
      ...pullRepositories.map((arn): [string, string] => [arn, 'the protected repositories, by name prefix']),
    ]);
    // Two rules to one target: the patterns differ in source and in how they name the repository (name or ARN).
    const rule = new events.Rule(this, 'EcrScanRule', {
      description: 'ECR basic scan results in the protected repositories, to the imagevault scan Lambda',
      eventPattern: ecrScanPattern(repositories),
    });
    const inspector = new events.Rule(this, 'InspectorScanRule', {
      description:
        'Amazon Inspector scans of images in the protected repositories, to the imagevault scan Lambda',
      eventPattern: inspectorScanPattern(this, repositories),
    });
    for (const r of [rule, inspector])
      r.addTarget(
        new targets.LambdaFunction(writer.fn, {
          retryAttempts: VAULT_DEFAULTS.identityRetries,
          deadLetterQueue: writer.deadLetterQueue,
        }),
      );
    return writer;
  }

  /**
   * A small function driven by EventBridge that appends to the provenance logs: reads the vault, writes only under
   * `imagevault/provenance/` (locking entries when Object Lock is on), retries twice, then a KMS-encrypted DLQ.
   */
  private writer(
    id: string,
    entry: HandlerName,
    options: { description: string; serviceName: string; eventsReason: string },
  ): ProvenanceWriter {
    const { vault, alerts } = this.props;
    const deadLetterQueue = new sqs.Queue(this, `${id}DeadLetterQueue`, {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: alerts.messagingKey,
      dataKeyReuse: Duration.hours(1),
      enforceSSL: true,
      retentionPeriod: VAULT_DEFAULTS.retention,
    });
    const fn = vaultFunction(this, id, {
      entry,
      memorySize: VAULT_DEFAULTS.identityMemoryMb,
      timeout: VAULT_DEFAULTS.identityTimeout,
      description: options.description,
      environment: {
        VAULT_BUCKET: vault.bucket.bucketName,
        VAULT_PREFIX: vault.vaultPrefix,
        POWERTOOLS_SERVICE_NAME: options.serviceName,
        NODE_OPTIONS: '--enable-source-maps',
        ...this.props.lockEnvironment,
      },
      retryAttempts: VAULT_DEFAULTS.identityRetries,
      deadLetterQueue,
    });
    const role = fn.role!;
    vault.grantRead(role);
    vault.grantProvenanceAppend(role, options.eventsReason);
    // Lambda sends a failed event to the DLQ with the function's role (which CDK grants sqs:SendMessage); the queue
    // is encrypted, so SQS asks the messaging key for a data key on the role's behalf.
    alerts.grantEncrypt(role);
    acknowledgeWildcards(role, [
      [vault.bucket.arnForObjects('*'), 'vault keys are content addresses, not known in advance'],
    ]);
    return { fn, deadLetterQueue };
  }

  /**
   * A trail for the management events EventBridge needs: this region only, write events only (PutImage is one),
   * no data events, log file validation on, into its own SSE-S3 bucket (SSL only, access logged).
   */
  private createTrail(): cloudtrail.Trail {
    const bucket = new s3.Bucket(this, 'TrailBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
    });
    logAccessInto(bucket, this.props.vault.accessLogsBucket, 'trail/');
    return new cloudtrail.Trail(this, 'Trail', {
      bucket,
      isMultiRegionTrail: false,
      includeGlobalServiceEvents: false,
      managementEvents: cloudtrail.ReadWriteType.WRITE_ONLY,
      enableFileValidation: true,
      sendToCloudWatchLogs: false,
    });
  }

  /**
   * The Athena-ready layout: a Glue database and a table of the provenance log entries (JSON, one object per
   * entry) under `<prefix>imagevault/provenance/`, read recursively. Columns: lib/infra/provenance-schema.ts.
   */
  private glueTable(databaseName: string): { database: glue.CfnDatabase; table: glue.CfnTable } {
    const stack = Stack.of(this);
    const { vault } = this.props;
    const database = new glue.CfnDatabase(this, 'ProvenanceDatabase', {
      catalogId: stack.account,
      databaseInput: {
        name: databaseName,
        description: 'imagevault provenance records (in-toto statements), for Athena',
      },
    });
    const location = `s3://${vault.bucket.bucketName}/${vault.vaultPrefix ? `${vault.vaultPrefix}/` : ''}${PROVENANCE_PREFIX}`;
    const table = new glue.CfnTable(this, 'ProvenanceTable', {
      catalogId: stack.account,
      databaseName,
      tableInput: {
        name: VAULT_DEFAULTS.provenanceTableName,
        description:
          'One row per provenance log entry {seq, time, repository, digest, statement, previous, hash}; the newest seq per (repository, digest) is its record',
        tableType: 'EXTERNAL_TABLE',
        parameters: { classification: 'json', EXTERNAL: 'TRUE' },
        storageDescriptor: {
          location,
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          columns: glueColumns(),
          serdeInfo: {
            serializationLibrary: PROVENANCE_SERDE,
            parameters: {
              // Pending identities (`_pending/`) share the prefix and have another shape: their rows are mostly null.
              'ignore.malformed.json': 'true',
              'case.insensitive': 'true',
              ...serdeMappings(),
            },
          },
          // Entries sit at `<repository>/@log/<seq>.json`, any number of levels below the location; `_pending/` is
          // hidden from Athena (a leading `_`), as it should be.
          parameters: { 'hive.input.dir.recursive': 'TRUE', 'mapred.input.dir.recursive': 'TRUE' },
        },
      },
    });
    // The construct-level dependency becomes the same DependsOn, on every aws-cdk-lib this package supports.
    table.node.addDependency(database);
    return { database, table };
  }
}
