import type { ResolvedResource } from './resolve';
import type { Deployment } from './deployment';
import {
  describeCall,
  evaluate,
  impliedKmsCalls,
  policyHolderOf,
  type Call,
  type Decision,
} from './evaluate';

/**
 * A call AWS makes on our behalf, found by walking the template graph: which resource leads to which, and the
 * requests (with the KMS requests they imply) that must be allowed for it to work.
 */
export interface ServicePath {
  /** The walk that found it, e.g. `alarm → topic`. */
  readonly walk: string;
  /** e.g. `alarm VaultDeadLetterAlarm → topic VaultAlertTopic: sns:Publish as cloudwatch.amazonaws.com`. */
  readonly name: string;
  readonly calls: Call[];
}

/** A path's verdict: every call's decision. */
export interface PathResult {
  readonly path: ServicePath;
  readonly decisions: Decision[];
  readonly ok: boolean;
}

/** A logical ID without CDK's hash suffix, for names a reader recognizes. */
export const short = (r: ResolvedResource) => r.logicalId.replace(/[0-9A-F]{8}$/, '');

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** A sample object key under a prefix: concrete, as a real request is. */
const objectUnder = (bucketArn: string, prefix: string) => `${bucketArn}/${prefix}sample-object`;

function find(d: Deployment, type: string): ResolvedResource[] {
  return d.resources.filter((r) => r.type === type);
}

function byArnOfType(d: Deployment, arn: string, type: string): ResolvedResource | undefined {
  const r = d.byArn.get(arn);
  return r?.type === type ? r : undefined;
}

/** The function (resource) a name or ARN in a stack refers to. */
function functionOf(d: Deployment, nameOrArn: string): ResolvedResource | undefined {
  const base = policyHolderOf(nameOrArn);
  return find(d, 'AWS::Lambda::Function').find((f) => f.arn === base || f.ref === nameOrArn);
}

function roleOfFunction(fn: ResolvedResource): string {
  return String(fn.properties.Role);
}

/** A call and the KMS calls it implies. */
function withKms(d: Deployment, call: Call): Call[] {
  return [call, ...impliedKmsCalls(d, call)];
}

type Walker = (d: Deployment) => ServicePath[];

/** CloudWatch alarm → each SNS topic among its actions: CloudWatch publishes, the topic's key encrypts. */
const alarmToTopic: Walker = (d) =>
  find(d, 'AWS::CloudWatch::Alarm').flatMap((alarm) =>
    ['AlarmActions', 'OKActions', 'InsufficientDataActions']
      .flatMap((prop) => asList(alarm.properties[prop] as string[]))
      .filter((arn) => arn.includes(':sns:'))
      .map((topicArn) => {
        const topic = byArnOfType(d, topicArn, 'AWS::SNS::Topic');
        return {
          walk: 'alarm → topic',
          name: `alarm ${short(alarm)} → topic ${topic ? short(topic) : topicArn}: sns:Publish as cloudwatch.amazonaws.com`,
          calls: withKms(d, {
            principal: 'cloudwatch.amazonaws.com',
            action: 'sns:Publish',
            resource: topicArn,
            context: { 'aws:SourceArn': alarm.arn!, 'aws:SourceAccount': d.account },
          }),
        };
      }),
  );

/** Lambda function → its dead-letter queue (or topic): Lambda sends with the function's role. */
const functionToDeadLetter: Walker = (d) =>
  find(d, 'AWS::Lambda::Function').flatMap((fn) => {
    const target = (fn.properties.DeadLetterConfig as { TargetArn?: string } | undefined)?.TargetArn;
    if (!target) return [];
    const action = target.includes(':sqs:') ? 'sqs:SendMessage' : 'sns:Publish';
    const to = d.byArn.get(target);
    return [
      {
        walk: 'function → dead-letter queue',
        name: `function ${short(fn)} → dead-letter ${to ? short(to) : target}: ${action} as its role`,
        calls: withKms(d, { principal: roleOfFunction(fn), action, resource: target }),
      },
    ];
  });

/**
 * EventBridge rule → each target: SQS (sqs:SendMessage as events.amazonaws.com from the rule), Lambda
 * (lambda:InvokeFunction, granted by AWS::Lambda::Permission), and each target's own dead-letter queue. A target
 * with a RoleArn is called with that role instead.
 */
