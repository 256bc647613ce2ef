import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import cdkJson from '../../cdk.json';
import { CONTEXT_DEFAULTS, ImageVaultConfigError, readAppConfig } from '../../lib/infra';
import { appFromContext } from './support';

/** readAppConfig over a plain context object and environment. */
const config = (context: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) =>
  readAppConfig((key) => context[key], env);
const problemsOf = (context: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
  try {
    config(context, env);
    return [];
  } catch (e) {
    if (e instanceof ImageVaultConfigError) return e.problems;
    throw e;
  }
};

describe('app context (cdk.json)', () => {
  it('has the documented defaults in cdk.json', () => {
    expect(cdkJson.context).toMatchObject({
      replicaRegion: 'us-west-2',
      repositories: ['*'],
      alertEmails: [],
      reconcileSchedule: 'rate(6 hours)',
      upstreamSchedule: 'rate(1 hour)',
      candidateBases: {},
      upstreamCredentialsSecretArn: null,
      upstreamCredentialsKeyArn: null,
      objectLock: 'off',
      objectLockDays: null,
      noncurrentTransitionDays: 30,
      noncurrentExpirationDays: null,
      vaultPrefix: '',
      provenanceTrail: 'existing',
      provenanceRetentionDays: null,
      reserveConcurrency: true,
      inventory: true,
      inventorySchedule: 'rate(15 minutes)',
      inventoryRegions: [],
      eksClusters: [],
      retentionPolicy: null,
      retentionSchedule: null,
      gcGraceHours: null,
      autoRestoreInUse: false,
    });
  });

  it('carries the recommended feature flags of the installed aws-cdk-lib', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const recommended = require('aws-cdk-lib/recommended-feature-flags.json') as Record<string, unknown>;
    expect(cdkJson.context).toMatchObject(recommended);
  });

  it('runs the app with tsx', () => {
    expect(cdkJson.app).toBe('npx tsx bin/app.ts');
  });

  it('defaults every key when the context is empty, the region falling back to us-east-1', () => {
    expect(config()).toEqual({
      account: undefined,
      region: 'us-east-1',
      replicaRegion: CONTEXT_DEFAULTS.replicaRegion,
      repositories: ['*'],
      alertEmails: [],
      reconcileSchedule: 'rate(6 hours)',
      upstreamSchedule: 'rate(1 hour)',
      objectLock: 'off',
      objectLockDays: undefined,
      noncurrentTransitionDays: 30,
      vaultPrefix: '',
      provenanceTrail: 'existing',
      reserveConcurrency: true,
      inventory: true,
      inventorySchedule: 'rate(15 minutes)',
      autoRestoreInUse: false,
    });
  });

  it('reads reserveConcurrency as a boolean or its text (-c reserveConcurrency=false), naming a bad value', () => {
    expect(config({ reserveConcurrency: 'false' }).reserveConcurrency).toBe(false);
    expect(config({ reserveConcurrency: false }).reserveConcurrency).toBe(false);
    expect(config({ reserveConcurrency: 'true' }).reserveConcurrency).toBe(true);
    expect(problemsOf({ reserveConcurrency: 'no' })).toEqual([
      'reserveConcurrency "no" must be true or false',
    ]);
  });

  it('takes account and region from the CDK CLI (CDK_DEFAULT_*)', () => {
    expect(
      config({}, { CDK_DEFAULT_ACCOUNT: '111122223333', CDK_DEFAULT_REGION: 'eu-west-1' }),
    ).toMatchObject({
      account: '111122223333',
      region: 'eu-west-1',
    });
  });

  it('lets the region context override CDK_DEFAULT_REGION', () => {
    expect(config({ region: 'ap-southeast-2' }, { CDK_DEFAULT_REGION: 'eu-west-1' }).region).toBe(
      'ap-southeast-2',
    );
  });

  it('reads lists given with -c as JSON or comma-separated strings', () => {
    expect(config({ repositories: '["team-a/","payments"]' }).repositories).toEqual(['team-a/', 'payments']);
    expect(config({ alertEmails: 'a@example.com, b@example.com' }).alertEmails).toEqual([
      'a@example.com',
      'b@example.com',
    ]);
  });

  it('reads numbers given with -c as strings', () => {
    expect(
      config({ objectLock: 'governance', objectLockDays: '90', noncurrentTransitionDays: '60' }),
    ).toMatchObject({
      objectLockDays: 90,
      noncurrentTransitionDays: 60,
    });
  });

  it('rejects a replica region equal to the primary region', () => {
    expect(problemsOf({ replicaRegion: 'eu-west-1' }, { CDK_DEFAULT_REGION: 'eu-west-1' })).toEqual([
      expect.stringMatching(/^replicaRegion "eu-west-1" is the primary region too/),
    ]);
  });

  it('rejects a replicaRegion that is not a region', () => {
    expect(problemsOf({ replicaRegion: 'Frankfurt' })).toEqual([
      `replicaRegion "Frankfurt" is not an AWS region like 'eu-west-1'`,
    ]);
  });

  it('rejects empty repositories', () => {
    expect(problemsOf({ repositories: [] })).toEqual([expect.stringMatching(/^repositories is empty/)]);
  });

  it('rejects repositories that are not a list', () => {
    expect(problemsOf({ repositories: 5 })).toEqual(['repositories 5 must be a list of strings']);
    expect(problemsOf({ repositories: '["a"' })).toEqual(['repositories "[\\"a\\"" is not a JSON list']);
  });

  it('rejects a bad e-mail address', () => {
    expect(problemsOf({ alertEmails: ['oncall'] })).toEqual([
      'alertEmails entry "oncall" is not an e-mail address',
    ]);
  });

  it.each(['every 6 hours', 'rate(1 hours)', 'rate(6 hour)', 'cron(0 6 * *)'])(
    'rejects reconcileSchedule %j',
    (schedule) => {
      expect(problemsOf({ reconcileSchedule: schedule })).toEqual([
        expect.stringMatching(/^reconcileSchedule .* must be an EventBridge schedule/),
      ]);
    },
  );

  it.each(['rate(1 hour)', 'rate(30 minutes)', 'rate(1 day)', 'cron(0 */6 * * ? *)'])(
    'accepts reconcileSchedule %j',
    (schedule) => {
      expect(problemsOf({ reconcileSchedule: schedule })).toEqual([]);
    },
  );

  it('rejects objectLockDays without objectLock, naming the key', () => {
    expect(problemsOf({ objectLockDays: 30 })).toEqual([
      "objectLockDays (30) is set but objectLock is 'off': set objectLock too, or drop it",
    ]);
  });

  it('reads provenanceTrail and provenanceRetentionDays (strings from -c too)', () => {
    expect(
      config({ provenanceTrail: 'create', objectLock: 'compliance', provenanceRetentionDays: '3650' }),
    ).toMatchObject({ provenanceTrail: 'create', provenanceRetentionDays: 3650 });
  });

  it('rejects a bad provenanceTrail, and provenanceRetentionDays without Object Lock or below its days', () => {
    expect(problemsOf({ provenanceTrail: 'org' })).toEqual([
      `provenanceTrail "org" must be 'create' or 'existing'`,
    ]);
    expect(problemsOf({ provenanceRetentionDays: 400 })).toEqual([
      "provenanceRetentionDays (400) is set but objectLock is 'off': records can only be locked in a bucket with Object Lock",
    ]);
    expect(problemsOf({ objectLock: 'governance', provenanceRetentionDays: 10 })).toEqual([
      'provenanceRetentionDays (10) is shorter than objectLockDays (30): a record must stay locked at least as long as what it describes',
    ]);
  });

  it('rejects an unknown objectLock mode', () => {
    expect(problemsOf({ objectLock: 'on' })).toEqual([
      `objectLock "on" must be one of 'off', 'governance', 'compliance'`,
    ]);
  });

  it('reads noncurrentExpirationDays and passes it to both buckets', () => {
    expect(config({ noncurrentExpirationDays: '14' }).noncurrentExpirationDays).toBe(14);
    expect(problemsOf({ noncurrentExpirationDays: '0' })).toEqual([
      'noncurrentExpirationDays 0 must be a whole number from 1 to 36500',
    ]);
    const { vault, replica } = appFromContext({ noncurrentExpirationDays: 14 });
    for (const stack of [vault, replica])
      Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ Prefix: 'blobs/', NoncurrentVersionExpiration: { NoncurrentDays: 14 } }),
          ]),
        },
      });
  });

  it('rejects noncurrentTransitionDays that are not a number', () => {
    expect(problemsOf({ noncurrentTransitionDays: 'soon' })).toEqual([
      'noncurrentTransitionDays "soon" must be a whole number',
    ]);
  });

  it('rejects a bad vaultPrefix', () => {
    expect(problemsOf({ vaultPrefix: 'a//b' })).toHaveLength(1);
  });

  it('reports all problems together, naming the context', () => {
    expect(() => config({ repositories: [], objectLockDays: 3, replicaRegion: 'x' })).toThrow(
      /^Invalid imagevault context \(cdk\.json or -c\):\n( {2}- .*\n){2} {2}- .*$/,
    );
  });
});

