import type { App } from 'aws-cdk-lib';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import deployed from './fixtures/logical-ids.json';
import { appFromContext, vaultStack } from './support';

/**
 * CloudFormation knows a resource across deployments by its logical ID: a resource whose ID changes is created anew
 * and the old one deleted (a queue with its messages, a log group with its logs, an alarm with its history). The
 * fixture holds the IDs of the deployments below as synthesized before ImageVault was composed of parts; any
 * refactoring of the constructs must keep them. A Lambda version's ID ends in a hash of its function's code and
 * configuration, which changes with every build by design: that part is left out.
 */
function logicalIds(app: App): Record<string, string[]> {
  return Object.fromEntries(
    app.synth().stacks.map((s) => [
      s.stackName,
      Object.entries(s.template.Resources as Record<string, { Type: string }>)
        .map(([id, r]) => `${r.Type} ${r.Type === 'AWS::Lambda::Version' ? id.slice(0, -32) : id}`)
        .sort(),
    ]),
  );
}

/** Every policy statement ID in the app's templates, once each, sorted. */
function statementIds(app: App): string[] {
  const text = JSON.stringify(app.synth().stacks.map((s) => s.template));
  return [...new Set([...text.matchAll(/"Sid":"([^"]*)"/g)].map((m) => m[1]))].sort();
}

/** Parts added after the fixture was taken: their resources are new, not renamed ones. */
const NEW_PARTS = /^AWS::\S+ (Vault|ImageVault)InventoryScan/;

/** Every deployed resource keeps its ID; the only others are the new parts'. */
function expectKept(ids: Record<string, string[]>, deployedIds: Record<string, string[]>): void {
  expect(Object.keys(ids).sort()).toEqual(Object.keys(deployedIds).sort());
  for (const [stack, list] of Object.entries(deployedIds)) {
    expect(ids[stack]).toEqual(expect.arrayContaining(list));
    expect(ids[stack].filter((id) => !list.includes(id) && !NEW_PARTS.test(id))).toEqual([]);
  }
}

describe('Construct: ImageVault', () => {
  describe('logical IDs', () => {
    it("keeps every resource's logical ID in this repository's app with every optional part on", () => {
      // GIVEN a replica, a trail, Object Lock, an imported secret with its own key, and alert mails
      const { app } = appFromContext({
        region: 'eu-west-1',
        replicaRegion: 'eu-central-1',
        provenanceTrail: 'create',
        objectLock: 'governance',
        alertEmails: ['oncall@example.com'],
        upstreamCredentialsSecretArn:
          'arn:aws:secretsmanager:eu-west-1:111122223333:secret:imagevault/upstream-AbC123',
        upstreamCredentialsKeyArn:
          'arn:aws:kms:eu-west-1:111122223333:key/0b9d2d64-4a5f-4c43-9f3e-7f1e3c5a9d21',
      });
      // WHEN / THEN every deployed ID is still there; what is new belongs to the parts added since (the inventory)
      expectKept(logicalIds(app), deployed.repositoryApp);
      // Statement IDs that name a rule (EventBridge's grants in the dead-letter queues' policies) stay too: a
      // changed one would update the queue's policy in place for nothing.
      expect(statementIds(app)).toEqual(deployed.repositoryAppSids);
    });

    it('keeps the logical IDs of what an app adds to the vault after constructing it', () => {
      // GIVEN a vault without a replica, whose alert topic the app subscribes to itself
      const { app, vault } = vaultStack({}, false);
      // WHEN
      vault.alertTopic.addSubscription(new subscriptions.EmailSubscription('team@example.com'));
      // THEN
      expectKept(logicalIds(app), deployed.vaultWithSubscription);
    });
  });
});
