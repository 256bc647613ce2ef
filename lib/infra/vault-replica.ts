import { CrossStackReferences, PhysicalName, ReferenceStrength } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeGranteeWildcard } from './acknowledge';
import { Problems } from './validation';
import {
  checkStorageProps,
  STORAGE_DEFAULTS,
  VaultBucket,
  type VaultReplicaTarget,
  type VaultStorageProps,
} from './vault-bucket';

/** Props of VaultReplica: the same storage settings as the vault's (use the same values for both). */
export type VaultReplicaProps = VaultStorageProps;

/**
 * The replica of an imagevault bucket, for a stack in a second region: a versioned bucket with its own KMS key,
 * access logs and the vault's lifecycle. It holds the same key layout as the vault, so `imagevault restore --store
 * s3://<replica bucket>` works from it alone. Pass `target` to the ImageVault's `replica` prop.
 */
export class VaultReplica extends Construct {
  /** The replica bucket: the same key layout as the vault, restorable on its own. */
  readonly bucket: s3.Bucket;
  /** The replica bucket's own key, in the replica's region. */
  readonly encryptionKey: kms.Key;
  /** What the vault's `replica` prop takes. */
  readonly target: VaultReplicaTarget;
  private readonly storage: VaultBucket;

  constructor(scope: Construct, id: string, props: VaultReplicaProps = {}) {
    super(scope, id);
    const problems = new Problems();
    checkStorageProps(problems, props);
    problems.throwIfAny(`VaultReplica props (${this.node.path})`);

    this.storage = new VaultBucket(this, 'Replica', {
      ...props,
      purpose: 'replica',
      // Lets a stack in another environment refer to the bucket even without crossRegionReferences (with them, CDK
      // passes the name as a stack output instead and CloudFormation still generates it).
      bucketName: PhysicalName.GENERATE_IF_NEEDED,
    });
    this.bucket = this.storage.bucket;
    this.encryptionKey = this.storage.encryptionKey;
    // The vault's stack reads the bucket and key from this stack's outputs (Fn::GetStackOutput), whatever the app's
    // @aws-cdk/core:defaultCrossStackReferences says: a strong cross-region reference would add SSM-backed custom
    // resources (Lambdas with managed policies) to both stacks and make the two stacks deploy differently per app.
    for (const resource of [this.bucket, this.encryptionKey])
      CrossStackReferences.of(resource).produce(ReferenceStrength.WEAK);
    this.target = {
      bucket: this.bucket,
      encryptionKeyArn: this.encryptionKey.keyArn,
      objectLockEnabled: (props.objectLock ?? STORAGE_DEFAULTS.objectLock) !== 'off',
    };
  }

  /** Read the replica: what `imagevault restore --store s3://<replica bucket>` needs. */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = this.storage.grantRead(grantee, { versions: true });
    acknowledgeGranteeWildcard(grantee, this.bucket);
    return grant;
  }
}
