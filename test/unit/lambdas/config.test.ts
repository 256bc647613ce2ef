import {
  ConfigError,
  boolean,
  candidateBases,
  identityConfig,
  provenanceRetention,
  integer,
  queueUrl,
  reconcileConfig,
  repositoryFilter,
  requiredString,
  scanConfig,
  snapshotConfig,
  timeouts,
  topicArn,
  upstreamConfig,
  inventoryConfig,
  retentionConfig,
} from '../../../lambdas/config';

const TOPIC = 'arn:aws:sns:us-west-2:123456789012:imagevault-alerts';
const QUEUE = 'https://sqs.us-west-2.amazonaws.com/123456789012/imagevault-snapshots';
const BASE = { VAULT_BUCKET: 'vault', VAULT_PREFIX: '', ALERT_TOPIC_ARN: TOPIC, REPOSITORY_PREFIXES: '*' };

describe('Function: snapshotConfig', () => {
  it('reads every variable, with defaults', () => {
    // Act
    const config = snapshotConfig(BASE);

    // Assess
    expect(config).toMatchObject({
      vaultBucket: 'vault',
      vaultPrefix: '',
      alertTopicArn: TOPIC,
      maxReceiveCount: 3,
      metricsPerRepository: false,
    });
    expect(config.repositories.matches('any')).toBe(true);
  });

  it('reads MAX_RECEIVE_COUNT, METRICS_PER_REPOSITORY and strips slashes from VAULT_PREFIX', () => {
    // Act
    const config = snapshotConfig({
      ...BASE,
      VAULT_PREFIX: '/team-a/',
      MAX_RECEIVE_COUNT: '5',
      METRICS_PER_REPOSITORY: 'true',
      REPOSITORY_PREFIXES: 'team-a/,base',
    });

    // Assess
    expect(config).toMatchObject({ vaultPrefix: 'team-a', maxReceiveCount: 5, metricsPerRepository: true });
    expect(config.repositories.matches('other')).toBe(false);
  });

  it('reads UPSTREAM_CREDENTIALS_SECRET for base detection, none when unset or empty', () => {
    // Prepare
    const secret = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:upstream-AbCdEf';

    // Act / Assess
    expect(snapshotConfig({ ...BASE, UPSTREAM_CREDENTIALS_SECRET: secret }).credentialsSecret).toBe(secret);
    expect(snapshotConfig({ ...BASE, UPSTREAM_CREDENTIALS_SECRET: '' }).credentialsSecret).toBeUndefined();
    expect(snapshotConfig(BASE).credentialsSecret).toBeUndefined();
  });

  it.each(['VAULT_BUCKET', 'ALERT_TOPIC_ARN', 'REPOSITORY_PREFIXES'])(
    'throws naming %s when it is missing',
    (name) => {
      // Prepare
      const env: Record<string, string> = { ...BASE };
      delete env[name];

      // Act + Assess
      expect(() => snapshotConfig(env)).toThrow(
        new ConfigError(name, 'environment variable is required but not set'),
      );
    },
  );

  it('treats a missing VAULT_PREFIX as the bucket root', () => {
    const { VAULT_PREFIX: _omit, ...env } = BASE;
    expect(snapshotConfig(env).vaultPrefix).toBe('');
  });
});

describe('Function: reconcileConfig', () => {
  it('reads QUEUE_URL and GRACE_PERIOD_SECONDS', () => {
    expect(reconcileConfig({ ...BASE, QUEUE_URL: QUEUE, GRACE_PERIOD_SECONDS: '0' })).toMatchObject({
      queueUrl: QUEUE,
      gracePeriodSeconds: 0,
    });
  });

  it('throws naming QUEUE_URL when it is missing', () => {
    expect(() => reconcileConfig(BASE)).toThrow(/^QUEUE_URL: environment variable is required/);
  });
});

