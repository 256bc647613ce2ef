/**
 * Checks the AWS calls a test file recorded (./recorder.ts) against the deployed policies: each call becomes the IAM
 * requests AWS authorizes for it (./sdk-actions.ts) plus the KMS requests the service makes with the caller's
 * permissions (SSE-KMS objects, encrypted queues and topics), each evaluated as the function's role
 * (./deployed-policies.ts). One failure lists every distinct denied request, with the call and test that made it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { HandlerName } from '../../lib/infra/entries';
import { App } from 'aws-cdk-lib';
import { FLAG_SETS } from '../consumer/support';
import { Deployment, testDeployment, type ContractRequest } from './deployed-policies';
import type { RecordedCall } from './recorder';
import { iamRequestsOf, type DeployedNames, type IamRequest } from './sdk-actions';

/** Per feature-flag set, loaded once per test file that records calls. */
let deployments: Array<[string, Deployment]> | undefined;

/**
 * The test deployment, synthesized once per change of what it is made from and kept in the temporary directory:
 * every test file that records calls checks them against it, and a synthesis takes seconds.
 */
export function cachedTestDeployment(flagSet: string): Deployment {
  const root = path.resolve(__dirname, '../..');
  const hash = createHash('sha256');
  const files = [
    ...readdirSync(path.join(root, 'lib/infra')).map((f) => path.join('lib/infra', f)),
    'cdk.json',
    'package-lock.json',
    'test/contract/deployed-policies.ts',
    'test/contract/resolve-templates.ts',
  ].sort();
  hash.update(flagSet);
  for (const f of files) hash.update(f).update(readFileSync(path.join(root, f)));
  const dir = path.join(tmpdir(), 'imagevault-contract');
  const file = path.join(dir, `deployment-${hash.digest('hex').slice(0, 16)}.json`);
  if (existsSync(file))
    return new Deployment(JSON.parse(readFileSync(file, 'utf8')) as Deployment['resources']);
  const fresh = testDeployment({}, new App({ context: FLAG_SETS[flagSet] }));
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(fresh.resources));
  renameSync(tmp, file);
  return fresh;
}

/** Thrown when a recorded call would be denied on AWS. */
export class DeniedCallsError extends Error {
  constructor(lines: string[]) {
    super(
      `${lines.length} AWS request(s) the deployed policies would deny:\n${lines.map((l) => `  - ${l}`).join('\n')}`,
    );
    this.name = 'DeniedCallsError';
  }
}

/** The KMS requests a service makes with the caller's credentials for one request on an encrypted resource. */
export function impliedKmsRequests(
  call: RecordedCall,
  request: IamRequest,
  d: Deployment,
  names: DeployedNames,
): IamRequest[] {
  const key = d.keyOf(request.resource);
  if (!key) return [];
  const via = (service: string) => ({ 'kms:ViaService': `${service}.${names.region}.amazonaws.com` });
  const kmsActions: Record<string, string[]> = {
    // S3 with SSE-KMS: a write needs a data key; a read, and a multipart upload (its parts are decrypted to be
    // combined), decrypt. HEAD decrypts nothing.
    'S3:PutObject': ['kms:GenerateDataKey'],
    'S3:CreateMultipartUpload': ['kms:GenerateDataKey', 'kms:Decrypt'],
    'S3:UploadPart': ['kms:GenerateDataKey', 'kms:Decrypt'],
    'S3:GetObject': ['kms:Decrypt'],
    // SQS and SNS: the sender needs a data key and (to reuse one) Decrypt.
    'SQS:SendMessage': ['kms:GenerateDataKey', 'kms:Decrypt'],
    'SQS:SendMessageBatch': ['kms:GenerateDataKey', 'kms:Decrypt'],
    'SNS:Publish': ['kms:GenerateDataKey', 'kms:Decrypt'],
  };
  const service = { S3: 's3', SQS: 'sqs', SNS: 'sns' }[call.service];
  const actions = kmsActions[`${call.service}:${call.operation}`] ?? [];
  if (!service || request.action === 's3:PutObjectRetention') return [];
  return actions.map((action) => ({
    action,
    resource: key,
    context: { ...via(service), 'kms:CallerAccount': names.account },
  }));
}

/** The principal a recorded call is made as: the function's role, or a role given ImageVault.grantRead. */
function principalOf(call: RecordedCall, d: Deployment): string {
  if (call.principal === 'vault-reader') return d.readerRoleArn();
  return d.roleOf(call.principal as HandlerName);
}

/** Evaluates every recorded call; throws DeniedCallsError listing the denied ones. */
export async function checkRecordedCalls(
  calls: readonly RecordedCall[],
  only?: Deployment,
): Promise<{ requests: number }> {
  // The constructs must hold whatever feature flags the app that uses them has (issue 10): every call is checked
  // against the deployment synthesized under each set.
  const targets: Array<[string, Deployment]> = only
    ? [['given', only]]
    : (deployments ??= Object.keys(FLAG_SETS).map((f) => [f, cachedTestDeployment(f)]));
  const seen = new Map<string, Promise<string | undefined>>();
  for (const [flags, d] of targets) {
    const names = d.names();
    for (const call of calls) {
      const principal = principalOf(call, d);
      for (const request of iamRequestsOf(call, names)) {
        for (const r of [request, ...impliedKmsRequests(call, request, d, names)]) {
          const full: ContractRequest = { principal, ...r };
          const id = `${flags} ${JSON.stringify(full)}`;
          if (seen.has(id)) continue;
          seen.set(
            id,
            d
              .evaluate(full)
              .then((v) =>
                v.allowed
                  ? undefined
                  : `${call.principal} (${principal}): ${r.action} on ${r.resource} — for ${call.service} ${call.operation}, in "${call.test}"${only ? '' : `, with ${flags}`}: ${v.explanation}`,
              ),
          );
        }
      }
    }
  }
  const denied = (await Promise.all(seen.values())).filter((l): l is string => l !== undefined);
  if (denied.length > 0) throw new DeniedCallsError(denied);
  return { requests: seen.size };
}
