import { Duration } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ALL_REPOSITORIES, type ProvenanceTrailMode } from './validation';

/** Defaults and fixed sizes, named so that the README and the tests quote the same numbers. */
export const VAULT_DEFAULTS = {
  repositories: [ALL_REPOSITORIES],
  reconcileEvery: Duration.hours(6),
  vaultPrefix: '',
  maxSnapshotConcurrency: 10,
  reserveConcurrency: true,
  /** Pushing into ECR is opt-in: off, the vault's functions only ever read from the registry. */
  autoRestoreInUse: false,
  /**
   * Lambda gives CPU in proportion to memory (one full vCPU at 1,769 MB). A snapshot is CPU work on one JavaScript
   * thread (reading, SHA-256 of every byte, the SDK's multipart upload): measured on one CPU it copies 85 MiB/s
   * registry → S3 (`npm run bench:s3 -- --cli --cpus 0`), peak RSS ~200 MiB. Below one vCPU the time per GiB grows
   * as 1 / share, so the cost per GiB stays ~$0.00028; above it the time hardly shrinks and the cost grows with
   * memory (3,008 MB: $0.00047). One vCPU is the fastest setting at the lowest cost per GiB (README, Lambda sizing).
   */
  snapshotMemoryMb: 1769,
  snapshotTimeout: Duration.minutes(15),
  reconcileMemoryMb: 1024,
  reconcileTimeout: Duration.minutes(15),
  upstreamEvery: Duration.hours(1),
  upstreamMemoryMb: 512,
  upstreamTimeout: Duration.minutes(5),
  /** Provenance records are kept at least a year under Object Lock: audits look back that far. */
  provenanceRetentionDays: 365,
  identityMemoryMb: 256,
  identityTimeout: Duration.minutes(1),
  /** Lambda's own retries of a failed asynchronous invocation (EventBridge invokes asynchronously). */
  identityRetries: 2,
  provenanceTrail: 'existing' as ProvenanceTrailMode,
  provenanceTableName: 'provenance_log',
  /** Small batches: one slow image cannot hold many others hostage until the visibility timeout. */
  batchSize: 5,
  maxReceiveCount: 3,
  /** AWS's guidance for SQS event sources: at least six times the function timeout. */
  visibilityTimeoutFactor: 6,
  retention: Duration.days(14),
  replicationLatencyAlarm: Duration.minutes(15),
  logRetention: logs.RetentionDays.ONE_YEAR,
};
