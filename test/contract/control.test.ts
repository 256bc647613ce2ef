import { modelOf, repositoryApp, type Deployment, type NamedPolicy, type Statement } from './deployment';
import { evaluatePath, failureMessage, servicePaths, type PathResult } from './paths';

// Control: the harness fails when one permission is removed, on exactly the paths that depend on it and with a
// message naming them. GIVEN this repository's app, resolved once; WHEN one statement or one action is taken out of
// the model; THEN only the dependent paths fail.

const deployment = modelOf(repositoryApp());

/** The deployment with `edit` applied to every statement of every policy (identity and resource); null drops it. */
function edited(d: Deployment, edit: (s: Statement, source: string) => Statement | null): Deployment {
  const policy = (p: NamedPolicy): NamedPolicy => ({
    ...p,
    document: {
      ...p.document,
      Statement: p.document.Statement.map((s) => edit(s, p.source)).filter((s): s is Statement => s !== null),
    },
  });
  return {
    ...d,
    roles: new Map([...d.roles].map(([arn, r]) => [arn, { ...r, policies: r.policies.map(policy) }])),
    resourcePolicies: new Map([...d.resourcePolicies].map(([arn, ps]) => [arn, ps.map(policy)])),
  };
}

async function failing(d: Deployment): Promise<PathResult[]> {
  const results = await Promise.all(servicePaths(d).map((p) => evaluatePath(d, p)));
  return results.filter((r) => !r.ok);
}

describe('Control: the harness catches a removed permission', () => {
  it('passes every path of the unchanged deployment (the baseline)', async () => {
    expect((await failing(deployment)).map(failureMessage)).toEqual([]);
  });

  it("fails exactly the alarm → topic paths, naming each alarm, when the topic policy's Allow for CloudWatch is removed", async () => {
    // WHEN the statement that lets cloudwatch.amazonaws.com publish is deleted from the topic policy
    let removed = 0;
    const d = edited(deployment, (s, source) => {
      const isIt = source.includes('AlertTopicPolicy') && JSON.stringify(s.Principal).includes('cloudwatch');
      if (isIt) removed += 1;
      return isIt ? null : s;
    });
    expect(removed).toBe(1);
    // THEN every alarm's path fails, and nothing else
    const alarms = deployment.resources.filter((r) => r.type === 'AWS::CloudWatch::Alarm');
    const failed = await failing(d);
    expect(alarms.length).toBeGreaterThan(0);
    expect(failed.map((r) => r.path.walk)).toEqual(alarms.map(() => 'alarm → topic'));
    for (const r of failed) {
      expect(r.path.name).toMatch(
        /^alarm \w+ → topic VaultAlertTopic: sns:Publish as cloudwatch\.amazonaws\.com$/,
      );
      expect(failureMessage(r)).toMatch(
        /DENIED \(ImplicitlyDenied\): sns:Publish on arn:aws:sns:eu-west-1:111122223333:/,
      );
    }
  });

  it('fails exactly the identity DLQ path, naming kms:GenerateDataKey, when that action is taken from the identity role', async () => {
    // WHEN kms:GenerateDataKey is removed from the identity role's policies (Decrypt stays)
    const d = edited(deployment, (s, source) => {
      if (!source.includes('IdentityRole')) return s;
      const actions = ([] as string[]).concat(s.Action ?? []);
      if (!actions.includes('kms:GenerateDataKey')) return s;
      const rest = actions.filter((a) => a !== 'kms:GenerateDataKey');
      return rest.length > 0 ? { ...s, Action: rest } : null;
    });
    // THEN the one path through which AWS uses the identity role with a data key fails, and nothing else
    const failed = await failing(d);
    expect(failed.map((r) => r.path.name)).toEqual([
      'function VaultIdentityFunction → dead-letter VaultIdentityDeadLetterQueue: sqs:SendMessage as its role',
    ]);
    expect(failureMessage(failed[0])).toMatch(
      /DENIED \(ImplicitlyDenied\): kms:GenerateDataKey on arn:aws:kms:eu-west-1:111122223333:key\/.* \(implied by sqs:SendMessage on /,
    );
    expect(failureMessage(failed[0])).not.toMatch(/kms:Decrypt on/);
  });

  it('fails exactly the rule → function path when its Lambda permission is removed', async () => {
    // WHEN the permission that lets EventBridge invoke the upstream function from its schedule is removed
    const d = edited(deployment, (s, source) =>
      source.includes('UpstreamScheduleAllowEventRule') ? null : s,
    );
    const failed = await failing(d);
    expect(failed.map((r) => r.path.name)).toEqual([
      'rule VaultUpstreamSchedule → lambda VaultUpstreamFunction: lambda:InvokeFunction as events.amazonaws.com',
    ]);
  });
});