describe('the app (bin/app.ts)', () => {
  it('builds the replica stack and the vault stack from context', () => {
    const { vault, replica } = appFromContext({
      repositories: ['team-a/'],
      alertEmails: ['oncall@example.com'],
      objectLock: 'governance',
      objectLockDays: 7,
      reconcileSchedule: 'rate(1 day)',
      provenanceTrail: 'create',
      provenanceRetentionDays: 400,
    });
    expect([replica.stackName, vault.stackName]).toEqual(['ImageVaultReplica', 'ImageVault']);
    const t = Template.fromStack(vault);
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)' });
    t.resourceCountIs('AWS::SNS::Subscription', 1);
    t.resourceCountIs('AWS::CloudTrail::Trail', 1);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ PROVENANCE_LOCK_MODE: 'GOVERNANCE', PROVENANCE_LOCK_DAYS: '400' }),
      },
    });
    // Object Lock on both sides, or replication of locked versions would fail.
    for (const stack of [vault, replica]) {
      Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 7 } },
        },
      });
    }
  });

  it('bundles the six handlers (retention off) locally with esbuild: minified, with source maps, no Docker', () => {
    // GIVEN the app as `cdk synth` runs it, its Lambda code bundled by npm run build
    const { app, vault } = appFromContext({});
    // WHEN
    const assembly = app.synth();
    // THEN each function's asset is a bundle with its source map
    const functions = Template.fromStack(vault).findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs24.x', Architectures: ['arm64'] },
    });
    const keys = Object.values(functions)
      .map((f) =>
        (f as { Properties: { Code: { S3Key: string } } }).Properties.Code.S3Key.replace(/\.zip$/, ''),
      )
      .filter((hash) => existsSync(path.join(assembly.directory, `asset.${hash}`, 'index.js.map')));
    expect(keys).toHaveLength(6);
    for (const hash of keys) {
      expect(readdirSync(path.join(assembly.directory, `asset.${hash}`)).sort()).toEqual([
        'index.js',
        'index.js.map',
      ]);
    }
  });
});
