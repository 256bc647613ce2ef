import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { VersionWatchRules } from '../drift/version-rules';
import { acknowledgeWildcards } from './acknowledge';
import type { Alerts } from './alerts';
import type { VaultBucket } from './vault-bucket';
import { VAULT_DEFAULTS } from './vault-defaults';
import { grantUpstreamCredentials, upstreamCredentialsEnvironment, vaultFunction } from './vault-function';

/** Props of UpstreamWatcher. */
export interface UpstreamWatcherProps {
  /** The vault whose images' upstream bases are watched. */
  readonly vault: VaultBucket;
  /** Where `upstream-moved` alerts go. */
  readonly alerts: Alerts;
  /** @default events.Schedule.rate(Duration.hours(1)) */
  readonly schedule?: events.Schedule;
  /** @default - none: upstream registries are asked anonymously */
  readonly credentialsSecret?: secretsmanager.ISecret;
  /** Newer versions of the bases in use, per repository prefix (ImageVaultProps.newerVersions). @default - the Lambda's own */
  readonly newerVersions?: VersionWatchRules;
  /** Days between two `newer-versions` digests. @default - the Lambda's own (7) */
  readonly newerVersionsDigestDays?: number;
}

/**
 * The scheduled upstream check: one HEAD per upstream base tag in use, an `upstream-moved` alert once per transition
 * when a tag moved under images built on it. The function reads the vault (images and their base records), writes
 * only its own state under `imagevault/upstream/`, publishes alerts, and reads the credentials secret when there
 * is one.
 */
export class UpstreamWatcher extends Construct {
  /** The upstream check Lambda. */
  readonly function: lambda.Function;
  /** Its schedule. */
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: UpstreamWatcherProps) {
    super(scope, id);
    const { vault, alerts } = props;
    this.function = vaultFunction(this, 'Upstream', {
      entry: 'upstream',
      memorySize: VAULT_DEFAULTS.upstreamMemoryMb,
      timeout: VAULT_DEFAULTS.upstreamTimeout,
      description: 'Checks the upstream base tags of images in the imagevault bucket; alerts when one moved',
      environment: {
        VAULT_BUCKET: vault.bucket.bucketName,
        VAULT_PREFIX: vault.vaultPrefix,
        ALERT_TOPIC_ARN: alerts.topic.topicArn,
        POWERTOOLS_SERVICE_NAME: 'imagevault-upstream',
        NODE_OPTIONS: '--enable-source-maps',
        ...upstreamCredentialsEnvironment(props.credentialsSecret),
        ...(props.newerVersions !== undefined ? { NEWER_VERSIONS: JSON.stringify(props.newerVersions) } : {}),
        ...(props.newerVersionsDigestDays !== undefined
          ? { NEWER_VERSIONS_DIGEST_DAYS: String(props.newerVersionsDigestDays) }
          : {}),
      },
    });
    const role = this.function.role!;
    vault.grantRead(role);
    vault.grantUpstreamStateWrite(role);
    alerts.grantPublish(role);
    grantUpstreamCredentials(role, props.credentialsSecret);
    acknowledgeWildcards(role, [
      [vault.bucket.arnForObjects('*'), 'vault keys are content addresses, not known in advance'],
    ]);
    this.rule = new events.Rule(this, 'UpstreamSchedule', {
      description: 'Runs the imagevault upstream check',
      schedule: props.schedule ?? events.Schedule.rate(VAULT_DEFAULTS.upstreamEvery),
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 2 })],
    });
  }
}
