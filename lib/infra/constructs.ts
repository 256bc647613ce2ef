/**
 * The constructs for other teams' CDK apps: the package's `imagevault/constructs` export. Everything else in
 * lib/infra is this repository's own app (bin/app.ts) and its helpers.
 *
 * @packageDocumentation
 */
export { ImageVault, type ImageVaultProps } from './image-vault';
export { ImageVaultConfigError, type ObjectLockMode, type ProvenanceTrailMode } from './validation';
export { type VaultReplicaTarget, type VaultStorageProps } from './vault-bucket';
export { VaultReplica, type VaultReplicaProps } from './vault-replica';
