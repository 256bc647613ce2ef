import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ImageVault, type ImageVaultProps } from './image-vault';
import { VaultReplica, type VaultReplicaProps } from './vault-replica';

export interface ReplicaStackProps extends StackProps, VaultReplicaProps {}

/** The replica bucket and its key, in the second region. Deployed before the vault's stack, which refers to it. */
export class ReplicaStack extends Stack {
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

export interface ImageVaultStackProps extends StackProps, ImageVaultProps {}

/** The vault, its event path, reconcile and alerts, in the primary region (the region of the protected ECR). */
export class ImageVaultStack extends Stack {
  readonly vault: ImageVault;

  constructor(scope: Construct, id: string, props: ImageVaultStackProps = {}) {
    super(scope, id, { crossRegionReferences: true, ...props });
    this.vault = new ImageVault(this, 'Vault', props);
    new CfnOutput(this, 'VaultBucketName', {
      description: 'Restore from here with: imagevault restore … --store s3://<this bucket>',
      value: this.vault.bucket.bucketName,
    });
    new CfnOutput(this, 'AlertTopicArn', { value: this.vault.alertTopic.topicArn });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.vault.deadLetterQueue.queueUrl });
  }
}
