/**
 * The retention function (deployed only with a retention policy): on a schedule (EventBridge), applies the policy
 * (appends a forget record per image it forgets; never what is held or in use) and runs gc (deletes the blobs an
 * earlier run marked and no kept image needs, then marks again) — lib/aws/handlers/retention. Its role is the only
 * one that may delete, and only blobs, referrer links and gc's own files. Returns the summary.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, RETENTION_POLICY, GC_GRACE_HOURS (optional), IMAGEVAULT_TIMEOUT and
 * IMAGEVAULT_IDLE_TIMEOUT (optional) (see ./config), POWERTOOLS_SERVICE_NAME.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { createRetentionHandler } from '../lib/aws/handlers/retention';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { retentionConfig } from './config';

const config = retentionConfig();

export const handler = createRetentionHandler({
  vault: new Vault(
    new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
  ),
  policy: config.policy,
  graceMs: config.graceMs,
  logger: new Logger(),
});