const ruleToTargets: Walker = (d) =>
  find(d, 'AWS::Events::Rule').flatMap((rule) =>
    asList(rule.properties.Targets as Array<Record<string, unknown>>).flatMap((t) => {
      const arn = String(t.Arn);
      const principal = t.RoleArn ? String(t.RoleArn) : 'events.amazonaws.com';
      const context: Record<string, string> = t.RoleArn
        ? {}
        : { 'aws:SourceArn': rule.arn!, 'aws:SourceAccount': d.account };
      const as = t.RoleArn ? `role ${String(t.RoleArn)}` : 'events.amazonaws.com';
      const paths: ServicePath[] = [];
      const target = d.byArn.get(policyHolderOf(arn));
      const label = target ? short(target) : arn;
      const action = arn.includes(':sqs:')
        ? 'sqs:SendMessage'
        : arn.includes(':lambda:')
          ? 'lambda:InvokeFunction'
          : arn.includes(':sns:')
            ? 'sns:Publish'
            : undefined;
      if (!action)
        throw new Error(`rule ${short(rule)}: the harness does not know how EventBridge calls ${arn}`);
      paths.push({
        walk: 'rule → target',
        name: `rule ${short(rule)} → ${action.split(':')[0]} ${label}: ${action} as ${as}`,
        calls: withKms(d, { principal, action, resource: arn, context }),
      });
      const dlq = (t.DeadLetterConfig as { Arn?: string } | undefined)?.Arn;
      if (dlq) {
        const q = d.byArn.get(dlq);
        paths.push({
          walk: 'rule → target',
          name: `rule ${short(rule)} target ${label} → dead-letter ${q ? short(q) : dlq}: sqs:SendMessage as events.amazonaws.com`,
          calls: withKms(d, {
            principal: 'events.amazonaws.com',
            action: 'sqs:SendMessage',
            resource: dlq,
            context: { 'aws:SourceArn': rule.arn!, 'aws:SourceAccount': d.account },
          }),
        });
      }
      return paths;
    }),
  );

/** SQS event source mapping → the function's role polls the queue (and decrypts with the queue's key). */
const eventSourceToQueue: Walker = (d) =>
  find(d, 'AWS::Lambda::EventSourceMapping').flatMap((m) => {
    const source = String(m.properties.EventSourceArn);
    const fn = functionOf(d, String(m.properties.FunctionName));
    if (!fn)
      throw new Error(
        `event source mapping ${short(m)}: unknown function ${String(m.properties.FunctionName)}`,
      );
    if (!source.includes(':sqs:')) return [];
    const q = d.byArn.get(source);
    const role = roleOfFunction(fn);
    return [
      {
        walk: 'event source → queue',
        name: `event source ${short(m)}: function ${short(fn)} polls queue ${q ? short(q) : source} as its role`,
        calls: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'].flatMap((action) =>
          withKms(d, { principal: role, action, resource: source }),
        ),
      },
    ];
  });

/** Lambda function → its execution role: lambda.amazonaws.com must be trusted to assume it. */
const functionAssumesRole: Walker = (d) =>
  find(d, 'AWS::Lambda::Function').map((fn) => ({
    walk: 'function → role trust',
    name: `function ${short(fn)} → role ${roleOfFunction(fn).split('/').pop()}: sts:AssumeRole as lambda.amazonaws.com`,
    calls: [{ principal: 'lambda.amazonaws.com', action: 'sts:AssumeRole', resource: roleOfFunction(fn) }],
  }));

/** Lambda function → its log group (LoggingConfig): the function's role creates streams and puts events. */
const functionToLogGroup: Walker = (d) =>
  find(d, 'AWS::Lambda::Function').flatMap((fn) => {
    const group = (fn.properties.LoggingConfig as { LogGroup?: string } | undefined)?.LogGroup;
    if (!group) return [];
    const region = fn.region;
    const stream = `arn:aws:logs:${region}:${d.account}:log-group:${group}:log-stream:2026/01/01/[$LATEST]0123`;
    return [
      {
        walk: 'function → log group',
        name: `function ${short(fn)} → log group ${group}: logs:CreateLogStream, logs:PutLogEvents as its role`,
        calls: ['logs:CreateLogStream', 'logs:PutLogEvents'].map((action) => ({
          principal: roleOfFunction(fn),
          action,
          resource: stream,
        })),
      },
    ];
  });

