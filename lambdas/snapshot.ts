/**
 * The snapshot function: SQS (ECR image events and reconcile's) → vault. Thin: the event is validated and each
 * record processed by lib/services/snapshot-events; failures come back as batchItemFailures.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, ALERT_TOPIC_ARN, REPOSITORY_PREFIXES, MAX_RECEIVE_COUNT,
 * METRICS_PER_REPOSITORY, CANDIDATE_BASES, PROVENANCE_LOCK_MODE, PROVENANCE_LOCK_DAYS (see ./config), POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { ecrCredentials } from '../lib/aws/ecr-auth';
import { SnsAlertPublisher } from '../lib/services/alerts';
import { Registries } from '../lib/services/registries';
import { createSnapshotHandler } from '../lib/services/snapshot-events';
import { snapshotConfig } from './config';

const config = snapshotConfig();
const logger = new Logger();
const metrics = new Metrics();
// Module scope: reused by every invocation of this execution environment (tokens cached until 5 min before expiry).
// There is no docker config in Lambda; a non-ECR host is pulled anonymously.
const credentials = ecrCredentials({ fallback: async () => undefined });

export const handler = createSnapshotHandler({
  vault: new Vault(new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix })),
  // One set of clients per execution environment: connections and tokens are reused across invocations.
  registries: new Registries({ credentials }),
  publisher: new SnsAlertPublisher(new SNSClient({}), config.alertTopicArn),
  logger,
  metrics,
  repositories: config.repositories,
  maxReceiveCount: config.maxReceiveCount,
  metricsPerRepository: config.metricsPerRepository,
  candidates: config.candidates,
  provenanceRetention: config.provenanceRetention,
});
