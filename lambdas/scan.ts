/**
 * The scan function: on every ECR basic scan (`ECR Image Scan`) and Amazon Inspector (`Inspector2 Scan`) event for
 * an ECR image, records the scan in the image's provenance log — joined when the snapshot has written the record,
 * kept pending until it does — with the CRITICAL and HIGH findings read from ECR. The work is lib/provenance's
 * recordScan (through lib/aws/handlers/scan); this wires the vault and ECR. Returns `{status: 'joined' | 'pending' |
 * 'ignored', repository, digest}`.
 *
 * Environment: VAULT_BUCKET, VAULT_PREFIX, PROVENANCE_LOCK_MODE, PROVENANCE_LOCK_DAYS, IMAGEVAULT_TIMEOUT,
 * IMAGEVAULT_IDLE_TIMEOUT (optional, seconds; unset: 300 and 60: the vault's S3 requests) (see ./config),
 * POWERTOOLS_SERVICE_NAME.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ECRClient } from '@aws-sdk/client-ecr';
import { EcrScanFindings } from '../lib/aws/scan-findings';
import { S3ObjectStore } from '../lib/content/s3';
import { Vault } from '../lib/content/vault';
import { createScanHandler } from '../lib/aws/handlers/scan';
import { scanConfig } from './config';

const config = scanConfig();

export const handler = createScanHandler({
  vault: new Vault(
    new S3ObjectStore({ bucket: config.vaultBucket, prefix: config.vaultPrefix, timeouts: config.timeouts }),
  ),
  // The function's own region: EventBridge delivers a region's scan events to that region's rules.
  findings: new EcrScanFindings({ client: new ECRClient({}) }),
  logger: new Logger(),
  retention: config.provenanceRetention,
});