/** S3 replication → the replication role reads here, writes there, with both keys through S3. */
const bucketReplication: Walker = (d) =>
  find(d, 'AWS::S3::Bucket').flatMap((bucket) => {
    const config = bucket.properties.ReplicationConfiguration as
      | {
          Role: string;
          Rules: Array<{
            Id?: string;
            Destination: { Bucket: string; EncryptionConfiguration?: { ReplicaKmsKeyID?: string } };
            DeleteMarkerReplication?: { Status: string };
            SourceSelectionCriteria?: { SseKmsEncryptedObjects?: { Status: string } };
          }>;
        }
      | undefined;
    if (!config) return [];
    const role = config.Role;
    const sourceKey = d.encryption.get(bucket.arn!);
    const locked =
      bucket.properties.ObjectLockEnabled === true || bucket.properties.ObjectLockEnabled === 'true';
    const sourceObject = objectUnder(bucket.arn!, '');
    return config.Rules.map((rule) => {
      const dest = rule.Destination.Bucket;
      const destBucket = d.byArn.get(dest);
      const destObject = objectUnder(dest, '');
      const destKey = rule.Destination.EncryptionConfiguration?.ReplicaKmsKeyID;
      const via = (arn: string) => ({ 'kms:ViaService': `s3.${arnRegion(d, arn)}.amazonaws.com` });
      const calls: Call[] = [
        { principal: role, action: 's3:GetReplicationConfiguration', resource: bucket.arn! },
        { principal: role, action: 's3:ListBucket', resource: bucket.arn! },
        ...['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging']
          .concat(locked ? ['s3:GetObjectRetention', 's3:GetObjectLegalHold'] : [])
          .map((action) => ({ principal: role, action, resource: sourceObject })),
        ...['s3:ReplicateObject', 's3:ReplicateTags']
          .concat(rule.DeleteMarkerReplication?.Status === 'Enabled' ? ['s3:ReplicateDelete'] : [])
          .map((action) => ({ principal: role, action, resource: destObject })),
        ...(sourceKey && sourceKey.startsWith('arn:')
          ? [{ principal: role, action: 'kms:Decrypt', resource: sourceKey, context: via(bucket.arn!) }]
          : []),
        ...(destKey
          ? ['kms:Encrypt', 'kms:GenerateDataKey'].map((action) => ({
              principal: role,
              action,
              resource: destKey,
              context: via(dest),
            }))
          : []),
      ];
      return {
        walk: 'bucket → replica',
        name: `bucket ${short(bucket)} replication rule ${rule.Id ?? '?'} → bucket ${destBucket ? short(destBucket) : dest}: as role ${role.split('/').pop()}`,
        calls,
      };
    });
  });

function arnRegion(d: Deployment, arn: string): string {
  const r = d.byArn.get(arn);
  if (r) return r.region;
  const region = arn.split(':')[3];
  if (!region) throw new Error(`cannot tell the region of ${arn}`);
  return region;
}

/** CloudTrail trail → its bucket: CloudTrail reads the ACL and writes log files with bucket-owner-full-control. */
const trailToBucket: Walker = (d) =>
  find(d, 'AWS::CloudTrail::Trail').map((trail) => {
    const bucket = `arn:aws:s3:::${String(trail.properties.S3BucketName)}`;
    const prefix = trail.properties.S3KeyPrefix ? `${String(trail.properties.S3KeyPrefix)}/` : '';
    const context = { 'aws:SourceArn': trail.arn!, 'aws:SourceAccount': d.account };
    const b = d.byArn.get(bucket);
    return {
      walk: 'trail → bucket',
      name: `trail ${short(trail)} → bucket ${b ? short(b) : bucket}: s3:GetBucketAcl, s3:PutObject as cloudtrail.amazonaws.com`,
      calls: [
        { principal: 'cloudtrail.amazonaws.com', action: 's3:GetBucketAcl', resource: bucket, context },
        ...withKms(d, {
          principal: 'cloudtrail.amazonaws.com',
          action: 's3:PutObject',
          resource: `${bucket}/${prefix}AWSLogs/${d.account}/CloudTrail/${trail.region}/2026/01/01/${d.account}_CloudTrail_${trail.region}_20260101T0000Z_abc.json.gz`,
          context: { ...context, 's3:x-amz-acl': 'bucket-owner-full-control' },
        }),
      ],
    };
  });

