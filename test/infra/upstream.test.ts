import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Stack } from 'aws-cdk-lib';
import { ImageVault, ImageVaultConfigError, type ImageVaultProps } from '../../lib/infra';
import {
  actionsOf,
  appFromContext,
  newApp,
  PRIMARY,
  resourceOf,
  statementsOf,
  statementsWith,
  vaultStack,
} from './support';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:imagevault/upstream-AbCdEf';
const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const UPSTREAM = 'ImageVaultUpstream';
const SNAPSHOT = 'ImageVaultSnapshot';

const envOf = (t: Template, idPrefix: string) =>
  (
    resourceOf(t, 'AWS::Lambda::Function', `${idPrefix}Function`).Properties as {
      Environment: { Variables: Record<string, unknown> };
    }
  ).Environment.Variables;

function problemsOf(props: ImageVaultProps): readonly string[] {
  try {
    vaultStack(props, false);
    return [];
  } catch (e) {
    if (e instanceof ImageVaultConfigError) return e.problems;
    throw e;
  }
}

describe('ImageVault upstream check', () => {
  describe('defaults', () => {
    const t = vaultStack({}, false).template();

    it('is a Node.js 24 arm64 function of 512 MB and 5 minutes', () => {
      t.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('upstream base tags'),
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        MemorySize: 512,
        Timeout: 300,
      });
    });

    it('runs every hour', () => {
      t.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 hour)',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp(`^${UPSTREAM}Function`), 'Arn'] },
          }),
        ],
      });
    });

    it('gets the vault, the topic, and no secret: anonymous', () => {
      const env = envOf(t, UPSTREAM);
      expect(Object.keys(env).sort()).toEqual([
        'ALERT_TOPIC_ARN',
        'NODE_OPTIONS',
        'POWERTOOLS_SERVICE_NAME',
        'VAULT_BUCKET',
        'VAULT_PREFIX',
      ]);
      expect(env.POWERTOOLS_SERVICE_NAME).toBe('imagevault-upstream');
    });

    it('reads the vault, writes only its state keys, publishes alerts; no Secrets Manager', () => {
      expect(actionsOf(t, `${UPSTREAM}Role`)).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKey',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'sns:Publish',
      ]);
      const put = statementsWith(t, `${UPSTREAM}Role`, 's3:PutObject');
      expect(JSON.stringify(put.map((s) => s.Resource))).toContain('/imagevault/upstream/*');
      expect(JSON.stringify(put.map((s) => s.Resource))).not.toMatch(/"\/\*"/);
    });

    it('has an errors alarm', () => {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Dimensions: [
          { Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp(`^${UPSTREAM}Function`) } },
        ],
        AlarmDescription: Match.stringLikeRegexp('upstream check'),
      });
    });

    it('gives the snapshot Lambda no CANDIDATE_BASES', () => {
      expect(envOf(t, SNAPSHOT).CANDIDATE_BASES).toBeUndefined();
    });
  });

  describe('upstreamSchedule', () => {
    it('sets the rule', () => {
      const t = vaultStack(
        { upstreamSchedule: events.Schedule.cron({ minute: '5', hour: '*/3' }) },
        false,
      ).template();
      t.hasResourceProperties('AWS::Events::Rule', {
        Description: 'Runs the imagevault upstream check',
        ScheduleExpression: 'cron(5 */3 * * ? *)',
      });
    });
  });

  describe('vaultPrefix', () => {
    it('scopes the state keys under the prefix', () => {
      const t = vaultStack({ vaultPrefix: 'team/vault' }, false).template();
      const put = statementsWith(t, `${UPSTREAM}Role`, 's3:PutObject');
      expect(JSON.stringify(put)).toContain('/team/vault/imagevault/upstream/*');
    });
  });

  describe('upstreamCredentialsSecret', () => {
    // GIVEN an imported secret
    const tpl = vaultStackWithSecret().template();

    it.each([
      ['upstream check', UPSTREAM],
      ['snapshot (base detection reads candidate bases upstream)', SNAPSHOT],
    ])('passes the secret ARN to the %s and grants GetSecretValue on that secret only', (_, fn) => {
      expect(envOf(tpl, fn).UPSTREAM_CREDENTIALS_SECRET).toBe(SECRET_ARN);
      const sm = statementsOf(tpl, `${fn}Role`).filter((s) =>
        JSON.stringify(s.Action).includes('secretsmanager:'),
      );
      expect(sm).toEqual([
        expect.objectContaining({
          Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
          Resource: SECRET_ARN,
        }),
      ]);
    });

    it('lets no other role read it', () => {
      for (const role of ['ImageVaultReconcileRole', 'ImageVaultIdentityRole', 'ImageVaultScanRole']) {
        expect(JSON.stringify(statementsOf(tpl, role))).not.toContain('secretsmanager');
      }
    });

    it('asks for no key when the secret has none of its own (aws/secretsmanager needs no grant)', () => {
      for (const fn of [UPSTREAM, SNAPSHOT])
        expect(statementsWith(tpl, `${fn}Role`, 'kms:Decrypt').map((s) => s.Resource)).not.toContainEqual(
          expect.stringContaining(':kms:'),
        );
    });

    it.each([
      ['upstream check', UPSTREAM],
      ['snapshot', SNAPSHOT],
    ])(
      'lets the %s decrypt an imported secret with its customer managed key, through Secrets Manager only',
      (_, fn) => {
        // GIVEN a secret imported with its key (the key's policy cannot be changed: the role must get the grant)
        const t = vaultStackWithSecret(KEY_ARN).template();
        expect(statementsWith(t, `${fn}Role`, 'kms:Decrypt')).toContainEqual(
          expect.objectContaining({
            Resource: KEY_ARN,
            Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } },
          }),
        );
      },
    );
  });

  describe('candidateBases', () => {
    it('go to the snapshot Lambda as CANDIDATE_BASES (JSON)', () => {
      const candidateBases = {
        '': ['docker.io/library/ruby:2.7'],
        'team-a/': ['registry.example.com/base:1'],
      };
      const t = vaultStack({ candidateBases }, false).template();
      expect(JSON.parse(envOf(t, SNAPSHOT).CANDIDATE_BASES as string)).toEqual(candidateBases);
      expect(envOf(t, UPSTREAM).CANDIDATE_BASES).toBeUndefined();
    });

    it('rejects keys that are not repository prefixes and entries that are not references, naming the prop', () => {
      expect(
        problemsOf({ candidateBases: { 'Team A': ['ruby:2.7'], 'app/': [], 'web/': ['Not A Ref!'] } }),
      ).toEqual([
        expect.stringMatching(
          /^candidateBases key "Team A" is not '' \(every repository\) or an ECR repository/,
        ),
        expect.stringMatching(/^candidateBases\["app\/"\] must be a non-empty list/),
        expect.stringMatching(/^candidateBases\["web\/"\] entry "Not A Ref!" is not an image reference/),
      ]);
      expect(
        problemsOf({ candidateBases: { '': ['ruby:2.7', 'ghcr.io/org/base@sha256:' + 'a'.repeat(64)] } }),
      ).toEqual([]);
    });
  });

  describe('newerVersions and newerVersionsDigestDays', () => {
    it('go to the upstream Lambda as NEWER_VERSIONS (JSON) and NEWER_VERSIONS_DIGEST_DAYS; unset by default', () => {
      // GIVEN
      const newerVersions = { '': { ignore: ['*-windowsservercore*'] }, 'team-a/': { upstreams: [] } };

      // WHEN
      const t = vaultStack({ newerVersions, newerVersionsDigestDays: 14 }, false).template();
      const plain = vaultStack({}, false).template();

      // THEN
      expect(JSON.parse(envOf(t, UPSTREAM).NEWER_VERSIONS as string)).toEqual(newerVersions);
      expect(envOf(t, UPSTREAM).NEWER_VERSIONS_DIGEST_DAYS).toBe('14');
      expect(envOf(t, SNAPSHOT).NEWER_VERSIONS).toBeUndefined();
      expect(envOf(plain, UPSTREAM).NEWER_VERSIONS).toBeUndefined();
      expect(envOf(plain, UPSTREAM).NEWER_VERSIONS_DIGEST_DAYS).toBeUndefined();
    });

    it('reports every problem with the rules and the days at once, naming the prop', () => {
      expect(
        problemsOf({
          newerVersions: { 'Team A': {}, '': { intervalHours: 0 } } as never,
          newerVersionsDigestDays: 0,
        }),
      ).toEqual([
        expect.stringMatching(/^newerVersions key "Team A" is not '' \(every repository\)/),
        'newerVersions[""].intervalHours must be a whole number of hours of at least 1, got 0',
        expect.stringMatching(/^newerVersionsDigestDays/),
      ]);
      expect(problemsOf({ newerVersions: {} })).toEqual([]);
    });

    it('are read from the app context, as JSON or an object', () => {
      const { vault } = appFromContext({
        newerVersions: '{"": {"intervalHours": 12}}',
        newerVersionsDigestDays: '3',
      });
      const t = Template.fromStack(vault);
      expect(envOf(t, 'VaultUpstream').NEWER_VERSIONS).toBe('{"":{"intervalHours":12}}');
      expect(envOf(t, 'VaultUpstream').NEWER_VERSIONS_DIGEST_DAYS).toBe('3');
      expect(() => appFromContext({ newerVersions: '{"": {"ignore": "x"}}' })).toThrow(
        /newerVersions\[""\]\.ignore must be a list of non-empty glob strings/,
      );
    });
  });

  describe('app context', () => {
    it('reads upstreamSchedule, candidateBases and upstreamCredentialsSecretArn', () => {
      const { vault } = appFromContext({
        upstreamSchedule: 'rate(30 minutes)',
        candidateBases: { '': ['docker.io/library/ruby:2.7'] },
        upstreamCredentialsSecretArn: SECRET_ARN.replace('eu-west-1', 'us-east-1'),
      });
      const t = Template.fromStack(vault);
      t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(30 minutes)' });
      expect(envOf(t, 'VaultSnapshot').CANDIDATE_BASES).toBe('{"":["docker.io/library/ruby:2.7"]}');
      expect(envOf(t, 'VaultUpstream').UPSTREAM_CREDENTIALS_SECRET).toBe(
        SECRET_ARN.replace('eu-west-1', 'us-east-1'),
      );
    });

    it('reads upstreamCredentialsKeyArn: the readers of the secret may decrypt it with that key', () => {
      const key = KEY_ARN.replace('eu-west-1', 'us-east-1');
      const { vault } = appFromContext({
        upstreamCredentialsSecretArn: SECRET_ARN.replace('eu-west-1', 'us-east-1'),
        upstreamCredentialsKeyArn: key,
      });
      const t = Template.fromStack(vault);
      for (const fn of ['VaultUpstream', 'VaultSnapshot'])
        expect(statementsWith(t, `${fn}Role`, 'kms:Decrypt')).toContainEqual(
          expect.objectContaining({
            Resource: key,
            Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' } },
          }),
        );
    });

    it('rejects a bad schedule, candidate list or secret ARN, naming the key', () => {
      const problems = (context: Record<string, unknown>) => {
        try {
          appFromContext(context);
          return [];
        } catch (e) {
          if (e instanceof ImageVaultConfigError) return e.problems;
          throw e;
        }
      };
      expect(problems({ upstreamSchedule: 'hourly' })).toEqual([
        expect.stringMatching(/^upstreamSchedule "hourly" must be an EventBridge schedule/),
      ]);
      expect(problems({ candidateBases: '{"app/": ' })).toEqual([
        expect.stringMatching(/^candidateBases .* is not a JSON object/),
      ]);
      expect(problems({ candidateBases: '{"app/": ["ruby:2.7"]}' })).toEqual([]);
      expect(problems({ upstreamCredentialsSecretArn: 'imagevault/upstream' })).toEqual([
        expect.stringMatching(
          /^upstreamCredentialsSecretArn "imagevault\/upstream" must be a complete secret ARN/,
        ),
      ]);
      expect(
        problems({ upstreamCredentialsSecretArn: SECRET_ARN, upstreamCredentialsKeyArn: 'alias/upstream' }),
      ).toEqual([
        expect.stringMatching(/^upstreamCredentialsKeyArn "alias\/upstream" must be a KMS key ARN/),
      ]);
      expect(problems({ upstreamCredentialsKeyArn: KEY_ARN })).toEqual([
        'upstreamCredentialsKeyArn is set but upstreamCredentialsSecretArn is not: it is the key of that secret',
      ]);
    });
  });
});

/** A vault stack with an imported secret as upstreamCredentialsSecret, with its customer managed key if given. */
function vaultStackWithSecret(keyArn?: string) {
  const app = newApp();
  const stack = new Stack(app, 'Vault', { env: PRIMARY });
  const secret = keyArn
    ? secretsmanager.Secret.fromSecretAttributes(stack, 'UpstreamSecret', {
        secretCompleteArn: SECRET_ARN,
        encryptionKey: kms.Key.fromKeyArn(stack, 'UpstreamKey', keyArn),
      })
    : secretsmanager.Secret.fromSecretCompleteArn(stack, 'UpstreamSecret', SECRET_ARN);
  new ImageVault(stack, 'ImageVault', { upstreamCredentialsSecret: secret });
  return { template: () => Template.fromStack(stack) };
}
