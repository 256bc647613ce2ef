// bin/vault.ts of your CDK app: `npx cdk deploy --all` deploys the replica's stack, then the vault's.
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ImageVault, VaultReplica } from 'imagevault/constructs';

export const app = new App();

// Both stacks need an explicit region: the replica lives in another region than the vault and ECR.
const replicaStack = new Stack(app, 'TeamAVaultReplica', {
  env: { region: 'eu-central-1' },
  crossRegionReferences: true,
});
const replica = new VaultReplica(replicaStack, 'Replica');

const stack = new Stack(app, 'TeamAVault', { env: { region: 'eu-west-1' }, crossRegionReferences: true });
const vault = new ImageVault(stack, 'Vault', {
  replica: replica.target,
  repositories: ['team-a/'],
  vaultPrefix: 'team-a',
  alertEmails: ['team-a-oncall@example.com'],
});

// Who may restore: read on the vault and its key (`imagevault restore --store s3://<bucket>/team-a`).
const onCall = new iam.Role(stack, 'OnCallRestore', { assumedBy: new iam.AccountRootPrincipal() });
vault.grantRead(onCall);