describe('Function: typed helpers', () => {
  it('requiredString throws for an empty value', () => {
    expect(() => requiredString('X', { X: '  ' })).toThrow(ConfigError);
  });

  it('integer throws naming the variable and the value', () => {
    expect(() => integer('MAX_RECEIVE_COUNT', 3, 1, { MAX_RECEIVE_COUNT: '0' })).toThrow(
      'MAX_RECEIVE_COUNT: must be an integer of at least 1, got "0"',
    );
    expect(() => integer('N', 3, 1, { N: '2.5' })).toThrow(/N: must be an integer/);
    expect(integer('N', 3, 1, {})).toBe(3);
  });

  it('boolean accepts true/false, 1/0, yes/no', () => {
    expect(boolean('B', false, { B: 'YES' })).toBe(true);
    expect(boolean('B', true, { B: '0' })).toBe(false);
    expect(() => boolean('B', false, { B: 'maybe' })).toThrow('B: must be true or false, got "maybe"');
  });

  it('topicArn rejects what is not an SNS topic ARN', () => {
    expect(() =>
      topicArn('ALERT_TOPIC_ARN', { ALERT_TOPIC_ARN: 'arn:aws:sqs:us-west-2:123456789012:q' }),
    ).toThrow(/^ALERT_TOPIC_ARN: must be an SNS topic ARN/);
  });

  it('queueUrl rejects what is not a queue URL', () => {
    expect(() => queueUrl('QUEUE_URL', { QUEUE_URL: 'imagevault-snapshots' })).toThrow(
      /^QUEUE_URL: must be an SQS queue URL/,
    );
  });

  it('repositoryFilter names the variable', () => {
    expect(() => repositoryFilter('REPOSITORY_PREFIXES', { REPOSITORY_PREFIXES: 'Team-A' })).toThrow(
      /^REPOSITORY_PREFIXES: must be "\*" or a comma-separated list.*"Team-A"/,
    );
  });
});

describe('Function: candidateBases', () => {
  it('parses prefixes to reference lists, "" for every repository', () => {
    // Act
    const candidates = candidateBases('CANDIDATE_BASES', {
      CANDIDATE_BASES: JSON.stringify({
        '': ['docker.io/library/ruby:2.7'],
        'app/': ['registry.example.com/base:1'],
      }),
    });

    // Assess
    expect(candidates).toEqual({
      '': ['docker.io/library/ruby:2.7'],
      'app/': ['registry.example.com/base:1'],
    });
  });

  it.each([undefined, '', '  ', '{}'])('is undefined when unset or empty (%p)', (value) => {
    expect(candidateBases('CANDIDATE_BASES', { CANDIDATE_BASES: value })).toBeUndefined();
  });

  it.each([
    ['{"app/": ', /^CANDIDATE_BASES: must be a JSON object .* invalid JSON/],
    ['["ruby:2.7"]', /^CANDIDATE_BASES: must be a JSON object/],
    ['{"app/": "ruby:2.7"}', /^CANDIDATE_BASES: .*entry for "app\/" is not a list of strings/],
    [
      '{"app/": ["Not A Reference!"]}',
      /^CANDIDATE_BASES: the entry for "app\/" lists "Not A Reference!", not an image reference/,
    ],
  ])('rejects %s, naming the variable', (value, message) => {
    expect(() => candidateBases('CANDIDATE_BASES', { CANDIDATE_BASES: value })).toThrow(ConfigError);
    expect(() => candidateBases('CANDIDATE_BASES', { CANDIDATE_BASES: value })).toThrow(message);
  });

  it('is read by snapshotConfig', () => {
    expect(snapshotConfig({ ...BASE, CANDIDATE_BASES: '{"":["ruby:2.7"]}' }).candidates).toEqual({
      '': ['ruby:2.7'],
    });
    expect(snapshotConfig(BASE).candidates).toBeUndefined();
  });
});

