import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ImageVault, ImageVaultConfigError, VaultReplica, type ImageVaultProps } from '../../lib/infra';
import { newApp, PRIMARY, SECONDARY, vaultStack } from './support';

/** The error a vault with these props throws (none: undefined). */
function errorOf(build: () => unknown): ImageVaultConfigError | undefined {
  try {
    build();
    return undefined;
  } catch (e) {
    if (e instanceof ImageVaultConfigError) return e;
    throw e;
  }
}
const vaultError = (props: ImageVaultProps & Parameters<typeof vaultStack>[0] = {}, replica = false) =>
  errorOf(() => vaultStack(props, replica));

describe('ImageVault validation', () => {
  it('accepts the defaults', () => {
    expect(vaultError()).toBeUndefined();
  });

  it('rejects an empty repositories list, naming the prop', () => {
    // WHEN
    const error = vaultError({ repositories: [] });
    // THEN
    expect(error?.problems).toEqual([expect.stringMatching(/^repositories is empty/)]);
  });

  it("rejects '*' mixed with prefixes", () => {
    expect(vaultError({ repositories: ['*', 'team-a/'] })?.problems).toEqual([
      expect.stringMatching(/^repositories \["\*","team-a\/"\] mixes '\*'/),
    ]);
  });

  it('rejects a prefix ECR could never match, quoting it', () => {
    expect(vaultError({ repositories: ['Team-A/'] })?.problems).toEqual([
      expect.stringMatching(/^repositories entry "Team-A\/" is not an ECR repository name prefix/),
    ]);
  });

  it('rejects a wildcard inside a prefix', () => {
    expect(vaultError({ repositories: ['team-*'] })?.problems).toHaveLength(1);
  });

  it('rejects a prefix listed twice', () => {
    expect(vaultError({ repositories: ['a', 'a'] })?.problems).toEqual(['repositories lists "a" twice']);
  });

  it('rejects an alert address that is not an e-mail address, quoting it', () => {
    expect(vaultError({ alertEmails: ['oncall@example.com', 'oncall'] })?.problems).toEqual([
      'alertEmails entry "oncall" is not an e-mail address',
    ]);
  });

  it('rejects objectLockDays without objectLock, naming both props', () => {
    expect(vaultError({ objectLockDays: 30 })?.problems).toEqual([
      "objectLockDays (30) is set but objectLock is 'off': set objectLock too, or drop it",
    ]);
  });

  it('rejects an unknown objectLock mode', () => {
    expect(vaultError({ objectLock: 'legal-hold' as never })?.problems).toEqual([
      `objectLock "legal-hold" must be one of 'off', 'governance', 'compliance'`,
    ]);
  });

  it('rejects objectLockDays that are not a positive whole number', () => {
    expect(vaultError({ objectLock: 'governance', objectLockDays: 0 })?.problems).toEqual([
      'objectLockDays 0 must be a whole number from 1 to 36500',
    ]);
    expect(vaultError({ objectLock: 'governance', objectLockDays: 1.5 })?.problems).toHaveLength(1);
  });

  it('rejects noncurrentExpirationDays below 1', () => {
    expect(vaultError({ noncurrentExpirationDays: 0 })?.problems).toEqual([
      'noncurrentExpirationDays 0 must be a whole number from 1 to 36500',
    ]);
  });

  it('rejects noncurrentTransitionDays below 1', () => {
    expect(vaultError({ noncurrentTransitionDays: 0 })?.problems).toEqual([
      'noncurrentTransitionDays 0 must be a whole number from 1 to 36500',
    ]);
  });

  it('rejects noncurrentTransitionDays below 30 for an infrequent-access class (S3 would refuse it)', () => {
    expect(
      vaultError({ noncurrentStorageClass: s3.StorageClass.INFREQUENT_ACCESS, noncurrentTransitionDays: 7 })
        ?.problems,
    ).toEqual(['noncurrentTransitionDays 7 must be a whole number from 30 to 36500']);
  });

  it('rejects a vaultPrefix with leading or trailing slashes', () => {
    expect(vaultError({ vaultPrefix: '/vault/' })?.problems).toEqual([
      expect.stringMatching(/^vaultPrefix "\/vault\/" must be ''/),
    ]);
  });

  it('rejects maxSnapshotConcurrency outside 2–1000 (the SQS event source limits)', () => {
    expect(vaultError({ maxSnapshotConcurrency: 1 })?.problems).toEqual([
      'maxSnapshotConcurrency 1 must be a whole number from 2 to 1000',
    ]);
  });

  it('rejects a replica in the vault’s own region', () => {
    // GIVEN a replica bucket in the primary region
    const app = newApp();
    const other = new Stack(app, 'Other', { env: PRIMARY, crossRegionReferences: true });
    const replica = new VaultReplica(other, 'Replica');
    const stack = new Stack(app, 'Vault', { env: PRIMARY });
    // WHEN / THEN
    expect(errorOf(() => new ImageVault(stack, 'V', { replica: replica.target }))?.problems).toEqual([
      "replica.bucket is in eu-west-1, the vault's own region: a replica must be in another region",
    ]);
  });

  it('rejects a replica when the regions are not known (environment-agnostic stacks)', () => {
    const app = newApp();
    const replica = new VaultReplica(new Stack(app, 'Other'), 'Replica');
    const stack = new Stack(app, 'Vault');
    expect(errorOf(() => new ImageVault(stack, 'V', { replica: replica.target }))?.problems).toEqual([
      expect.stringMatching(/^replica.bucket: cannot tell its region.*explicit env.region/),
    ]);
  });

  it('rejects Object Lock on the vault when the replica has none', () => {
    expect(vaultError({ objectLock: 'governance' }, true)?.problems).toEqual([
      "objectLock is 'governance' but replica.objectLockEnabled is not: S3 replicates locked versions only into a bucket with Object Lock",
    ]);
  });

  it('reports several problems together, in one error naming the construct', () => {
    // WHEN
    const error = vaultError({ repositories: [], alertEmails: ['x'], objectLockDays: 3 });
    // THEN
    expect(error?.problems).toHaveLength(3);
    expect(error?.message).toMatch(/^Invalid ImageVault props \(Vault\/ImageVault\):\n {2}- repositories/);
  });
});

describe('VaultReplica validation', () => {
  it('rejects objectLockDays without objectLock, naming the prop', () => {
    const stack = new Stack(new App(), 'R', { env: SECONDARY });
    expect(errorOf(() => new VaultReplica(stack, 'Replica', { objectLockDays: 10 }))?.problems).toEqual([
      "objectLockDays (10) is set but objectLock is 'off': set objectLock too, or drop it",
    ]);
  });
});
