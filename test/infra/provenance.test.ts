import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ImageVault, ImageVaultConfigError, type ImageVaultProps } from '../../lib/infra';
import {
  glueColumns,
  hiveType,
  PROVENANCE_COLUMNS,
  PROVENANCE_SERDE,
  serdeMappings,
  type GlueType,
} from '../../lib/infra/provenance-schema';
import { logKey, recordProvenance, recordPushIdentity, recordScan } from '../../lib/provenance';
import { inspectorScanDocumented, withDigest } from '../unit/provenance/scan-events';
import { putImageEvent } from '../unit/provenance/events';
import { attestedIndex, putImage, snapshottedImage, tempVault } from '../unit/helpers';
import { slsaV02FromGit } from '../unit/provenance/slsa-statements';
import { actionsOf, newApp, PRIMARY, resourceOf, statementsOf, statementsWith, vaultStack } from './support';

const IDENTITY = 'ImageVaultIdentity';

function problemsOf(props: ImageVaultProps): readonly string[] {
  try {
    vaultStack(props, false);
    return [];
  } catch (e) {
    if (e instanceof ImageVaultConfigError) return e.problems;
    throw e;
  }
}

describe('ImageVault provenance: scan results (ECR basic, Inspector)', () => {
  const SCAN = 'ImageVaultScan';
  const t = vaultStack({ repositories: ['team-a/', 'payments'] }, false).template();
  const ecrRepoArn = (prefix: string) =>
    `arn:aws:ecr:${PRIMARY.region}:${PRIMARY.account}:repository/${prefix}`;

  it('routes ECR basic scans by repository name and Inspector scans by repository ARN to one Lambda', () => {
    const target = Match.objectLike({
      Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${SCAN}Function`), 'Arn'] },
      RetryPolicy: { MaximumRetryAttempts: 2 },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${SCAN}DeadLetterQueue`), 'Arn'] } },
    });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['ECR Image Scan'],
        detail: { 'repository-name': [{ prefix: 'team-a/' }, { prefix: 'payments' }] },
      },
      Targets: [target],
    });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.inspector2'],
        'detail-type': ['Inspector2 Scan'],
        detail: {
          'repository-name': [{ prefix: ecrRepoArn('team-a/') }, { prefix: ecrRepoArn('payments') }],
        },
      },
      Targets: [target],
    });
  });

  it('may read scan findings of the protected repositories only, and write only under imagevault/provenance/', () => {
    expect(actionsOf(t, `${SCAN}Role`)).toEqual([
      'ecr:DescribeImageScanFindings',
      'inspector2:ListFindings',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sqs:SendMessage',
    ]);
    const describe = statementsOf(t, `${SCAN}Role`).find((s) => s.Action === 'ecr:DescribeImageScanFindings');
    expect(describe?.Resource).toEqual([ecrRepoArn('payments*'), ecrRepoArn('team-a/*')]);
    const puts = statementsOf(t, `${SCAN}Role`).filter((s) => s.Action === 's3:PutObject');
    expect(JSON.stringify(puts.map((p) => p.Resource))).toMatch(/"\/imagevault\/provenance\/\*"\]\]\}\]$/);
    // The scan DLQ is encrypted with the messaging key: Lambda sends to it with this role.
    const kms = statementsWith(t, `${SCAN}Role`, 'kms:GenerateDataKey');
    expect(JSON.stringify(kms.map((s) => s.Resource))).toMatch(/MessagingKey/);
  });

  it('alarms on scan errors and on its dead letters', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp(`^${SCAN}Function`) } }],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${SCAN}DeadLetterQueue`), 'QueueName'] },
        },
      ],
    });
  });
});

describe('ImageVault provenance: Object Lock on the records', () => {
  const lockEnv = (t: Template) =>
    Object.values(t.findResources('AWS::Lambda::Function'))
      .map((f) => (f as { Properties: { Environment?: { Variables: Record<string, unknown> } } }).Properties)
      .filter((p) => p.Environment?.Variables.PROVENANCE_LOCK_MODE !== undefined)
      .map(
        (p) =>
          `${String(p.Environment?.Variables.POWERTOOLS_SERVICE_NAME)} ${String(p.Environment?.Variables.PROVENANCE_LOCK_MODE)} ${String(p.Environment?.Variables.PROVENANCE_LOCK_DAYS)}`,
      )
      .sort();

  it('without Object Lock: no lock variables, no s3:PutObjectRetention', () => {
    const t = vaultStack({}, false).template();
    expect(lockEnv(t)).toEqual([]);
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toContain('s3:PutObjectRetention');
  });

  it('locks each entry for a year by default, in the bucket mode, from every function that appends', () => {
    const t = vaultStack({ objectLock: 'compliance' }, false).template();
    expect(lockEnv(t)).toEqual([
      'imagevault-identity COMPLIANCE 365',
      'imagevault-reconcile COMPLIANCE 365',
      'imagevault-scan COMPLIANCE 365',
      'imagevault-snapshot COMPLIANCE 365',
    ]);
    for (const role of [
      'ImageVaultSnapshotRole',
      `${IDENTITY}Role`,
      'ImageVaultScanRole',
      'ImageVaultReconcileRole',
    ]) {
      const retention = statementsWith(t, role, 's3:PutObjectRetention');
      expect(retention).toHaveLength(1);
      expect(JSON.stringify(retention[0].Resource)).toMatch(/"\/imagevault\/provenance\/\*"\]\]\}$/);
    }
  });

  it('takes provenanceRetentionDays, and objectLockDays when that is longer than a year', () => {
    expect(
      lockEnv(vaultStack({ objectLock: 'governance', provenanceRetentionDays: 3650 }, false).template()),
    ).toContain('imagevault-scan GOVERNANCE 3650');
    expect(
      lockEnv(vaultStack({ objectLock: 'governance', objectLockDays: 500 }, false).template()),
    ).toContain('imagevault-snapshot GOVERNANCE 500');
  });

  it('validates provenanceRetentionDays', () => {
    expect(problemsOf({ provenanceRetentionDays: 400 })).toEqual([
      "provenanceRetentionDays (400) is set but objectLock is 'off': records can only be locked in a bucket with Object Lock",
    ]);
    expect(problemsOf({ objectLock: 'compliance', objectLockDays: 90, provenanceRetentionDays: 60 })).toEqual(
      [
        'provenanceRetentionDays (60) is shorter than objectLockDays (90): a record must stay locked at least as long as what it describes',
      ],
    );
    expect(problemsOf({ objectLock: 'compliance', provenanceRetentionDays: 40000 })).toEqual([
      'provenanceRetentionDays 40000 must be a whole number from 1 to 36500',
    ]);
  });
});

describe('ImageVault provenance: who pushed (CloudTrail PutImage)', () => {
  const t = vaultStack({}, false).template();

  it('routes CloudTrail ecr:PutImage calls to the identity Lambda, retrying twice into a DLQ', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: { eventSource: ['ecr.amazonaws.com'], eventName: ['PutImage'] },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${IDENTITY}Function`), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 2 },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ImageVaultIdentityDeadLetterQueue'), 'Arn'] },
          },
        }),
      ],
    });
  });

  it('filters the rule by repository prefix like the push rule', () => {
    vaultStack({ repositories: ['team-a/', 'payments'] }, false)
      .template()
      .hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          'detail-type': ['AWS API Call via CloudTrail'],
          detail: {
            requestParameters: { repositoryName: [{ prefix: 'team-a/' }, { prefix: 'payments' }] },
          },
        },
      });
  });

  it('is a Node.js 24 arm64 function of 256 MB and 1 minute, 2 async retries, failures to its DLQ', () => {
    const fn = resourceOf(t, 'AWS::Lambda::Function', `${IDENTITY}Function`).Properties as Record<
      string,
      unknown
    >;
    expect(fn).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 60,
      DeadLetterConfig: {
        TargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^ImageVaultIdentityDeadLetterQueue/), 'Arn'] },
      },
    });
    expect(Object.keys((fn.Environment as { Variables: object }).Variables).sort()).toEqual([
      'NODE_OPTIONS',
      'POWERTOOLS_SERVICE_NAME',
      'VAULT_BUCKET',
      'VAULT_PREFIX',
    ]);
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp(`^${IDENTITY}Function`) },
      MaximumRetryAttempts: 2,
    });
  });

  it('reads the vault and writes only under imagevault/provenance/', () => {
    expect(actionsOf(t, `${IDENTITY}Role`)).toEqual([
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sqs:SendMessage',
    ]);
    const puts = statementsWith(t, `${IDENTITY}Role`, 's3:PutObject');
    expect(puts).toHaveLength(1);
    expect(JSON.stringify(puts[0].Resource)).toMatch(/"\/imagevault\/provenance\/\*"\]\]\}$/);
    // Both keys: the vault's for the log, the messaging key for the encrypted DLQ Lambda sends to with this role.
    const kms = statementsWith(t, `${IDENTITY}Role`, 'kms:GenerateDataKey');
    expect(JSON.stringify(kms.map((s) => s.Resource))).toMatch(/VaultKey/);
    expect(JSON.stringify(kms.map((s) => s.Resource))).toMatch(/MessagingKey/);
    const sqs = statementsWith(t, `${IDENTITY}Role`, 'sqs:SendMessage');
    expect(JSON.stringify(sqs.map((s) => s.Resource))).toContain('IdentityDeadLetterQueue');
  });

  it('writes under the vault prefix when there is one', () => {
    const put = statementsWith(
      vaultStack({ vaultPrefix: 'team/vault' }, false).template(),
      `${IDENTITY}Role`,
      's3:PutObject',
    ).map((s) => JSON.stringify(s.Resource));
    expect(put).toEqual([expect.stringContaining('/team/vault/imagevault/provenance/*')]);
  });

  it('relies on an existing trail by default: no trail, no trail bucket', () => {
    t.resourceCountIs('AWS::CloudTrail::Trail', 0);
  });

  describe("provenanceTrail: 'create'", () => {
    const { app, template } = vaultStack({ provenanceTrail: 'create' }, false);
    const c = template();

    it('creates a single-region trail of write management events with log file validation', () => {
      c.resourceCountIs('AWS::CloudTrail::Trail', 1);
      c.hasResourceProperties('AWS::CloudTrail::Trail', {
        IsLogging: true,
        IsMultiRegionTrail: false,
        IncludeGlobalServiceEvents: false,
        EnableLogFileValidation: true,
        EventSelectors: [{ IncludeManagementEvents: true, ReadWriteType: 'WriteOnly' }],
      });
      const trail = resourceOf(c, 'AWS::CloudTrail::Trail', 'ImageVaultTrail').Properties as Record<
        string,
        unknown
      >;
      expect(JSON.stringify(trail.EventSelectors)).not.toContain('DataResources');
    });

    it('logs into an SSE-S3, SSL-only, access-logged bucket', () => {
      const bucket = resourceOf(c, 'AWS::S3::Bucket', 'ImageVaultTrailBucket').Properties as Record<
        string,
        unknown
      >;
      expect(bucket).toMatchObject({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        LoggingConfiguration: { LogFilePrefix: 'trail/' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      });
      c.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: Match.stringLikeRegexp('^ImageVaultTrailBucket') },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            Match.objectLike({ Principal: { Service: 'cloudtrail.amazonaws.com' }, Action: 's3:PutObject' }),
          ]),
        },
      });
    });

    it('passes cdk-nag AwsSolutions', () => {
      app.synth();
      const report = new AwsSolutionsChecks(app).validateScope(app);
      expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    });
  });

  it('validates provenanceTrail', () => {
    expect(problemsOf({ provenanceTrail: 'create' })).toEqual([]);
    expect(problemsOf({ provenanceTrail: 'existing' })).toEqual([]);
    expect(problemsOf({ provenanceTrail: 'organization' as never })).toEqual([
      `provenanceTrail "organization" must be 'create' or 'existing'`,
    ]);
  });

  it('alarms on identity errors and on its dead letters', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp(`^${IDENTITY}Function`) } }],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^ImageVaultIdentityDeadLetterQueue'), 'QueueName'],
          },
        },
      ],
    });
  });
});

