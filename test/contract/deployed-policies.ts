/**
 * The deployed pipeline as IAM sees it: the app's stacks synthesized, resolved for a test account and two regions
 * (./resolve-templates.ts), and every request evaluated by a real IAM policy evaluator against the policies AWS would combine —
 * the caller's identity policies, the resource's own policy (bucket, queue, topic, key, function) and, for KMS, the
 * key policy — so that a missing permission fails here and not on the first deploy.
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { App } from 'aws-cdk-lib';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { ImageVault, VaultReplica, type ImageVaultProps } from '../../lib/infra';
import type { HandlerName } from '../../lib/infra/entries';
import { newApp, PRIMARY, SECONDARY } from '../infra/support';
import { resolveStacks, type ResolvedResource, type StackTemplate } from './resolve-templates';
import type { DeployedNames } from './sdk-actions';

type Statement = Record<string, unknown>;
interface PolicyDocument {
  Version?: string;
  Statement: Statement[];
}

/** One request, as AWS receives it. `principal` is a role ARN, or a service principal such as `events.amazonaws.com`. */
export interface ContractRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string | string[]>>;
}

/** What the evaluator decided, and why, in words for a failure message. */
export interface Verdict {
  readonly allowed: boolean;
  readonly result: string;
  readonly explanation: string;
}

/** The logical ID of the role the README's example gives `grantRead` (the CLI's on-call reader). */
const READER_ROLE = 'OnCallRestore';

export const UPSTREAM_SECRET_ARN = `arn:aws:secretsmanager:${PRIMARY.region}:${PRIMARY.account}:secret:imagevault/upstream-AbCdEf`;

/** A deployment: its resolved resources and an evaluator over their policies. */
export class Deployment {
  readonly resources: readonly ResolvedResource[];

  constructor(resources: readonly ResolvedResource[]) {
    this.resources = resources;
  }

  /** Resources of a type (optionally whose logical ID starts with a prefix). */
  ofType(type: string, idPrefix = ''): ResolvedResource[] {
    return this.resources.filter((r) => r.type === type && r.logicalId.startsWith(idPrefix));
  }

  /** The one resource of a type whose logical ID starts with `idPrefix`. */
  one(type: string, idPrefix: string): ResolvedResource {
    const found = this.ofType(type, idPrefix);
    if (found.length !== 1) throw new Error(`${found.length} ${type} with logical ID ${idPrefix}*`);
    return found[0];
  }

  /** The resource whose ARN, Ref or URL is `id`. */
  byId(id: string): ResolvedResource | undefined {
    return this.resources.find((r) => r.arn === id || r.ref === id);
  }

  /** The role of the function that runs a handler (its POWERTOOLS_SERVICE_NAME is `imagevault-<handler>`). */
  roleOf(handler: HandlerName): string {
    const fn = this.ofType('AWS::Lambda::Function').find(
      (f) => envOf(f).POWERTOOLS_SERVICE_NAME === `imagevault-${handler}`,
    );
    if (!fn) throw new Error(`no function runs the ${handler} handler`);
    return String(fn.properties.Role);
  }

  /** The on-call role of the README's example, given `ImageVault.grantRead`: what the CLI reads the vault as. */
  readerRoleArn(): string {
    return this.one('AWS::IAM::Role', READER_ROLE).arn;
  }

  /** The names recorded calls are translated onto: the vault bucket, its prefix, the topic, the queue, the secret. */
  names(): DeployedNames {
    const snapshot = this.ofType('AWS::Lambda::Function').find(
      (f) => envOf(f).POWERTOOLS_SERVICE_NAME === 'imagevault-snapshot',
    )!;
    const env = envOf(snapshot);
    const mapping = this.ofType('AWS::Lambda::EventSourceMapping').find(
      (m) => m.properties.FunctionName === snapshot.ref,
    )!;
    const upstream = this.ofType('AWS::Lambda::Function').find(
      (f) => envOf(f).POWERTOOLS_SERVICE_NAME === 'imagevault-upstream',
    );
    const secret = upstream && envOf(upstream).UPSTREAM_CREDENTIALS_SECRET;
    return {
      partition: 'aws',
      account: snapshot.account,
      region: snapshot.region,
      vaultBucket: env.VAULT_BUCKET,
      vaultPrefix: env.VAULT_PREFIX ?? '',
      alertTopicArn: env.ALERT_TOPIC_ARN,
      snapshotQueueArn: String(mapping.properties.EventSourceArn),
      ...(secret ? { upstreamSecretArn: secret } : {}),
    };
  }