describe('Function: upstreamConfig', () => {
  const ENV = { VAULT_BUCKET: 'vault', VAULT_PREFIX: '/team/vault/', ALERT_TOPIC_ARN: TOPIC };

  it('reads the vault and topic; no secret and no registry by default (REPOSITORY_PREFIXES not needed)', () => {
    expect(upstreamConfig(ENV)).toEqual({
      vaultBucket: 'vault',
      vaultPrefix: 'team/vault',
      alertTopicArn: TOPIC,
      timeouts: {},
      digestDays: 7,
    });
  });

  it('reads NEWER_VERSIONS and NEWER_VERSIONS_DIGEST_DAYS, naming what is wrong in them', () => {
    const rules = { '': { ignore: ['*-windowsservercore*'] }, 'team-a/': { upstreams: [] } };
    expect(
      upstreamConfig({ ...ENV, NEWER_VERSIONS: JSON.stringify(rules), NEWER_VERSIONS_DIGEST_DAYS: '14' }),
    ).toMatchObject({ versionRules: rules, digestDays: 14 });
    expect(upstreamConfig({ ...ENV, NEWER_VERSIONS: '{}' }).versionRules).toEqual({});
    expect(() => upstreamConfig({ ...ENV, NEWER_VERSIONS: '{"": {"intervalHours": 0}}' })).toThrow(
      /^NEWER_VERSIONS: NEWER_VERSIONS\[""\]\.intervalHours must be a whole number of hours of at least 1, got 0$/,
    );
    expect(() => upstreamConfig({ ...ENV, NEWER_VERSIONS: '{' })).toThrow(/^NEWER_VERSIONS: .*invalid JSON/);
    expect(() => upstreamConfig({ ...ENV, NEWER_VERSIONS_DIGEST_DAYS: '0' })).toThrow(
      /^NEWER_VERSIONS_DIGEST_DAYS: /,
    );
  });

  it('reads UPSTREAM_CREDENTIALS_SECRET and ECR_REGISTRY', () => {
    const secret = 'arn:aws:secretsmanager:us-west-2:123456789012:secret:upstream-AbCdEf';
    const registry = '123456789012.dkr.ecr.us-west-2.amazonaws.com';
    expect(
      upstreamConfig({ ...ENV, UPSTREAM_CREDENTIALS_SECRET: secret, ECR_REGISTRY: registry }),
    ).toMatchObject({ credentialsSecret: secret, ecrRegistry: registry });
    expect(upstreamConfig({ ...ENV, UPSTREAM_CREDENTIALS_SECRET: '' }).credentialsSecret).toBeUndefined();
  });

  it('names the variable that is wrong', () => {
    expect(() => upstreamConfig({ ...ENV, VAULT_BUCKET: undefined })).toThrow(/^VAULT_BUCKET: /);
    expect(() => upstreamConfig({ ...ENV, ALERT_TOPIC_ARN: 'topic' })).toThrow(/^ALERT_TOPIC_ARN: /);
    expect(() => upstreamConfig({ ...ENV, ECR_REGISTRY: 'https://x/y' })).toThrow(/^ECR_REGISTRY: /);
  });
});

describe('Function: provenanceRetention', () => {
  it('is undefined when neither variable is set', () => {
    expect(provenanceRetention({})).toBeUndefined();
    expect(identityConfig({ VAULT_BUCKET: 'b' }).provenanceRetention).toBeUndefined();
  });

  it('reads the mode (any case) and the days, for every function that appends to a provenance log', () => {
    const env = { PROVENANCE_LOCK_MODE: 'compliance', PROVENANCE_LOCK_DAYS: '3650' };
    const lock = { mode: 'COMPLIANCE', days: 3650 };
    expect(provenanceRetention(env)).toEqual(lock);
    expect(identityConfig({ VAULT_BUCKET: 'b', ...env }).provenanceRetention).toEqual(lock);
    expect(scanConfig({ VAULT_BUCKET: 'b', ...env }).provenanceRetention).toEqual(lock);
    expect(snapshotConfig({ ...BASE, ...env }).provenanceRetention).toEqual(lock);
    expect(reconcileConfig({ ...BASE, QUEUE_URL: QUEUE, ...env }).provenanceRetention).toEqual(lock);
  });

  it.each([
    [
      { PROVENANCE_LOCK_DAYS: '30' },
      'PROVENANCE_LOCK_MODE: must be GOVERNANCE or COMPLIANCE when PROVENANCE_LOCK_DAYS is set, but is not set',
    ],
    [
      { PROVENANCE_LOCK_MODE: 'LEGAL' },
      'PROVENANCE_LOCK_MODE: must be GOVERNANCE or COMPLIANCE, got "LEGAL"',
    ],
    [{ PROVENANCE_LOCK_MODE: 'GOVERNANCE' }, 'PROVENANCE_LOCK_DAYS: is required when PROVENANCE_LOCK_MODE'],
    [{ PROVENANCE_LOCK_MODE: 'GOVERNANCE', PROVENANCE_LOCK_DAYS: '0' }, 'must be an integer of at least 1'],
  ])('names the variable at fault: %j', (env, message) => {
    expect(() => provenanceRetention(env)).toThrow(message);
  });
});

