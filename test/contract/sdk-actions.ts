/**
 * From a recorded SDK call to the IAM request AWS authorizes: the action, the resource ARN in the test deployment
 * and the request's condition keys. An operation with no entry here fails the harness, so a new call cannot slip by
 * unchecked. Sources: the Service Authorization Reference ("Actions defined by …") of each service; the actions
 * named here are checked against the IAM service reference by ./actions.test.ts.
 */
import type { RecordedCall } from './recorder';

/** The names of the test deployment that recorded calls are translated onto. */
export interface DeployedNames {
  readonly partition: string;
  readonly account: string;
  readonly region: string;
  /** The vault bucket's name and its vault prefix ('' for the whole bucket). */
  readonly vaultBucket: string;
  readonly vaultPrefix: string;
  readonly alertTopicArn: string;
  readonly snapshotQueueArn: string;
  /** The upstream credentials secret, when the deployment has one. */
  readonly upstreamSecretArn?: string;
}

/** One request to authorize, as AWS would see it. */
export interface IamRequest {
  readonly action: string;
  readonly resource: string;
  readonly context: Readonly<Record<string, string | string[]>>;
}

/** Thrown for a recorded operation this table does not know: add it, with its IAM action and resource. */
export class UnmappedCallError extends Error {
  constructor(call: RecordedCall) {
    super(
      `the ${call.principal} function calls ${call.service} ${call.operation} ${JSON.stringify(call.input)}, which test/contract/sdk-actions.ts does not map to an IAM action (test: ${call.test})`,
    );
    this.name = 'UnmappedCallError';
  }
}

/** Top-level names of the vault's key layout: everything before the first of them is the test's own prefix. */
const VAULT_TOP = ['oci-layout', 'index.json', 'blobs', 'imagevault'];

/** A test vault's key (under whatever prefix the test chose) as the same key in the deployed vault. */
export function deployedKey(key: string, names: DeployedNames): string {
  const parts = key.split('/');
  const at = parts.findIndex((p) => VAULT_TOP.includes(p));
  const relative = at < 0 ? '' : parts.slice(at).join('/');
  return names.vaultPrefix ? `${names.vaultPrefix}/${relative}` : relative;
}

