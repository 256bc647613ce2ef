import * as cxapi from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';

/**
 * Feature flags that change what ImageVault deploys and that no construct prop can set, pinned to their recommended
 * value for the construct's own subtree, so that it behaves the same in any app: one with our cdk.json, one with
 * aws-cdk-lib's recommended flags, or a plain `new App()` with none.
 *
 * The constructs' other flag-dependent choices are written out: server access logs are delivered by bucket policy
 * (`logAccessInto`), the replica is referenced weakly (VaultReplica). TEMPLATE_ONLY_FEATURE_FLAGS are left to the
 * app. test/infra/feature-flags.test.ts checks that no other flag changes the constructs' templates.
 */
export const PINNED_FEATURE_FLAGS: Readonly<Record<string, boolean>> = {
  // EventBridge may send to the snapshot queue (and use its key) only for rules of this account: without the flag,
  // the queue's and the key's policies allow events.amazonaws.com with no condition at all.
  [cxapi.EVENTS_TARGET_QUEUE_SAME_ACCOUNT]: true,
};

/**
 * Flags that change only how the constructs' template is written, not what it deploys: policy statements merged,
 * the partition spelled `aws` rather than `${AWS::Partition}`, another logical ID for the reconcile function's
 * version. Left to the app.
 */
export const TEMPLATE_ONLY_FEATURE_FLAGS: readonly string[] = [
  cxapi.IAM_MINIMIZE_POLICIES,
  cxapi.ENABLE_PARTITION_LITERALS,
  cxapi.LAMBDA_RECOGNIZE_LAYER_VERSION,
];

/** Sets PINNED_FEATURE_FLAGS on `scope`; call it before `scope` has children (construct context must come first). */
export function pinFeatureFlags(scope: Construct): void {
  for (const [flag, value] of Object.entries(PINNED_FEATURE_FLAGS)) scope.node.setContext(flag, value);
}
