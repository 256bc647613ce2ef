import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { Alerts } from './alerts';
import { handlerCode, type HandlerName } from './entries';
import type { VaultBucket } from './vault-bucket';
import { VAULT_DEFAULTS } from './vault-defaults';

/** What differs between the Lambdas of a vault; runtime, architecture, code and handler are the same for all. */
export type VaultFunctionOptions = Pick<
  lambda.FunctionProps,
  | 'memorySize'
  | 'timeout'
  | 'description'
  | 'environment'
  | 'retryAttempts'
  | 'deadLetterQueue'
  | 'reservedConcurrentExecutions'
> & {
  /** The handler: `dist/lambdas/<entry>` of the package. */
  readonly entry: HandlerName;
};

/**
 * A Node.js handler with its own role and log group (no managed policies), its code the prebundled
 * `dist/lambdas/<entry>` of the package (see lib/infra/entries.ts): `<id>Logs`, `<id>Role` and `<id>Function` in
 * `scope`.
 */
export function vaultFunction(scope: Construct, id: string, options: VaultFunctionOptions): lambda.Function {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: VAULT_DEFAULTS.logRetention });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `imagevault ${id.toLowerCase()} Lambda`,
  });
  logGroup.grantWrite(role);
  const { entry, ...props } = options;
  return new lambda.Function(scope, `${id}Function`, {
    ...props,
    code: lambda.Code.fromAsset(handlerCode(entry)),
    handler: 'index.handler',
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    role,
    logGroup,
  });
}

/** The environment variable that names the upstream credentials secret, when there is one. */
export function upstreamCredentialsEnvironment(secret?: secretsmanager.ISecret): Record<string, string> {
  return secret ? { UPSTREAM_CREDENTIALS_SECRET: secret.secretArn } : {};
}

/**
 * GetSecretValue on the upstream credentials secret only (and kms:Decrypt through Secrets Manager when it has its
 * own key); nothing without a secret.
 */
export function grantUpstreamCredentials(role: iam.IRole, secret?: secretsmanager.ISecret): void {
  if (!secret) return;
  secret.grantRead(role);
  // Secrets Manager decrypts with the reader's permissions. The secret's grantRead puts kms:Decrypt only into the
  // key's policy, which an imported key does not let CDK change (the grant was silently lost): grant it to the role.
  if (secret.encryptionKey)
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [secret.encryptionKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(role).region}.amazonaws.com` },
        },
      }),
    );
}

/** The environment of the snapshot and reconcile Lambdas: the vault, the alert topic, the protected repositories. */
export function vaultEnvironment(
  vault: VaultBucket,
  alerts: Alerts,
  repositories: readonly string[],
): Record<string, string> {
  return {
    VAULT_BUCKET: vault.bucket.bucketName,
    VAULT_PREFIX: vault.vaultPrefix,
    ALERT_TOPIC_ARN: alerts.topic.topicArn,
    REPOSITORY_PREFIXES: repositories.join(','),
    POWERTOOLS_METRICS_NAMESPACE: 'imagevault',
    // Stack traces through the bundle's source map, to lines of the TypeScript sources.
    NODE_OPTIONS: '--enable-source-maps',
  };
}