  /** The identity policies of a role: its inline policies and every AWS::IAM::Policy attached to it. */
  identityPolicies(roleArn: string): Array<{ name: string; policy: PolicyDocument }> {
    const role = this.ofType('AWS::IAM::Role').find((r) => r.arn === roleArn);
    if (!role) return [];
    const inline = (
      (role.properties.Policies as Array<{ PolicyName: string; PolicyDocument: PolicyDocument }>) ?? []
    ).map((p) => ({ name: p.PolicyName, policy: p.PolicyDocument }));
    const attached = this.ofType('AWS::IAM::Policy')
      .filter((p) => ((p.properties.Roles as string[]) ?? []).includes(role.ref))
      .map((p) => ({
        name: String(p.properties.PolicyName ?? p.logicalId),
        policy: p.properties.PolicyDocument as PolicyDocument,
      }));
    return [...inline, ...attached];
  }

  /** The resource policy AWS evaluates for a request on `resource`, if the resource has one. */
  resourcePolicy(resource: string): PolicyDocument | undefined {
    if (resource.startsWith('arn:aws:s3:::')) {
      const bucket = resource.slice('arn:aws:s3:::'.length).split('/')[0];
      return this.ofType('AWS::S3::BucketPolicy').find((p) => p.properties.Bucket === bucket)?.properties
        .PolicyDocument as PolicyDocument | undefined;
    }
    const target = this.byId(resource);
    if (!target) return undefined;
    switch (target.type) {
      case 'AWS::SQS::Queue':
        return merge(
          this.ofType('AWS::SQS::QueuePolicy')
            .filter((p) => ((p.properties.Queues as string[]) ?? []).includes(target.ref))
            .map((p) => p.properties.PolicyDocument as PolicyDocument),
        );
      case 'AWS::SNS::Topic':
        return merge(
          this.ofType('AWS::SNS::TopicPolicy')
            .filter((p) => ((p.properties.Topics as string[]) ?? []).includes(target.arn))
            .map((p) => p.properties.PolicyDocument as PolicyDocument),
        );
      case 'AWS::KMS::Key':
        return target.properties.KeyPolicy as PolicyDocument;
      case 'AWS::Lambda::Function':
        return lambdaPolicy(
          target,
          this.ofType('AWS::Lambda::Permission').filter(
            (p) => p.properties.FunctionName === target.ref || p.properties.FunctionName === target.arn,
          ),
        );
    }
    return undefined;
  }

  /** The KMS key that encrypts a bucket, queue or topic (by ARN, Ref or URL), if a customer managed key does. */
  keyOf(resource: string): string | undefined {
    const target = resource.startsWith('arn:aws:s3:::')
      ? this.ofType('AWS::S3::Bucket').find(
          (b) => b.ref === resource.slice('arn:aws:s3:::'.length).split('/')[0],
        )
      : this.byId(resource);
    if (!target) return undefined;
    let key: unknown;
    if (target.type === 'AWS::S3::Bucket') {
      const rules = (target.properties.BucketEncryption as { ServerSideEncryptionConfiguration?: unknown[] })
        ?.ServerSideEncryptionConfiguration as Array<{
        ServerSideEncryptionByDefault?: { KMSMasterKeyID?: string };
      }>;
      key = rules?.[0]?.ServerSideEncryptionByDefault?.KMSMasterKeyID;
    } else if (target.type === 'AWS::SQS::Queue' || target.type === 'AWS::SNS::Topic') {
      key = target.properties.KmsMasterKeyId;
    }
    if (typeof key !== 'string') return undefined;
    const k = this.byId(key) ?? this.resources.find((r) => r.type === 'AWS::KMS::Key' && key === r.arn);
    return k?.arn ?? key;
  }

