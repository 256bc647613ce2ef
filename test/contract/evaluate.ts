import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { Deployment, NamedPolicy, PolicyDocument, Statement } from './deployment';

/**
 * One request to AWS: who (a role ARN of the deployment, or a service principal such as
 * `cloudwatch.amazonaws.com`), which action, on which concrete resource ARN, with which request context (e.g.
 * `aws:SourceArn`, `kms:ViaService`). `aws:SecureTransport` is `true` unless the context says otherwise: AWS SDKs
 * and services call over TLS.
 */
export interface Call {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string | string[]>;
  /** Why this call happens, e.g. `implied by sqs:SendMessage on <queue>`; part of the explanation. */
  readonly because?: string;
}

/** AWS's answer to a call, as the evaluator works it out. */
export interface Decision {
  readonly call: Call;
  readonly allowed: boolean;
  /** `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied`, or `Error` when the request itself is invalid. */
  readonly result: string;
  /** One line: the call, the decision, and the statements (by policy) that decided it. */
  readonly explanation: string;
}

const isService = (principal: string) => principal.endsWith('.amazonaws.com');

/** The short form of a call for messages: `sqs:SendMessage on <arn> as <principal>`. */
export function describeCall(call: Call): string {
  const ctx = Object.entries(call.context ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`)
    .join(', ');
  return `${call.action} on ${call.resource} as ${call.principal}${ctx ? ` [${ctx}]` : ''}`;
}

/** The ARN whose policy governs a resource: the bucket of an object, the function of a version, the key itself. */
export function policyHolderOf(resource: string): string {
  const s3 = /^arn:aws[a-z-]*:s3:::([^/]+)/.exec(resource);
  if (s3) return `arn:aws:s3:::${s3[1]}`;
  const fn = /^(arn:aws[a-z-]*:lambda:[^:]+:\d+:function:[^:]+)(:.*)?$/.exec(resource);
  if (fn) return fn[1];
  return resource;
}

function merge(policies: readonly NamedPolicy[]): {
  document?: PolicyDocument;
  sourceOf: (s: unknown) => string;
} {
  if (policies.length === 0) return { sourceOf: () => '?' };
  const sources = new Map<string, string>();
  const statements: Statement[] = [];
  for (const p of policies)
    for (const s of p.document.Statement) {
      statements.push(s);
      sources.set(JSON.stringify(s), p.source);
    }
  return {
    document: { Version: '2012-10-17', Statement: statements },
    sourceOf: (s) => sources.get(JSON.stringify(s)) ?? '?',
  };
}

interface Analysis {
  allowStatements?: Array<{ policyId?: string; statement: unknown }>;
  denyStatements?: Array<{ policyId?: string; statement: unknown }>;
  result?: string;
}

/**
 * Evaluates one call against the deployment as AWS would, with iam-simulate: the principal's identity policies (a
 * role's inline and attached policies; none for a service principal), the resource's policy (bucket, queue,
 * topic, secret, key, function permissions, role trust) and, for KMS, the key policy with its rule that IAM
 * policies count only where the key policy lets the account delegate. Same account: an Allow in either the
 * identity or the resource policy suffices (KMS: see above), an explicit Deny anywhere wins.
 */
export async function evaluate(deployment: Deployment, call: Call): Promise<Decision> {
  const principal = call.principal;
  const role = isService(principal) ? undefined : deployment.roles.get(principal);
  if (!isService(principal) && !role)
    return decision(call, 'Error', `the principal ${principal} is no role of the deployment`);
  const holder = policyHolderOf(call.resource);
  const resourcePolicies = deployment.resourcePolicies.get(holder) ?? [];
  if (call.action.startsWith('kms:') && resourcePolicies.length === 0)
    return decision(call, 'Error', `the key ${holder} is unknown to the deployment (no key policy)`);
  const resource = merge(resourcePolicies);
  const identity = role?.policies ?? [];
  const context: Record<string, string | string[]> = {
    'aws:SecureTransport': 'true',
    ...(role ? { 'aws:PrincipalArn': role.arn, 'aws:PrincipalAccount': deployment.account } : {}),
    ...(isService(principal) ? { 'aws:PrincipalServiceName': principal } : {}),
    ...call.context,
  };
  const simulation: Simulation = {
    request: {
      principal,
      action: call.action,
      resource: { resource: call.resource, accountId: deployment.account },
      contextVariables: context,
    },
    identityPolicies: identity.map((p) => ({ name: p.source, policy: p.document })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(resource.document ? { resourcePolicy: resource.document } : {}),
  };
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error')
    return decision(
      call,
      'Error',
      `the request is invalid: ${response.errors.message} ${JSON.stringify(response.errors)}`,
    );
  if (response.resultType !== 'single')
    return decision(call, 'Error', `the resource ${call.resource} is a pattern; evaluate concrete ARNs only`);
  const analysis = response.result.analysis as {
    result: string;
    identityAnalysis?: Analysis;
    resourceAnalysis?: Analysis;
  };
  const result = response.overallResult;
  const named = (
    a: Analysis | undefined,
    kind: 'allowStatements' | 'denyStatements',
    sourceOf: (s: unknown) => string,
  ) =>
    (a?.[kind] ?? []).map((s) => {
      const st = s.statement as Statement;
      return `${st.Sid ? `${st.Sid} in ` : ''}${sourceOf(st)}`;
    });
  const identitySource = (s: unknown) =>
    identity.find((p) => p.document.Statement.some((x) => JSON.stringify(x) === JSON.stringify(s)))?.source ??
    '?';
  const allows = [
    ...named(analysis.identityAnalysis, 'allowStatements', identitySource),
    ...named(analysis.resourceAnalysis, 'allowStatements', resource.sourceOf),
  ];
  const denies = [
    ...named(analysis.identityAnalysis, 'denyStatements', identitySource),
    ...named(analysis.resourceAnalysis, 'denyStatements', resource.sourceOf),
  ];
  let why: string;
  if (result === 'Allowed') why = `allowed by ${allows.join('; ')}`;
  else if (result === 'ExplicitlyDenied') why = `explicitly denied by ${denies.join('; ')}`;
  else {
    const parts = [
      role
        ? `no identity policy of ${role.resource.logicalId} allows it`
        : `a service principal has no identity policies`,
      resourcePolicies.length > 0
        ? `no statement of the resource policy (${[...new Set(resourcePolicies.map((p) => p.source))].join(', ')}) allows it`
        : `${holder} has no resource policy`,
      ...(call.action.startsWith('kms:')
        ? [
            'a key policy must allow it itself, or let the account root delegate it to an identity policy that does',
          ]
        : []),
    ];
    if (allows.length > 0) parts.push(`statements that matched but did not suffice: ${allows.join('; ')}`);
    if (role && role.managedPolicyArns.length > 0)
      parts.push(`managed policies not evaluated: ${role.managedPolicyArns.join(', ')}`);
    why = parts.join('; ');
  }
  return decision(call, result, why);
}

function decision(call: Call, result: string, why: string): Decision {
  const allowed = result === 'Allowed';
  return {
    call,
    allowed,
    result,
    explanation: `${allowed ? 'ALLOWED' : `DENIED (${result})`}: ${describeCall(call)}${call.because ? ` (${call.because})` : ''}: ${why}`,
  };
}

/** S3 actions that write an object (SSE-KMS: a data key is generated) and that read one (decrypted). */
const S3_WRITES = new Set(['s3:PutObject']);
/** Multipart uploads need both: the parts are encrypted with a data key that later parts decrypt. */
const S3_MULTIPART = new Set(['s3:CreateMultipartUpload', 's3:UploadPart', 's3:CompleteMultipartUpload']);
const S3_READS = new Set(['s3:GetObject', 's3:GetObjectVersion']);

/**
 * The KMS calls a service makes with the caller's permissions when the resource is encrypted with a customer
 * managed key, each with `kms:ViaService` = `<service>.<region>.amazonaws.com` and `kms:CallerAccount`; a service
 * principal's calls keep its `aws:SourceArn`/`aws:SourceAccount`. From the AWS developer guides of S3 (SSE-KMS),
 * SQS (SSE), SNS (SSE) and Secrets Manager:
 * - S3: PutObject → kms:GenerateDataKey; multipart upload → kms:GenerateDataKey and kms:Decrypt; GetObject →
 *   kms:Decrypt.
 * - SQS: SendMessage → kms:GenerateDataKey and kms:Decrypt; ReceiveMessage → kms:Decrypt.
 * - SNS: Publish → kms:GenerateDataKey and kms:Decrypt.
 * - Secrets Manager: GetSecretValue → kms:Decrypt.
 * Keys managed by AWS (`aws/s3`) need no grant and produce no call.
 */
export function impliedKmsCalls(deployment: Deployment, call: Call): Call[] {
  const holder = call.action.startsWith('s3:') ? policyHolderOf(call.resource) : call.resource;
  const key = deployment.encryption.get(holder);
  if (!key || !key.startsWith('arn:')) return [];
  const service = call.action.split(':')[0];
  const actions: string[] = (() => {
    switch (service) {
      case 's3':
        if (S3_WRITES.has(call.action)) return ['kms:GenerateDataKey'];
        if (S3_MULTIPART.has(call.action)) return ['kms:GenerateDataKey', 'kms:Decrypt'];
        if (S3_READS.has(call.action)) return ['kms:Decrypt'];
        return [];
      case 'sqs':
        if (call.action === 'sqs:SendMessage') return ['kms:GenerateDataKey', 'kms:Decrypt'];
        if (call.action === 'sqs:ReceiveMessage') return ['kms:Decrypt'];
        return [];
      case 'sns':
        return call.action === 'sns:Publish' ? ['kms:GenerateDataKey', 'kms:Decrypt'] : [];
      case 'secretsmanager':
        return call.action === 'secretsmanager:GetSecretValue' ? ['kms:Decrypt'] : [];
      default:
        return [];
    }
  })();
  const region = regionOf(deployment, holder);
  const serviceContext = isService(call.principal)
    ? Object.fromEntries(
        Object.entries(call.context ?? {}).filter(
          ([k]) => k === 'aws:SourceArn' || k === 'aws:SourceAccount',
        ),
      )
    : {};
  return actions.map((action) => ({
    principal: call.principal,
    action,
    resource: key,
    context: {
      ...serviceContext,
      'kms:ViaService': `${service}.${region}.amazonaws.com`,
      'kms:CallerAccount': deployment.account,
    },
    because: `implied by ${call.action} on ${call.resource}`,
  }));
}

/** The region of a resource of the deployment, from its ARN or (for buckets) its stack. */
function regionOf(deployment: Deployment, arn: string): string {
  const fromArn = arn.split(':')[3];
  if (fromArn) return fromArn;
  const r = deployment.byArn.get(arn);
  if (!r) throw new Error(`cannot tell the region of ${arn}`);
  return r.region;
}

/** Evaluates a call and the KMS calls it implies: all must be allowed. */
export async function evaluateWithImplied(deployment: Deployment, call: Call): Promise<Decision[]> {
  return Promise.all([call, ...impliedKmsCalls(deployment, call)].map((c) => evaluate(deployment, c)));
}
