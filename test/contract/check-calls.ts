/**
 * Checks the AWS calls a test file recorded (./recorder.ts) against the deployed policies: each call becomes the IAM
 * requests AWS authorizes for it (./sdk-actions.ts), evaluated with the KMS requests the service makes with the
 * caller's permissions (./evaluate.ts), as the function's role, in every deployment the harness models
 * (./deployment.ts: this repository's app and the consumer app under each feature-flag set). One failure lists
 * every distinct denied request, with the call and the test that made it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FLAG_SETS } from '../consumer/support';
import { consumerApp, modelOf, repositoryApp, type Deployment, type DeploymentInput } from './deployment';
import { describeCall, evaluateWithImplied, type Call } from './evaluate';
import type { ResolvedResource } from './resolve';
import type { RecordedCall } from './recorder';
import { iamRequestsOf, parseRegistryPath, type DeployedNames } from './sdk-actions';

/** Loaded once per test file that records calls. */
let deployments: Deployment[] | undefined;

/** Thrown when a recorded call would be denied on AWS. */
export class DeniedCallsError extends Error {
  constructor(lines: string[]) {
    super(
      `${lines.length} AWS request(s) the deployed policies would deny:\n${lines.map((l) => `  - ${l}`).join('\n')}`,
    );
    this.name = 'DeniedCallsError';
  }
}

/**
 * The deployments' synthesized templates, made once per change of what they are made from and kept in the
 * temporary directory: every test file that records calls checks them, and four syntheses take tens of seconds.
 */
export function cachedDeployments(): Deployment[] {
  const root = path.resolve(__dirname, '../..');
  const hash = createHash('sha256');
  const files = [
    ...readdirSync(path.join(root, 'lib/infra')).map((f) => path.join('lib/infra', f)),
    'cdk.json',
    'package-lock.json',
    'test/consumer/app.ts',
    'test/contract/deployment.ts',
    'test/infra/support.ts',
  ].sort();
  for (const f of files) hash.update(f).update(readFileSync(path.join(root, f)));
  const dir = path.join(process.env.IMAGEVAULT_SHARED_TMPDIR ?? tmpdir(), 'imagevault-contract');
  const file = path.join(dir, `deployments-${hash.digest('hex').slice(0, 16)}.json`);
  let inputs: DeploymentInput[];
  if (existsSync(file)) {
    inputs = JSON.parse(readFileSync(file, 'utf8')) as DeploymentInput[];
  } else {
    inputs = [repositoryApp(), ...Object.keys(FLAG_SETS).map((f) => consumerApp(f))];
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify(inputs));
    renameSync(tmp, file);
  }
  return inputs.map(modelOf);
}