  /** Evaluates one request as AWS would: identity policies, the resource's policy, and the key policy for KMS. */
  async evaluate(request: ContractRequest): Promise<Verdict> {
    const isRole = request.principal.startsWith('arn:');
    const account = accountOf(request.resource) ?? this.resources[0].account;
    const response = await runSimulation(
      {
        request: {
          principal: request.principal,
          action: request.action,
          resource: { resource: request.resource, accountId: account },
          contextVariables: { ...(request.context ?? {}) },
        },
        identityPolicies: isRole ? this.identityPolicies(request.principal) : [],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: this.resourcePolicy(request.resource),
      },
      {},
    );
    if (response.resultType === 'error') {
      return {
        allowed: false,
        result: 'error',
        explanation: `the evaluator refused the request: ${JSON.stringify(response.errors).slice(0, 600)}`,
      };
    }
    const allowed = response.overallResult === 'Allowed';
    return {
      allowed,
      result: response.overallResult,
      explanation: allowed ? 'allowed' : `${response.overallResult}: ${this.describeWhy(request)}`,
    };
  }

  private describeWhy(request: ContractRequest): string {
    const identity = request.principal.startsWith('arn:')
      ? `${this.identityPolicies(request.principal).length} identity policies`
      : 'a service principal (no identity policies)';
    const resource = this.resourcePolicy(request.resource) ? 'a resource policy' : 'no resource policy';
    return `${identity}, ${resource} on ${request.resource}`;
  }
}

function merge(docs: PolicyDocument[]): PolicyDocument | undefined {
  if (docs.length === 0) return undefined;
  return { Version: '2012-10-17', Statement: docs.flatMap((d) => d.Statement) };
}

/** A function's permissions (AWS::Lambda::Permission) as the resource policy Lambda builds from them. */
function lambdaPolicy(fn: ResolvedResource, permissions: ResolvedResource[]): PolicyDocument | undefined {
  if (permissions.length === 0) return undefined;
  return {
    Version: '2012-10-17',
    Statement: permissions.map((p) => {
      const principal = String(p.properties.Principal);
      const condition: Record<string, Record<string, string>> = {};
      if (p.properties.SourceArn) condition.ArnLike = { 'aws:SourceArn': String(p.properties.SourceArn) };
      if (p.properties.SourceAccount)
        condition.StringEquals = { 'aws:SourceAccount': String(p.properties.SourceAccount) };
      return {
        Effect: 'Allow',
        Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
        Action: String(p.properties.Action),
        Resource: fn.arn,
        ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
      };
    }),
  };
}

function envOf(fn: ResolvedResource): Record<string, string> {
  return ((fn.properties.Environment as { Variables?: Record<string, string> })?.Variables ?? {}) as Record<
    string,
    string
  >;
}

function accountOf(arn: string): string | undefined {
  return /^arn:[^:]+:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1];
}

/** The stacks of an app as the resolver takes them. */
export function stacksOf(app: App): StackTemplate[] {
  return app.synth().stacks.map((s) => ({
    stackName: s.stackName,
    account: s.environment.account,
    region: s.environment.region,
    template: s.template as StackTemplate['template'],
  }));
}

/**
 * The test deployment: a replica stack and a vault stack with everything on that adds a path — Object Lock,
 * a created trail, an upstream credentials secret — under cdk.json's flags, unless other props are given.
 */
export function testDeployment(props: Partial<ImageVaultProps> = {}, app: App = newApp()): Deployment {
  const replicaStack = new Stack(app, 'Replica', { env: SECONDARY, crossRegionReferences: true });
  const replica = new VaultReplica(replicaStack, 'Replica', { objectLock: 'governance', objectLockDays: 1 });
  const stack = new Stack(app, 'Vault', { env: PRIMARY, crossRegionReferences: true });
  const secret = secretsmanager.Secret.fromSecretCompleteArn(stack, 'UpstreamSecret', UPSTREAM_SECRET_ARN);
  const vault = new ImageVault(stack, 'ImageVault', {
    replica: replica.target,
    objectLock: 'governance',
    objectLockDays: 1,
    provenanceTrail: 'create',
    upstreamCredentialsSecret: secret,
    ...props,
  });
  vault.grantRead(new iam.Role(stack, READER_ROLE, { assumedBy: new iam.AccountRootPrincipal() }));
  return new Deployment(resolveStacks(stacksOf(app)));
}
