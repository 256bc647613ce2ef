import type { App } from 'aws-cdk-lib';
import { appFromContext } from '../infra/support';
import { FLAG_SETS } from '../consumer/support';
import { Resolver, type CfnTemplate, type ResolvedResource, type StackInput } from './resolve';

/** The fixed account every deployment of the harness goes to. */
export const ACCOUNT = '111122223333';
/** The primary region (ECR, the vault) and the replica's region. */
export const REGIONS = { primary: 'eu-west-1', replica: 'eu-central-1' } as const;

/** An IAM policy document, resolved. */
export interface PolicyDocument {
  Version?: string;
  Statement: Statement[];
}

/** One statement of a policy document, resolved. */
export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** A policy of a deployment, with where it comes from (for explanations). */
export interface NamedPolicy {
  /** `<stack>/<logical ID>` of the resource that holds the document, and the policy's name when inline. */
  readonly source: string;
  readonly document: PolicyDocument;
}

/** An IAM role of the deployment. */
export interface Role {
  readonly arn: string;
  readonly resource: ResolvedResource;
  /** Who may assume it. */
  readonly trustPolicy: PolicyDocument;
  /** Inline policies and the AWS::IAM::Policy resources attached to it. */
  readonly policies: NamedPolicy[];
  /** Managed policies (AWS's): the harness cannot evaluate them and says so when a decision depends on them. */
  readonly managedPolicyArns: string[];
}

/** A secret or key that lives outside the templates (imported by ARN). */
export interface ExternalResources {
  /** Secret ARN → the ARN of the customer managed key it is encrypted with. */
  readonly secretKeys?: Record<string, string>;
  /**
   * Key ARN → its key policy. Unverified assumption of the harness: an imported key has the default key policy
   * (the account root may use it, which delegates to IAM), unless a test gives another.
   */
  readonly keyPolicies?: Record<string, PolicyDocument>;
}

/** Which synthesized app, with which settings. */
export interface DeploymentInput {
  readonly name: string;
  readonly stacks: Array<{ name: string; region: string; template: CfnTemplate }>;
  readonly external?: ExternalResources;
}

/**
 * One deployment, resolved to concrete values in ACCOUNT: its resources, roles and their policies, the resource
 * policies (bucket, queue, topic, key, secret, Lambda permissions as a function policy), and which key encrypts
 * which bucket, queue, topic or secret.
 */