describe('ImageVault provenance: the Athena table', () => {
  const t = vaultStack({ vaultPrefix: 'team/vault' }, false).template();
  const table = () =>
    resourceOf(t, 'AWS::Glue::Table', 'ImageVaultProvenanceTable').Properties as {
      DatabaseName: string;
      TableInput: {
        Name: string;
        TableType: string;
        StorageDescriptor: {
          Location: unknown;
          Columns: Array<{ Name: string; Type: string }>;
          SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
          Parameters: Record<string, string>;
        };
      };
    };

  it('is an external JSON table in its own database over <prefix>/imagevault/provenance/', () => {
    const db = resourceOf(t, 'AWS::Glue::Database', 'ImageVaultProvenanceDatabase').Properties as {
      DatabaseInput: { Name: string };
    };
    expect(db.DatabaseInput.Name).toMatch(/^[a-z0-9_]+$/);
    const p = table();
    expect(p.DatabaseName).toBe(db.DatabaseInput.Name);
    expect(p.TableInput.Name).toBe('provenance_log');
    expect(p.TableInput.TableType).toBe('EXTERNAL_TABLE');
    expect(p.TableInput.StorageDescriptor.Location).toEqual({
      'Fn::Join': [
        '',
        [
          's3://',
          { Ref: expect.stringMatching(/^ImageVault(Vault)?Bucket/) },
          '/team/vault/imagevault/provenance/',
        ],
      ],
    });
    expect(p.TableInput.StorageDescriptor.Parameters).toMatchObject({ 'hive.input.dir.recursive': 'TRUE' });
  });

  it('reads with the OpenX JSON SerDe, mapping camelCase and _-keys to their lowercase columns', () => {
    const serde = table().TableInput.StorageDescriptor.SerdeInfo;
    expect(serde.SerializationLibrary).toBe(PROVENANCE_SERDE);
    expect(serde.Parameters).toMatchObject({
      'mapping._type': '_type',
      'mapping.predicatetype': 'predicateType',
      'mapping.sessionissuer': 'sessionIssuer',
      'mapping.identitystatus': 'identityStatus',
      'mapping.verifiedat': 'verifiedAt',
    });
    for (const [k, v] of Object.entries(serdeMappings())) {
      expect(k).toBe(`mapping.${v.toLowerCase()}`);
    }
  });

  it('has the log entry columns, lowercase', () => {
    const cols = table().TableInput.StorageDescriptor.Columns;
    expect(cols.map((c) => c.Name)).toEqual([
      'seq',
      'time',
      'repository',
      'digest',
      'statement',
      'previous',
      'hash',
    ]);
    expect(cols.find((c) => c.Name === 'seq')?.Type).toBe('int');
    const statement = cols.find((c) => c.Name === 'statement')!.Type;
    expect(statement).toMatch(
      /^struct<_type:string,subject:array<struct<name:string,digest:struct<sha256:string>>>,predicatetype:string,predicate:struct<push:struct<time:string,tags:array<string>,pusher:struct<arn:string,type:string,accountid:string,sessionissuer:struct</,
    );
    expect(statement).toBe(statement.toLowerCase());
    expect(cols).toEqual(glueColumns().map((c) => ({ Name: c.name, Type: c.type })));
  });

  it('lives in a database of its own per vault', () => {
    const app = newApp();
    const stack = new Stack(app, 'Two', { env: PRIMARY });
    new ImageVault(stack, 'A');
    new ImageVault(stack, 'B');
    const names = Object.values(Template.fromStack(stack).findResources('AWS::Glue::Database')).map(
      (d) => (d as { Properties: { DatabaseInput: { Name: string } } }).Properties.DatabaseInput.Name,
    );
    expect(new Set(names).size).toBe(2);
  });
});

