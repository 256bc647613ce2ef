/**
 * Records the AWS API calls the Lambda handlers (and the CLI's AWS paths) make while the tests run, so that each can
 * be checked against the deployed IAM policies: a mocked control plane says yes to everything, and radosgw
 * authorizes nothing, so neither would notice a missing permission.
 *
 * A call is recorded only inside a principal's context: the handler factories are wrapped (./setup.ts) so that every
 * invocation runs as the function whose role it has on AWS. Calls a test makes itself (creating buckets, reading
 * the vault to assert on it) are outside any context and not recorded.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { HandlerName } from '../../lib/infra/entries';

/**
 * Who makes a call on AWS: a Lambda function, by its handler's name (its role), or `vault-reader`, a role given
 * `ImageVault.grantRead` (the on-call role that runs the CLI's restore and provenance verify against the vault).
 */
export type Principal = HandlerName | 'vault-reader';

/** One SDK call, as the client was asked to send it. */
export interface RecordedCall {
  readonly principal: Principal;
  /**
   * The client's service id: `S3`, `SNS`, `SQS`, `ECR`, `Secrets Manager`, `ECS`, `Lambda`, `EKS`; `ECR registry` for
   * the data plane.
   */
  readonly service: string;
  /** The operation: the command's class name without `Command` (`PutObject`). */
  readonly operation: string;
  /** The command's input (only the fields the IAM mapping reads are kept). */
  readonly input: Readonly<Record<string, unknown>>;
  /** The test that made it, for messages. */
  readonly test: string;
}

const context = new AsyncLocalStorage<Principal>();
const calls: RecordedCall[] = [];

/** Runs `fn` as `principal`: the AWS calls it makes (and what it starts) are recorded as that principal's. */
export function asPrincipal<T>(principal: Principal, fn: () => T): T {
  return context.run(principal, fn);
}

/** The fields of an input that decide the IAM action, resource and conditions. */
const KEPT_INPUT = [
  'Bucket',
  'Key',
  'Prefix',
  'VersionId',
  'ObjectLockMode',
  'ObjectLockRetainUntilDate',
  'Retention',
  'ServerSideEncryption',
  'SSEKMSKeyId',
  'CopySource',
  'UploadId',
  'TopicArn',
  'QueueUrl',
  'SecretId',
  'repositoryName',
  'registryId',
  'repositoryNames',
  'imageId',
  'filter',
  'path',
  'cluster',
  'tasks',
  'FunctionName',
  'Qualifier',
  'name',
];

/**
 * Called when a command of an SDK client module is created (./setup.ts wraps the modules' command classes). The
 * command, rather than the client's `send`, is where a call is seen: a client mocked with aws-sdk-client-mock never
 * runs its own `send`, and the mock replaces its stub on every reset.
 */
export function record(service: string, name: string, input: Record<string, unknown> = {}): void {
  const principal = context.getStore();
  if (!principal) return;
  // Only the snapshot function's registry is ECR (the test bed's registry stands in for it). The upstream check
  // asks upstream registries (Docker Hub and the like), and the reader's restore pushes into the on-call engineer's
  // own registry with their own credentials: no deployed policy authorizes those.
  if (service === 'ECR registry' && principal !== 'snapshot') return;
  const kept: Record<string, unknown> = {};
  for (const k of KEPT_INPUT) if (input[k] !== undefined) kept[k] = input[k];
  calls.push({
    principal,
    service,
    operation: name.replace(/Command$/, ''),
    input: kept,
    test: expect.getState().currentTestName ?? '(outside a test)',
  });
}

/** The calls recorded so far in this test file. */
export function recordedCalls(): readonly RecordedCall[] {
  return calls;
}