const S3_OBJECT: Record<string, (call: RecordedCall) => string[]> = {
  GetObject: (c) => [c.input.VersionId ? 's3:GetObjectVersion' : 's3:GetObject'],
  HeadObject: (c) => [c.input.VersionId ? 's3:GetObjectVersion' : 's3:GetObject'],
  // Object Lock headers on a write need s3:PutObjectRetention as well.
  PutObject: (c) => ['s3:PutObject', ...(c.input.ObjectLockMode ? ['s3:PutObjectRetention'] : [])],
  CreateMultipartUpload: (c) => [
    's3:PutObject',
    ...(c.input.ObjectLockMode ? ['s3:PutObjectRetention'] : []),
  ],
  UploadPart: () => ['s3:PutObject'],
  CompleteMultipartUpload: () => ['s3:PutObject'],
  AbortMultipartUpload: () => ['s3:AbortMultipartUpload'],
  PutObjectRetention: () => ['s3:PutObjectRetention'],
  GetObjectRetention: () => ['s3:GetObjectRetention'],
  DeleteObject: (c) => [c.input.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject'],
};

const S3_BUCKET: Record<string, string> = {
  ListObjectsV2: 's3:ListBucket',
  ListObjects: 's3:ListBucket',
  ListObjectVersions: 's3:ListBucketVersions',
  ListMultipartUploads: 's3:ListBucketMultipartUploads',
  GetBucketVersioning: 's3:GetBucketVersioning',
};

/** ECR operations authorized on the repository named in the input. */
const ECR_REPOSITORY: Record<string, string> = {
  DescribeImages: 'ecr:DescribeImages',
  DescribeImageScanFindings: 'ecr:DescribeImageScanFindings',
  BatchGetImage: 'ecr:BatchGetImage',
  ListImages: 'ecr:ListImages',
  PutImage: 'ecr:PutImage',
  BatchDeleteImage: 'ecr:BatchDeleteImage',
  CreateRepository: 'ecr:CreateRepository',
  DeleteRepository: 'ecr:DeleteRepository',
};

/** The IAM requests one recorded call makes (before the KMS calls AWS makes on its behalf). */
export function iamRequestsOf(call: RecordedCall, names: DeployedNames): IamRequest[] {
  const { partition, account, region } = names;
  // Every call of the SDK is over TLS: the buckets', queues' and topic's enforceSSL denies only plain HTTP.
  const base = { 'aws:SecureTransport': 'true' };
  const input = call.input;
  switch (call.service) {
    case 'S3': {
      const object = S3_OBJECT[call.operation];
      if (object) {
        const resource = `arn:${partition}:s3:::${names.vaultBucket}/${deployedKey(String(input.Key), names)}`;
        return object(call).map((action) => ({ action, resource, context: base }));
      }
      const bucket = S3_BUCKET[call.operation];
      if (bucket) {
        const prefix = input.Prefix === undefined ? undefined : deployedKey(String(input.Prefix), names);
        return [
          {
            action: bucket,
            resource: `arn:${partition}:s3:::${names.vaultBucket}`,
            context: { ...base, ...(prefix !== undefined && { 's3:prefix': prefix }) },
          },
        ];
      }
      break;
    }
    case 'SNS':
      if (call.operation === 'Publish') {
        return [{ action: 'sns:Publish', resource: names.alertTopicArn, context: base }];
      }
      break;
    case 'SQS':
      if (call.operation === 'SendMessage' || call.operation === 'SendMessageBatch') {
        return [{ action: 'sqs:SendMessage', resource: names.snapshotQueueArn, context: base }];
      }
      break;
    case 'Secrets Manager':
      if (call.operation === 'GetSecretValue') {
        // The handler is given the deployed secret's ARN; the test's own secret id stands for it.
        const resource =
          names.upstreamSecretArn ??
          `arn:${partition}:secretsmanager:${region}:${account}:secret:none-000000`;
        return [{ action: 'secretsmanager:GetSecretValue', resource, context: base }];
      }
      break;
    case 'ECR': {
      if (call.operation === 'GetAuthorizationToken') {
        return [{ action: 'ecr:GetAuthorizationToken', resource: '*', context: base }];
      }
      if (call.operation === 'DescribeRepositories') {
        const repos = (input.repositoryNames as string[] | undefined) ?? [];
        // Without names it lists every repository, which ECR authorizes on "*" (an AWS fact the evaluator cannot
        // check). The evaluator takes concrete ARNs only: a repository no protected prefix covers stands for "any",
        // so a policy that scopes the listing to some repositories fails here as it would on AWS.
        const resources = (repos.length === 0 ? ['imagevault-contract/any-repository'] : repos).map(
          (r) => `arn:${partition}:ecr:${region}:${account}:repository/${r}`,
        );
        return resources.map((resource) => ({ action: 'ecr:DescribeRepositories', resource, context: base }));
      }
      const action = ECR_REPOSITORY[call.operation];
      if (action) {
        const resource = `arn:${partition}:ecr:${region}:${account}:repository/${String(input.repositoryName)}`;
        return [{ action, resource, context: base }];
      }
      break;
    }
  }
  switch (call.service) {
    // Listings without a resource of their own are authorized on "*" (the IAM reference lists no resource type for
    // ListClusters and ListFunctions; for ListTasks see test/contract/README.md).
    case 'ECS':
      if (call.operation === 'ListClusters')
        return [{ action: 'ecs:ListClusters', resource: '*', context: base }];
      if (call.operation === 'ListTasks') {
        // Its resource type is the container instance; without one given, it stands for "any in the cluster" (as
        // DescribeRepositories does above), so a policy scoped to some instances fails here as it would on AWS.
        const cluster = String(input.cluster ?? 'default')
          .split('/')
          .pop();
        return [
          {
            action: 'ecs:ListTasks',
            resource: `arn:${partition}:ecs:${region}:${account}:container-instance/${cluster}/any-instance`,
            context: base,
          },
        ];
      }
      if (call.operation === 'DescribeTasks') {
        // A test's task ARNs, moved into the deployment's account and region.
        return ((input.tasks as string[] | undefined) ?? []).map((arn) => ({
          action: 'ecs:DescribeTasks',
          resource: `arn:${partition}:ecs:${region}:${account}:task/${arn.slice(arn.indexOf(':task/') + 6)}`,
          context: base,
        }));
      }
      break;
    case 'Lambda':
      if (call.operation === 'ListFunctions')
        return [{ action: 'lambda:ListFunctions', resource: '*', context: base }];
      if (call.operation === 'GetFunction') {
        const qualifier = input.Qualifier ? `:${String(input.Qualifier)}` : '';
        return [
          {
            action: 'lambda:GetFunction',
            resource: `arn:${partition}:lambda:${region}:${account}:function:${String(input.FunctionName)}${qualifier}`,
            context: base,
          },
        ];
      }
      break;
    case 'EKS':
      if (call.operation === 'DescribeCluster')
        return [
          {
            action: 'eks:DescribeCluster',
            resource: `arn:${partition}:eks:${region}:${account}:cluster/${String(input.name)}`,
            context: base,
          },
        ];
      break;
  }
  if (call.service === 'ECR registry') {
    // The ping: ECR answers it for any caller with a token (GetAuthorizationToken is checked when it is fetched).
    if (input.path === '/v2/' || input.path === '/v2') return [];
    const found = registryAction(call.operation, String(input.path));
    if (found) {
      const resource = `arn:${partition}:ecr:${region}:${account}:repository/${found.repository}`;
      return [{ action: found.action, resource, context: base }];
    }
  }
  throw new UnmappedCallError(call);
}

/** A distribution API path: the repository, the kind of endpoint and what follows it. */
export function parseRegistryPath(
  path: string,
): { repository: string; kind: string; rest: string } | undefined {
  const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/?(.*)$/.exec(path);
  return m ? { repository: m[1], kind: m[2], rest: m[3] } : undefined;
}

/**
 * A distribution API request to ECR as the IAM action it needs (ECR's "Required IAM permissions" for pulling and
 * pushing through the Docker Registry HTTP API). `/v2/` alone (the ping) needs none but the token's.
 */
function registryAction(method: string, path: string): { action: string; repository: string } | undefined {
  const parsed = parseRegistryPath(path);
  if (!parsed) return undefined;
  const { repository, kind, rest } = parsed;
  const read = method === 'GET' || method === 'HEAD';
  let action: string | undefined;
  if (kind === 'manifests')
    action = read ? 'ecr:BatchGetImage' : method === 'PUT' ? 'ecr:PutImage' : undefined;
  else if (kind === 'blobs' && rest.startsWith('uploads'))
    action =
      method === 'POST'
        ? 'ecr:InitiateLayerUpload'
        : method === 'PATCH'
          ? 'ecr:UploadLayerPart'
          : 'ecr:CompleteLayerUpload';
  else if (kind === 'blobs')
    action = method === 'HEAD' ? 'ecr:BatchCheckLayerAvailability' : 'ecr:GetDownloadUrlForLayer';
  else if (kind === 'tags') action = 'ecr:ListImages';
  else if (kind === 'referrers') action = 'ecr:BatchGetImage';
  return action ? { action, repository } : undefined;
}
