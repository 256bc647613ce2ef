/**
 * The inventory function: on a schedule (EventBridge), records in the vault which image digests run where — ECS
 * tasks and Lambda container functions in its region (and INVENTORY_REGIONS), pods of the EKS_CLUSTERS — and puts
 * each running digest the vault lacks onto the snapshot queue (lib/aws/handlers/inventory). Returns the summary
 * {key, sources, running, gaps}.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, QUEUE_URL, REPOSITORY_PREFIXES, INVENTORY_REGIONS (optional),
 * EKS_CLUSTERS (optional), IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT (optional) (see ./config), AWS_REGION (set
 * by Lambda), POWERTOOLS_SERVICE_NAME.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ECSClient } from '@aws-sdk/client-ecs';
import { EKSClient } from '@aws-sdk/client-eks';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EcsInventoryScanner } from '../lib/aws/ecs-inventory';
import { EksClusterScanner } from '../lib/aws/eks-inventory';
import { SqsEventQueue } from '../lib/aws/event-queue';
import { createInventoryHandler } from '../lib/aws/handlers/inventory';
import { LambdaInventoryScanner } from '../lib/aws/lambda-inventory';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { inventoryConfig } from './config';

const config = inventoryConfig();
// Clients at module scope: one per region, reused by every invocation of this execution environment.
const ecs = config.regions.map((region) => new EcsInventoryScanner(new ECSClient({ region }), region));
const lambda = config.regions.map(
  (region) => new LambdaInventoryScanner(new LambdaClient({ region }), region),
);
const eks = new EKSClient({ region: config.region });

export const handler = createInventoryHandler({
  vault: new Vault(
    new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
  ),
  scanners: () => [
    ...ecs,
    ...lambda,
    ...config.eksClusters.map((cluster) => new EksClusterScanner(eks, { cluster, region: config.region })),
  ],
  queue: new SqsEventQueue(new SQSClient({}), config.queueUrl),
  region: config.region,
  repositories: config.repositories,
  logger: new Logger(),
});