export interface Deployment {
  readonly name: string;
  readonly account: string;
  readonly resources: ResolvedResource[];
  /** Role ARN → role. */
  readonly roles: Map<string, Role>;
  /** Bucket, queue, topic, key, function or secret ARN → the policies on it (several policies combine). */
  readonly resourcePolicies: Map<string, NamedPolicy[]>;
  /** Bucket, queue, topic or secret ARN → the ARN of the KMS key that encrypts it. */
  readonly encryption: Map<string, string>;
  /** ARN → the resource, for buckets, queues, topics, keys, functions, rules, alarms, trails and roles. */
  readonly byArn: Map<string, ResolvedResource>;
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Builds the model of a deployment from its synthesized stacks. */
export function modelOf(input: DeploymentInput): Deployment {
  const stacks: StackInput[] = input.stacks.map((s) => ({ ...s, account: ACCOUNT }));
  const resources = new Resolver(stacks).resources();
  const byArn = new Map<string, ResolvedResource>();
  const byRef = new Map<string, ResolvedResource>();
  for (const r of resources) {
    if (r.arn) byArn.set(r.arn, r);
    byRef.set(`${r.stack}/${r.ref}`, r);
  }
  const roles = new Map<string, Role>();
  const resourcePolicies = new Map<string, NamedPolicy[]>();
  const encryption = new Map<string, string>();
  const addPolicy = (arn: string, policy: NamedPolicy) =>
    resourcePolicies.set(arn, [...(resourcePolicies.get(arn) ?? []), policy]);
  const keyArn = (r: ResolvedResource, idOrArn: unknown): string => {
    const v = String(idOrArn);
    if (v.startsWith('arn:')) return v;
    const key = resources.find((k) => k.type === 'AWS::KMS::Key' && k.ref === v);
    if (key?.arn) return key.arn;
    // An alias or an ID of a key outside the templates: as S3/SQS/SNS would, in the resource's region.
    return `arn:aws:kms:${r.region}:${ACCOUNT}:${v.startsWith('alias/') ? v : `key/${v}`}`;
  };
  const source = (r: ResolvedResource, name?: string) =>
    `${r.stack}/${r.logicalId}${name ? ` (${name})` : ''}`;

  for (const r of resources.filter((x) => x.type === 'AWS::IAM::Role')) {
    const p = r.properties as {
      AssumeRolePolicyDocument: PolicyDocument;
      Policies?: Array<{ PolicyName: string; PolicyDocument: PolicyDocument }>;
      ManagedPolicyArns?: string[];
    };
    roles.set(r.arn!, {
      arn: r.arn!,
      resource: r,
      trustPolicy: p.AssumeRolePolicyDocument,
      policies: (p.Policies ?? []).map((x) => ({
        source: source(r, x.PolicyName),
        document: x.PolicyDocument,
      })),
      managedPolicyArns: p.ManagedPolicyArns ?? [],
    });
    addPolicy(r.arn!, { source: `${source(r)} trust policy`, document: p.AssumeRolePolicyDocument });
  }
  const roleByName = (stack: string, name: string) => {
    const r = byRef.get(`${stack}/${name}`);
    if (!r || r.type !== 'AWS::IAM::Role')
      throw new Error(`${stack}: a policy is attached to unknown role ${name}`);
    return roles.get(r.arn!)!;
  };

  for (const r of resources) {
    const p = r.properties;
    switch (r.type) {
      case 'AWS::IAM::Policy':
        for (const name of asList(p.Roles as string[]))
          roleByName(r.stack, name).policies.push({
            source: source(r, String(p.PolicyName)),
            document: p.PolicyDocument as PolicyDocument,
          });
        break;
      case 'AWS::S3::BucketPolicy':
        addPolicy(`arn:aws:s3:::${String(p.Bucket)}`, {
          source: source(r),
          document: p.PolicyDocument as PolicyDocument,
        });
        break;
      case 'AWS::SQS::QueuePolicy':
        for (const url of asList(p.Queues as string[])) {
          const queue = resources.find((q) => q.type === 'AWS::SQS::Queue' && q.ref === url);
          if (!queue) throw new Error(`${source(r)}: a policy for unknown queue ${url}`);
          addPolicy(queue.arn!, { source: source(r), document: p.PolicyDocument as PolicyDocument });
        }
        break;
      case 'AWS::SNS::TopicPolicy':
        for (const topic of asList(p.Topics as string[]))
          addPolicy(topic, { source: source(r), document: p.PolicyDocument as PolicyDocument });
        break;
      case 'AWS::SNS::TopicInlinePolicy':
        addPolicy(String(p.TopicArn), { source: source(r), document: p.PolicyDocument as PolicyDocument });
        break;
      case 'AWS::KMS::Key':
        addPolicy(r.arn!, { source: source(r), document: p.KeyPolicy as PolicyDocument });
        break;
      case 'AWS::SecretsManager::ResourcePolicy':
        addPolicy(String(p.SecretId), { source: source(r), document: p.ResourcePolicy as PolicyDocument });
        break;
      case 'AWS::Lambda::Permission': {
        // What `AddPermission` puts into the function's policy (see the Lambda developer guide).
        const fn = String(p.FunctionName);
        const fnArn = fn.startsWith('arn:') ? fn : `arn:aws:lambda:${r.region}:${ACCOUNT}:function:${fn}`;
        const principal = String(p.Principal);
        const condition: Statement['Condition'] = {};
        if (p.SourceArn) condition.ArnLike = { 'aws:SourceArn': p.SourceArn };
        if (p.SourceAccount) condition.StringEquals = { 'aws:SourceAccount': p.SourceAccount };
        addPolicy(fnArn.replace(/:\$LATEST$/, ''), {
          source: source(r),
          document: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: r.logicalId,
                Effect: 'Allow',
                Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
                Action: String(p.Action),
                Resource: fnArn,
                ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
              },
            ],
          },
        });
        break;
      }
      case 'AWS::S3::Bucket': {
        const rules = (p.BucketEncryption as { ServerSideEncryptionConfiguration?: unknown[] } | undefined)
          ?.ServerSideEncryptionConfiguration as
          | Array<{ ServerSideEncryptionByDefault?: { SSEAlgorithm: string; KMSMasterKeyID?: string } }>
          | undefined;
        const sse = rules?.[0]?.ServerSideEncryptionByDefault;
        if (sse?.SSEAlgorithm.startsWith('aws:kms'))
          encryption.set(r.arn!, sse.KMSMasterKeyID ? keyArn(r, sse.KMSMasterKeyID) : 'aws/s3');
        break;
      }
      case 'AWS::SQS::Queue':
        if (p.KmsMasterKeyId) encryption.set(r.arn!, keyArn(r, p.KmsMasterKeyId));
        break;
      case 'AWS::SNS::Topic':
        if (p.KmsMasterKeyId) encryption.set(r.ref, keyArn(r, p.KmsMasterKeyId));
        break;
      case 'AWS::SecretsManager::Secret':
        if (p.KmsKeyId) encryption.set(r.ref, keyArn(r, p.KmsKeyId));
        break;
    }
  }
  for (const [secret, key] of Object.entries(input.external?.secretKeys ?? {})) encryption.set(secret, key);
  for (const [key, policy] of Object.entries(input.external?.keyPolicies ?? {}))
    addPolicy(key, { source: `external key ${key}`, document: policy });
  // Topics are referenced by ARN (their Ref): index them by it too.
  for (const r of resources) if (r.type === 'AWS::SNS::Topic') byArn.set(r.ref, r);
  return { name: input.name, account: ACCOUNT, resources, roles, resourcePolicies, encryption, byArn };
}

