/**
 * The upstream function: on a schedule (EventBridge), checks every upstream base tag the vault's images are built
 * on (one HEAD per tag when unchanged) and publishes an `upstream-moved` alert once per old → new transition. The
 * work is lib/services/upstream-check; this wires the real clients. Returns the check summary.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, ALERT_TOPIC_ARN, UPSTREAM_CREDENTIALS_SECRET (optional: anonymous
 * without it), ECR_REGISTRY (optional: derived from the function ARN), IMAGEVAULT_TIMEOUT, IMAGEVAULT_IDLE_TIMEOUT
 * (optional, seconds; unset: 300 and 60: every registry and S3 request, as the CLI's), NEWER_VERSIONS and
 * NEWER_VERSIONS_DIGEST_DAYS (optional: the newer-versions watch and its weekly digest) (see ./config),
 * POWERTOOLS_SERVICE_NAME.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { secretsManagerCredentials } from '../lib/aws/secrets-credentials';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { SnsAlertPublisher } from '../lib/aws/sns-alerts';
import { createUpstreamCheckHandler } from '../lib/aws/handlers/upstream';
import { upstreamConfig } from './config';

const config = upstreamConfig();
const logger = new Logger();

// Module scope: the secret is read once per 15 minutes per execution environment, not on every run.
const credentials = config.credentialsSecret
  ? secretsManagerCredentials({ secretId: config.credentialsSecret, client: new SecretsManagerClient({}) })
  : async () => undefined;

export const handler = createUpstreamCheckHandler({
  vault: new Vault(
    new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
  ),
  publisher: new SnsAlertPublisher(new SNSClient({}), config.alertTopicArn),
  store: `s3://${config.vaultBucket}${config.vaultPrefix ? `/${config.vaultPrefix}` : ''}`,
  credentials,
  timeouts: config.timeouts,
  registry: config.ecrRegistry,
  versionRules: config.versionRules,
  digestDays: config.digestDays,
  logger,
});
