/**
 * The identity function: on every CloudTrail `ecr:PutImage` event (EventBridge, detail-type `AWS API Call via
 * CloudTrail`), records who pushed the image in its provenance log — joined when the snapshot has written the
 * record, kept pending until it does. The work is lib/provenance's recordPushIdentity (through
 * lib/aws/handlers/identity); this wires the vault. Returns `{status: 'joined' | 'pending' | 'ignored', repository,
 * digest}`.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, PROVENANCE_LOCK_MODE, PROVENANCE_LOCK_DAYS, IMAGEVAULT_TIMEOUT,
 * IMAGEVAULT_IDLE_TIMEOUT (optional, seconds; unset: 300 and 60: the vault's S3 requests) (see ./config),
 * POWERTOOLS_SERVICE_NAME.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { createIdentityHandler } from '../lib/aws/handlers/identity';
import { identityConfig } from './config';

const config = identityConfig();

export const handler = createIdentityHandler({
  vault: new Vault(
    new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
  ),
  logger: new Logger(),
  retention: config.provenanceRetention,
});
