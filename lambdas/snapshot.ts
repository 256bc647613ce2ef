/**
 * The snapshot function: SQS (ECR image events and reconcile's) → vault. Thin: the event is validated and each
 * record handed by lib/aws/handlers/snapshot to lib/services/snapshot-events; failures come back as batchItemFailures.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, ALERT_TOPIC_ARN, REPOSITORY_PREFIXES, MAX_RECEIVE_COUNT,
 * METRICS_PER_REPOSITORY, CANDIDATE_BASES, UPSTREAM_CREDENTIALS_SECRET, PROVENANCE_LOCK_MODE, PROVENANCE_LOCK_DAYS,
 * IMAGEVAULT_TIMEOUT, IMAGEVAULT_IDLE_TIMEOUT, AUTO_RESTORE_IN_USE (see ./config), POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
 * The two timeouts (seconds; unset: 300 and 60) bound every registry and S3 request, as the CLI's do.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { Inventory } from '../lib/content/inventory';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { ecrCredentials } from '../lib/aws/ecr-auth';
import { EcrRepositories } from '../lib/aws/ecr-repositories';
import { secretsManagerCredentials } from '../lib/aws/secrets-credentials';
import { SnsAlertPublisher } from '../lib/aws/sns-alerts';
import { Registries } from '../lib/registry';
import { createSnapshotHandler } from '../lib/aws/handlers/snapshot';
import { DeletionGuard } from '../lib/services/deletion-guard';
import { snapshotConfig } from './config';

const config = snapshotConfig();
const logger = new Logger();
const metrics = new Metrics();
// Module scope: reused by every invocation of this execution environment (tokens cached until 5 min before expiry).
// There is no docker config in Lambda: a host that is not ECR (a candidate base on Docker Hub, read by base
// detection) gets the upstream credentials secret's login when there is one, so it is not pulled anonymously from
// Lambda's shared addresses (rate limits); otherwise it is asked anonymously.
const credentials = ecrCredentials({
  fallback: config.credentialsSecret
    ? secretsManagerCredentials({ secretId: config.credentialsSecret, client: new SecretsManagerClient({}) })
    : async () => undefined,
});

const vault = new Vault(
  new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
);
const publisher = new SnsAlertPublisher(new SNSClient({}), config.alertTopicArn);

export const handler = createSnapshotHandler({
  vault,
  // One set of clients per execution environment: connections and tokens are reused across invocations.
  registries: new Registries({ credentials, ...config.timeouts }),
  publisher,
  // A deleted image that still runs: alerted, and pushed back from the vault when AUTO_RESTORE_IN_USE is on.
  guard: new DeletionGuard({
    vault,
    inUse: new Inventory(vault.store),
    publisher,
    autoRestore: config.autoRestoreInUse,
    ...(config.autoRestoreInUse && { repositories: new EcrRepositories() }),
  }),
  logger,
  metrics,
  repositories: config.repositories,
  maxReceiveCount: config.maxReceiveCount,
  metricsPerRepository: config.metricsPerRepository,
  candidates: config.candidates,
  provenanceRetention: config.provenanceRetention,
});
