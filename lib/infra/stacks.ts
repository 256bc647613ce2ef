import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { ImageVault, type ImageVaultProps } from './image-vault';
import { VaultReplica, type VaultReplicaProps } from './vault-replica';

/** Props of ReplicaStack: the stack's and the replica's. */
export interface ReplicaStackProps extends StackProps, VaultReplicaProps {}

/** The replica bucket and its key, in the second region. Deployed before the vault's stack, which refers to it. */
export class ReplicaStack extends Stack {
  /** The replica bucket and its key. */
  readonly replica: VaultReplica;

  constructor(scope: Construct, id: string, props: ReplicaStackProps = {}) {
    super(scope, id, { crossRegionReferences: true, ...props });
    this.replica = new VaultReplica(this, 'Replica', props);
    new CfnOutput(this, 'ReplicaBucketName', {
      description: 'Restore from here with: imagevault restore … --store s3://<this bucket>',
      value: this.replica.bucket.bucketName,
    });
  }
}

/** Props of ImageVaultStack: the stack's and the vault's, and the upstream secret by ARN. */
export interface ImageVaultStackProps extends StackProps, ImageVaultProps {
  /**
   * The complete ARN of an existing secret with upstream registry credentials, imported into this stack as
   * `upstreamCredentialsSecret` (which takes precedence when both are given).
   *
   * @default - none: upstream registries are asked anonymously
   */
  readonly upstreamCredentialsSecretArn?: string;

  /**
   * The ARN of the customer managed KMS key that encrypts the secret of `upstreamCredentialsSecretArn`. Secrets
   * Manager decrypts the secret with the reader's permissions: the Lambdas that read it get `kms:Decrypt` on this
   * key, only through Secrets Manager in this region (`kms:ViaService`). The key's policy must let IAM policies of
   * this account grant it (a key's default policy does).
   *
   * @default - none: the secret is encrypted with `aws/secretsmanager`, which needs no grant
   */
  readonly upstreamCredentialsKeyArn?: string;
}

/** The vault, its event path, reconcile and alerts, in the primary region (the region of the protected ECR). */
export class ImageVaultStack extends Stack {
  /** The vault and everything around it. */
  readonly vault: ImageVault;

  constructor(scope: Construct, id: string, props: ImageVaultStackProps = {}) {
    super(scope, id, { crossRegionReferences: true, ...props });
    const { upstreamCredentialsSecretArn, upstreamCredentialsKeyArn, ...vaultProps } = props;
    // Imported with its key, if any: the secret's grantRead then adds kms:Decrypt through Secrets Manager.
    const upstreamCredentialsSecret =
      props.upstreamCredentialsSecret ??
      (upstreamCredentialsSecretArn
        ? secretsmanager.Secret.fromSecretAttributes(this, 'UpstreamCredentialsSecret', {
            secretCompleteArn: upstreamCredentialsSecretArn,
            encryptionKey: upstreamCredentialsKeyArn
              ? kms.Key.fromKeyArn(this, 'UpstreamCredentialsKey', upstreamCredentialsKeyArn)
              : undefined,
          })
        : undefined);
    this.vault = new ImageVault(this, 'Vault', { ...vaultProps, upstreamCredentialsSecret });
    new CfnOutput(this, 'VaultBucketName', {
      description: 'Restore from here with: imagevault restore … --store s3://<this bucket>',
      value: this.vault.bucket.bucketName,
    });
    new CfnOutput(this, 'AlertTopicArn', { value: this.vault.alertTopic.topicArn });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.vault.deadLetterQueue.queueUrl });
    this.selfTestOutputs(props);
  }

  /** What `imagevault aws selftest` reads: where the vault and its replica are, and what to check. */
  private selfTestOutputs(props: ImageVaultStackProps): void {
    const vault = this.vault;
    const prefix = props.vaultPrefix ?? '';
    const outputs: Record<string, [string, string]> = {
      VaultStoreUrl: [
        `s3://${vault.bucket.bucketName}${prefix ? `/${prefix}` : ''}`,
        'The vault as an imagevault store: --store <this>',
      ],
      ProtectedRepositories: [
        (props.repositories ?? ['*']).join(','),
        'ECR repository name prefixes snapshotted, comma-separated (* for all)',
      ],
      SelfTestAlarmName: [vault.selfTestAlarm.alarmName, 'Set to ALARM by imagevault aws selftest'],
      ReconcileScheduleName: [vault.reconcileRule.ruleName, "The reconcile's EventBridge schedule"],
      UpstreamScheduleName: [vault.upstreamRule.ruleName, "The upstream check's EventBridge schedule"],
      ReconcileFunctionName: [vault.reconcileFunction.functionName, 'The reconcile Lambda'],
      UpstreamFunctionName: [vault.upstreamFunction.functionName, 'The upstream check Lambda'],
    };
    if (props.replica) {
      const replicaStack = Stack.of(props.replica.bucket);
      outputs.ReplicaStackName = [replicaStack.stackName, 'The stack of the replica bucket'];
      outputs.ReplicaRegion = [replicaStack.region, 'The region of the replica bucket'];
    }
    for (const [id, [value, description]] of Object.entries(outputs))
      new CfnOutput(this, id, { value, description });
  }
}
