/**
 * The reconcile function: on a schedule (EventBridge) and once after the first deploy (a trigger), walks ECR and
 * enqueues every image the vault is missing, alerts on tags the vault's history does not match, rewrites the
 * vault's OCI index.json, and asks again what provenance records left pending (replication, the pusher). Returns the
 * summary {mode, repositories, images, enqueued, gaps, deleted, recent, provenanceUpdated, inUseDeleted}.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, ALERT_TOPIC_ARN, REPOSITORY_PREFIXES, QUEUE_URL, GRACE_PERIOD_SECONDS,
 * PROVENANCE_LOCK_MODE, PROVENANCE_LOCK_DAYS, IMAGEVAULT_TIMEOUT, IMAGEVAULT_IDLE_TIMEOUT (see ./config), AWS_REGION (set
 * by Lambda), POWERTOOLS_SERVICE_NAME. The two timeouts (seconds; unset: 300 and 60) bound the vault's S3 requests.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Inventory } from '../lib/content/inventory';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { EcrImages } from '../lib/aws/ecr-images';
import { SqsEventQueue } from '../lib/aws/event-queue';
import { reconcileMode } from '../lib/events';
import { SnsAlertPublisher } from '../lib/aws/sns-alerts';
import { Reconciler, type ReconcileSummary } from '../lib/services/reconcile';
import { reconcileConfig, requiredString } from './config';

const config = reconcileConfig();
const logger = new Logger();
const vault = new Vault(
  new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
);
const reconciler = new Reconciler({
  ecr: new EcrImages(new ECRClient({})),
  queue: new SqsEventQueue(new SQSClient({}), config.queueUrl),
  vault,
  // Running digests gone from ECR go to the snapshot function's deletion guard as DELETE events.
  inUse: new Inventory(vault.store),
  publisher: new SnsAlertPublisher(new SNSClient({}), config.alertTopicArn),
  region: requiredString('AWS_REGION'),
  repositories: config.repositories,
  gracePeriodSeconds: config.gracePeriodSeconds,
  provenanceRetention: config.provenanceRetention,
  logger,
});

export const handler = async (event: unknown): Promise<ReconcileSummary> => {
  const mode = reconcileMode(event);
  logger.info('reconcile started', { mode });
  return reconciler.run(mode);
};