/** The key policy AWS gives a key created without one: the account may use it, through IAM policies. */
export function defaultKeyPolicy(account: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  };
}

/** The stacks of a synthesized app, with their regions and templates. */
function stacksOf(app: App): DeploymentInput['stacks'] {
  return app.synth().stacks.map((s) => ({
    name: s.stackName,
    region: s.environment.region,
    template: s.template as CfnTemplate,
  }));
}

/** An upstream credentials secret imported by ARN, encrypted with a customer managed key: both outside the app. */
export const UPSTREAM_SECRET = {
  secretArn: `arn:aws:secretsmanager:${REGIONS.primary}:${ACCOUNT}:secret:imagevault/upstream-AbC123`,
  keyArn: `arn:aws:kms:${REGIONS.primary}:${ACCOUNT}:key/0b9d2d64-4a5f-4c43-9f3e-7f1e3c5a9d21`,
};

/**
 * This repository's app (bin/app.ts from cdk.json's context) with every optional part on: a replica, a trail of
 * its own, Object Lock, and an imported upstream credentials secret encrypted with a customer managed key.
 */
export function repositoryApp(context: Record<string, unknown> = {}): DeploymentInput {
  const { app } = appFromContext({
    region: REGIONS.primary,
    replicaRegion: REGIONS.replica,
    provenanceTrail: 'create',
    objectLock: 'governance',
    upstreamCredentialsSecretArn: UPSTREAM_SECRET.secretArn,
    upstreamCredentialsKeyArn: UPSTREAM_SECRET.keyArn,
    eksClusters: ['prod-eks'],
    retentionPolicy: { rules: [{ prefix: '', keepLast: 5 }] },
    // The deletion guard's restore: its pushes are checked here (the consumer apps leave it off, and push nothing).
    autoRestoreInUse: true,
    ...context,
  });
  return {
    name: "this repository's app (replica, trail, Object Lock, imported secret with its own key, autoRestoreInUse, EKS, retention)",
    stacks: stacksOf(app),
    external: {
      secretKeys: { [UPSTREAM_SECRET.secretArn]: UPSTREAM_SECRET.keyArn },
      keyPolicies: { [UPSTREAM_SECRET.keyArn]: defaultKeyPolicy(ACCOUNT) },
    },
  };
}

/**
 * The consumer fixture (test/consumer/app.ts) with a set of feature flags, evaluated afresh as `cdk synth` would
 * (see test/consumer/support.ts): only plain templates come out.
 */
export function consumerApp(flagSet: keyof typeof FLAG_SETS): DeploymentInput {
  const saved = process.env.CDK_CONTEXT_JSON;
  process.env.CDK_CONTEXT_JSON = JSON.stringify(FLAG_SETS[flagSet]);
  try {
    let stacks: DeploymentInput['stacks'] = [];
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { app } = require('../consumer/app') as typeof import('../consumer/app');
      stacks = stacksOf(app);
    });
    return { name: `the consumer app with ${flagSet}`, stacks };
  } finally {
    if (saved === undefined) delete process.env.CDK_CONTEXT_JSON;
    else process.env.CDK_CONTEXT_JSON = saved;
  }
}

/** Every deployment the harness checks: this repository's app and the consumer app under each flag set. */
export function allDeployments(): Deployment[] {
  return [repositoryApp(), ...Object.keys(FLAG_SETS).map((f) => consumerApp(f))].map(modelOf);
}