/** S3 server access logging → the log bucket: S3's logging service writes under the prefix. */
const bucketToAccessLogs: Walker = (d) =>
  find(d, 'AWS::S3::Bucket').flatMap((bucket) => {
    const logging = bucket.properties.LoggingConfiguration as
      { DestinationBucketName?: string; LogFilePrefix?: string } | undefined;
    if (!logging?.DestinationBucketName) return [];
    const dest = `arn:aws:s3:::${logging.DestinationBucketName}`;
    const b = d.byArn.get(dest);
    return [
      {
        walk: 'bucket → access log bucket',
        name: `bucket ${short(bucket)} → access logs ${b ? short(b) : dest}: s3:PutObject as logging.s3.amazonaws.com`,
        calls: withKms(d, {
          principal: 'logging.s3.amazonaws.com',
          action: 's3:PutObject',
          resource: objectUnder(dest, `${logging.LogFilePrefix ?? ''}2026-01-01-00-00-00-`),
          context: { 'aws:SourceArn': bucket.arn!, 'aws:SourceAccount': d.account },
        }),
      },
    ];
  });

/** CDK's Trigger custom resource → the provider function invokes the handler (a version) with its role. */
const triggerToHandler: Walker = (d) =>
  d.resources
    .filter((r) => r.type === 'Custom::Trigger')
    .map((trigger) => {
      const provider = functionOf(d, String(trigger.properties.ServiceToken));
      if (!provider)
        throw new Error(
          `trigger ${short(trigger)}: unknown provider ${String(trigger.properties.ServiceToken)}`,
        );
      const handler = String(trigger.properties.HandlerArn);
      return {
        walk: 'trigger → handler',
        name: `trigger ${short(trigger)} → handler ${handler.split(':').slice(-2).join(':')}: lambda:InvokeFunction as the provider's role`,
        calls: [{ principal: roleOfFunction(provider), action: 'lambda:InvokeFunction', resource: handler }],
      };
    });

/**
 * Lambda function → each secret its environment names by ARN: the function reads it with its role
 * (secretsmanager:GetSecretValue), and Secrets Manager decrypts it with the secret's key on the role's behalf.
 */
const functionToSecret: Walker = (d) =>
  find(d, 'AWS::Lambda::Function').flatMap((fn) => {
    const vars = ((fn.properties.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables ?? {}) as Record<string, unknown>;
    return Object.entries(vars)
      .filter(([, v]) => typeof v === 'string' && /^arn:aws[a-z-]*:secretsmanager:/.test(v))
      .map(([name, v]) => ({
        walk: 'function → secret',
        name: `function ${short(fn)} → secret ${name}: secretsmanager:GetSecretValue as its role`,
        calls: withKms(d, {
          principal: roleOfFunction(fn),
          action: 'secretsmanager:GetSecretValue',
          resource: String(v),
        }),
      }));
  });

/**
 * The walks, each over the whole template graph. SNS e-mail subscriptions need no permission (the subscriber
 * confirms), Glue's database and table are only metadata (Athena reads with the caller's permissions): no walk.
 */
export const WALKS: Record<string, Walker> = {
  'alarm → topic': alarmToTopic,
  'function → dead-letter queue': functionToDeadLetter,
  'rule → target': ruleToTargets,
  'event source → queue': eventSourceToQueue,
  'function → role trust': functionAssumesRole,
  'function → log group': functionToLogGroup,
  'bucket → replica': bucketReplication,
  'trail → bucket': trailToBucket,
  'bucket → access log bucket': bucketToAccessLogs,
  'trigger → handler': triggerToHandler,
  'function → secret': functionToSecret,
};

/** Every service path of a deployment, from every walk. */
export function servicePaths(d: Deployment): ServicePath[] {
  return Object.values(WALKS).flatMap((walk) => walk(d));
}

/** Evaluates every call of a path. */
export async function evaluatePath(d: Deployment, path: ServicePath): Promise<PathResult> {
  const decisions = await Promise.all(path.calls.map((c) => evaluate(d, c)));
  return { path, decisions, ok: decisions.every((x) => x.allowed) };
}

/** A failed path as a message: its name and each denied call with its explanation. */
export function failureMessage(r: PathResult): string {
  return [`${r.path.name}:`, ...r.decisions.filter((x) => !x.allowed).map((x) => `  ${x.explanation}`)].join(
    '\n',
  );
}

export { describeCall };