/** Every key path of a JSON value: objects by key, arrays by their elements (`a.b[].c`). */
function jsonPaths(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => jsonPaths(v, `${at}[]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const p = at ? `${at}.${k}` : k;
    return [p, ...jsonPaths(v, p)];
  });
}

/** Every path of the schema; `required` marks the fields not optional in lib/provenance/types.ts. Maps are leaves. */
function schemaPaths(type: GlueType, at = ''): Array<{ path: string; required: boolean; map: boolean }> {
  if (typeof type === 'string' || 'map' in type) return [];
  if ('array' in type) return schemaPaths(type.array, `${at}[]`);
  return type.struct.flatMap((f) => {
    const p = at ? `${at}.${f.name}` : f.name;
    return [
      { path: p, required: !f.optional, map: typeof f.type === 'object' && 'map' in f.type },
      ...schemaPaths(f.type, p),
    ];
  });
}

describe('the Glue table schema matches the record shape', () => {
  it('covers every key of a real log entry (with a joined identity and scan), and every required column is in it', async () => {
    // GIVEN a snapshotted image, its provenance record, and CloudTrail's identity joined to it
    const vault = await tempVault();
    const img = await snapshottedImage(vault, 'app/web', 'prod', 'schema-layer', {
      annotations: { 'org.opencontainers.image.source': 'https://example.com/app' },
    });
    await recordProvenance(vault, 'app/web', img.manifest.digest, { registry: 'example.com' });
    const joined = await recordPushIdentity(
      vault,
      putImageEvent({
        repository: 'app/web',
        digest: img.manifest.digest,
        tag: 'prod',
        identity: 'assumed-role',
      }),
    );
    expect(joined.status).toBe('joined');
    const scanned = await recordScan(
      vault,
      withDigest(inspectorScanDocumented(), img.manifest.digest, { repository: 'app/web' }),
      {
        findings: {
          topFindings: async () => [
            {
              id: 'CVE-2023-0001',
              severity: 'CRITICAL',
              package: 'glibc',
              version: '2.31',
              fixedIn: '2.31-13',
              uri: 'https://nvd.nist.gov/vuln/detail/CVE-2023-0001',
            },
          ],
        },
      },
    );
    expect(scanned.status).toBe('joined');
    // AND an image built by BuildKit with a SLSA provenance attestation in its index
    const built = await attestedIndex(vault, 'app/built', await putImage(vault, [Buffer.from('built')]), {
      bytes: Buffer.from(JSON.stringify(slsaV02FromGit())),
      predicateType: 'https://slsa.dev/provenance/v0.2',
    });
    const attested = await recordProvenance(vault, 'app/built', built.index.digest);
    expect(attested.statement.predicate.build?.status).toBe('known');
    // WHEN the entries are read as Athena would read the objects
    const read = async (repository: string, seq: number) =>
      JSON.parse((await vault.store.getBytes(logKey(repository, seq)))!.toString('utf8')) as unknown;
    const entry = await read('app/web', scanned.entry!.seq);
    // THEN every key path is a column path (case-insensitively; map columns hold any keys)
    const schema = schemaPaths({ struct: PROVENANCE_COLUMNS });
    const known = new Set(schema.map((s) => s.path.toLowerCase()));
    const maps = schema.filter((s) => s.map).map((s) => `${s.path.toLowerCase()}.`);
    const builtPaths = jsonPaths(await read('app/built', attested.entry.seq)).map((p) => p.toLowerCase());
    expect(builtPaths).toContain('statement.predicate.build.builderid');
    const record = jsonPaths(entry).map((p) => p.toLowerCase());
    expect(builtPaths.filter((p) => !known.has(p) && !maps.some((m) => p.startsWith(m)))).toEqual([]);
    const uncovered = record.filter((p) => !known.has(p) && !maps.some((m) => p.startsWith(m)));
    expect(uncovered).toEqual([]);
    // AND every required field whose parent the record has is in the record
    const present = new Set(record);
    const parentOf = (p: string) => p.replace(/\.[^.]+$/, '');
    const missing = schema
      .filter((s) => s.required)
      .map((s) => s.path.toLowerCase())
      .filter((p) => !p.includes('.') || present.has(parentOf(p)))
      .filter((p) => !present.has(p));
    expect(missing).toEqual([]);
    // AND the pusher's identity is where the README's Athena example reads it
    expect(present.has('statement.predicate.push.pusher.arn')).toBe(true);
    expect(present.has('statement.predicate.push.pusher.sessionissuer.arn')).toBe(true);
  });

  it('spells map and array types as Hive does', () => {
    expect(hiveType({ map: 'int' })).toBe('map<string,int>');
    expect(hiveType({ array: { struct: [{ name: 'mediaType', type: 'string' }] } })).toBe(
      'array<struct<mediatype:string>>',
    );
  });
});