describe('Function: timeouts', () => {
  const env = { IMAGEVAULT_TIMEOUT: '120', IMAGEVAULT_IDLE_TIMEOUT: '15' };
  const read = { requestTimeoutMs: 120_000, idleTimeoutMs: 15_000 };

  it('reads IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT as the CLI does, for every function', () => {
    expect(timeouts(env)).toEqual(read);
    expect(snapshotConfig({ ...BASE, ...env }).timeouts).toEqual(read);
    expect(reconcileConfig({ ...BASE, QUEUE_URL: QUEUE, ...env }).timeouts).toEqual(read);
    expect(upstreamConfig({ ...BASE, ...env }).timeouts).toEqual(read);
    expect(identityConfig({ VAULT_BUCKET: 'b', ...env }).timeouts).toEqual(read);
    expect(scanConfig({ VAULT_BUCKET: 'b', ...env }).timeouts).toEqual(read);
  });

  it("leaves the clients' defaults when unset", () => {
    expect(snapshotConfig(BASE).timeouts).toEqual({});
  });

  it('fails the cold start naming the variable and the value', () => {
    expect(() => snapshotConfig({ ...BASE, IMAGEVAULT_TIMEOUT: '0' })).toThrow(
      new ConfigError('IMAGEVAULT_TIMEOUT', 'must be a number of seconds greater than 0, got "0"'),
    );
    expect(() => identityConfig({ VAULT_BUCKET: 'b', IMAGEVAULT_IDLE_TIMEOUT: 'soon' })).toThrow(
      /^IMAGEVAULT_IDLE_TIMEOUT: must be a number of seconds greater than 0, got "soon"$/,
    );
  });
});

describe('Function: inventoryConfig', () => {
  const INV = {
    AWS_REGION: 'eu-west-1',
    VAULT_BUCKET: 'vault',
    VAULT_PREFIX: '/team/',
    QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q',
    REPOSITORY_PREFIXES: 'shop/',
  };

  it('reads the regions (its own first, once) and the clusters', () => {
    const c = inventoryConfig({
      ...INV,
      INVENTORY_REGIONS: 'us-east-1, eu-west-1',
      EKS_CLUSTERS: 'prod-eks,stage',
    });
    expect(c).toMatchObject({
      vaultPrefix: 'team',
      region: 'eu-west-1',
      regions: ['eu-west-1', 'us-east-1'],
      eksClusters: ['prod-eks', 'stage'],
    });
    expect(c.repositories.matches('shop/api')).toBe(true);
    expect(inventoryConfig(INV)).toMatchObject({ regions: ['eu-west-1'], eksClusters: [] });
  });

  it('names the variable and the bad values', () => {
    expect(() => inventoryConfig({ ...INV, INVENTORY_REGIONS: 'mars' })).toThrow(
      'INVENTORY_REGIONS: not AWS regions: "mars"',
    );
    expect(() => inventoryConfig({ ...INV, EKS_CLUSTERS: 'ok,-no' })).toThrow(
      'EKS_CLUSTERS: not EKS cluster names: "-no"',
    );
    expect(() => inventoryConfig({ ...INV, QUEUE_URL: undefined })).toThrow(/^QUEUE_URL: /);
  });
});

describe('Function: retentionConfig', () => {
  const RET = { VAULT_BUCKET: 'vault', RETENTION_POLICY: '{"rules":[{"prefix":"","keepLast":3}]}' };

  it('reads the policy and the grace period', () => {
    expect(retentionConfig({ ...RET, GC_GRACE_HOURS: '48' })).toMatchObject({
      policy: { rules: [{ prefix: '', keepLast: 3 }] },
      graceMs: 48 * 3_600_000,
    });
    expect(retentionConfig(RET).graceMs).toBe(24 * 3_600_000);
  });

  it('refuses a bad policy at start-up, naming every problem', () => {
    expect(() =>
      retentionConfig({
        ...RET,
        RETENTION_POLICY: '{"rules":[{"prefix":"","keepWithin":"3x","keepLast":0}]}',
      }),
    ).toThrow(
      'RETENTION_POLICY: rules[0].keepLast 0: Too small: expected number to be >=1; rules[0].keepWithin "3x": is not a duration (e.g. 30d, 12h, 1y2w)',
    );
    expect(() => retentionConfig({ ...RET, RETENTION_POLICY: undefined })).toThrow(
      /^RETENTION_POLICY: .*not set/,
    );
    expect(() => retentionConfig({ ...RET, RETENTION_POLICY: '{' })).toThrow(/^RETENTION_POLICY: not JSON/);
  });
});