const envOf = (fn: ResolvedResource): Record<string, string> =>
  ((fn.properties.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ??
    {}) as Record<string, string>;

/** What a deployment runs each handler as, and the names recorded calls are translated onto. */
export class DeployedFunctions {
  private readonly functions: ResolvedResource[];

  constructor(readonly deployment: Deployment) {
    this.functions = deployment.resources.filter((r) => r.type === 'AWS::Lambda::Function');
  }

  /** The function that runs a handler (its POWERTOOLS_SERVICE_NAME is `imagevault-<handler>`). */
  fn(handler: string): ResolvedResource {
    const fn = this.find(handler);
    if (!fn) throw new Error(`${this.deployment.name}: no function runs the ${handler} handler`);
    return fn;
  }

  private find(handler: string): ResolvedResource | undefined {
    return this.functions.find((f) => envOf(f).POWERTOOLS_SERVICE_NAME === `imagevault-${handler}`);
  }

  env(handler: string): Record<string, string> {
    return envOf(this.fn(handler));
  }

  /** The role a recorded call is made as: the function's, or the role the app gives ImageVault.grantRead. */
  principalOf(call: RecordedCall): string | undefined {
    if (call.principal === 'vault-reader') {
      return this.deployment.resources.find(
        (r) => r.type === 'AWS::IAM::Role' && r.logicalId.startsWith('OnCallRestore'),
      )?.arn;
    }
    // Retention is deployed only with a policy: where there is none, nothing makes its calls.
    if (OPTIONAL_HANDLERS.has(call.principal) && !this.find(call.principal)) return undefined;
    return String(this.fn(call.principal).properties.Role);
  }

  names(): DeployedNames {
    const env = this.env('snapshot');
    const queue = this.deployment.resources.find(
      (r) =>
        r.type === 'AWS::Lambda::EventSourceMapping' && r.properties.FunctionName === this.fn('snapshot').ref,
    );
    const secret = this.env('upstream').UPSTREAM_CREDENTIALS_SECRET;
    return {
      partition: 'aws',
      account: this.deployment.account,
      region: this.fn('snapshot').region,
      vaultBucket: env.VAULT_BUCKET,
      vaultPrefix: env.VAULT_PREFIX ?? '',
      alertTopicArn: env.ALERT_TOPIC_ARN,
      snapshotQueueArn: String(queue?.properties.EventSourceArn),
      ...(secret ? { upstreamSecretArn: secret } : {}),
    };
  }

  /**
   * Whether the handler, deployed here, would make this call at all: entries are locked only where the function
   * has PROVENANCE_LOCK_MODE, the secret is read only where it has one, the reader exists only where the app
   * grants one.
   */
  makes(call: RecordedCall, action: string): boolean {
    if (call.principal === 'vault-reader') return this.principalOf(call) !== undefined;
    const env = this.env(call.principal);
    // The handler acts only on the repositories the deployment protects: a test's repository outside them is
    // ignored there. (A candidate base read from an unprotected ECR repository is skipped too, and would be denied:
    // base detection then logs that it failed.)
    const repository = repositoryOf(call);
    if (repository !== undefined && env.REPOSITORY_PREFIXES !== undefined) {
      const prefixes = env.REPOSITORY_PREFIXES.split(',').map((p) => p.trim());
      if (!prefixes.includes('*') && !prefixes.some((p) => repository.startsWith(p))) return false;
    }
    if (action === 's3:PutObjectRetention' && call.input.ObjectLockMode) return !!env.PROVENANCE_LOCK_MODE;
    // The deletion guard pushes (and asks ECR about tag immutability) only where autoRestoreInUse is on.
    if (call.principal === 'snapshot' && GUARD_RESTORE_ACTIONS.has(action))
      return env.AUTO_RESTORE_IN_USE === 'true';
    if (action === 'secretsmanager:GetSecretValue') return !!env.UPSTREAM_CREDENTIALS_SECRET;
    // The inventory asks only for the clusters it is given.
    if (action === 'eks:DescribeCluster')
      return (env.EKS_CLUSTERS ?? '').split(',').includes(String(call.input.name));
    return true;
  }
}

/** Handlers whose function a deployment may lack: the retention function exists only with a policy. */
const OPTIONAL_HANDLERS = new Set<string>(['retention', 'inventory']);
/** What only the deletion guard's restore asks of ECR, of the snapshot function's calls. */
const GUARD_RESTORE_ACTIONS: ReadonlySet<string> = new Set([
  'ecr:InitiateLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:CompleteLayerUpload',
  'ecr:PutImage',
  'ecr:DescribeRepositories',
]);

/** The ECR repository a call is about, if it is about one. */
function repositoryOf(call: RecordedCall): string | undefined {
  if (call.service === 'ECR registry') return parseRegistryPath(String(call.input.path))?.repository;
  if (call.service === 'ECR' && typeof call.input.repositoryName === 'string')
    return call.input.repositoryName;
  return undefined;
}

/** Evaluates every recorded call in every deployment (or the given ones); throws DeniedCallsError naming the denied. */
export async function checkRecordedCalls(
  calls: readonly RecordedCall[],
  only?: Deployment[],
): Promise<{ requests: number }> {
  const targets = only ?? (deployments ??= cachedDeployments());
  const seen = new Map<string, Promise<string | undefined>>();
  for (const d of targets) {
    const functions = new DeployedFunctions(d);
    const names = functions.names();
    for (const recorded of calls) {
      const principal = functions.principalOf(recorded);
      if (!principal) continue;
      for (const request of iamRequestsOf(recorded, names)) {
        if (!functions.makes(recorded, request.action)) continue;
        const call: Call = { principal, ...request };
        const id = `${d.name} ${JSON.stringify(call)}`;
        if (seen.has(id)) continue;
        seen.set(
          id,
          evaluateWithImplied(d, call).then((decisions) => {
            const denied = decisions.filter((x) => !x.allowed);
            if (denied.length === 0) return undefined;
            return `${recorded.principal}: ${denied.map((x) => describeCall(x.call)).join('; ')} — for ${recorded.service} ${recorded.operation}, in "${recorded.test}", in ${d.name}: ${denied[0].explanation}`;
          }),
        );
      }
    }
  }
  const denied = (await Promise.all(seen.values())).filter((l): l is string => l !== undefined);
  if (denied.length > 0) throw new DeniedCallsError(denied);
  return { requests: seen.size };
}
