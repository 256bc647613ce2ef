import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import {
  MAX_SUBJECT_LENGTH,
  formatAlert,
  type BuildDriftAlert,
  type RegistryDriftAlert,
  type UpstreamMovedAlert,
} from '../../../lib/alerts';
import { SnsAlertPublisher } from '../../../lib/aws/sns-alerts';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const STORE = 's3://imagevault-vault-123456789012/prod';
const d = (seed: string) => `sha256:${seed.repeat(64 / seed.length)}`;
const OLD_INDEX = d('abcd1234');
const NEW_INDEX = d('ef015678');
const OLD_AMD64 = d('1111aaaa');
const NEW_AMD64 = d('2222bbbb');
const APP = d('0123fedc');
const API = d('4567cdef');

const layer = (seed: string, size: number) => ({
  digest: d(seed),
  diffId: d(seed.split('').reverse().join('')),
  size,
});

const upstream: UpstreamMovedAlert = {
  kind: 'upstream-moved',
  reference: 'docker.io/library/ruby:2.7',
  oldDigest: OLD_INDEX,
  newDigest: NEW_INDEX,
  platforms: [{ platform: 'linux/amd64', oldManifest: OLD_AMD64, newManifest: NEW_AMD64 }],
  affected: [
    { repository: 'app', digest: APP, tags: ['1.4', 'prod'], platforms: ['linux/amd64'] },
    { repository: 'team-a/api', digest: API, tags: [], platforms: ['linux/amd64'] },
  ],
  diff: [
    {
      platform: 'linux/amd64',
      layers: [
        {
          position: 0,
          change: 'changed',
          old: layer('aaaa0000', 30_000_000),
          new: layer('bbbb0000', 31_000_000),
        },
      ],
      history: [
        '- /bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in /',
        '+ /bin/sh -c #(nop) ADD file:9f3fa1d7e7c0b2d8c4f6a2e5b1d3c7a9e8f0b2d4c6a8e0f2b4d6c8a0e2f4b6d8 in /',
        '  /bin/sh -c #(nop)  CMD ["bash"]',
      ],
    },
  ],
  detectedAt: '2026-03-03T06:00:00.000Z',
  registry: REGISTRY,
  store: STORE,
};

const build: BuildDriftAlert = {
  kind: 'build-drift',
  image: { registry: REGISTRY, repository: 'app', tag: 'prod', digest: APP },
  previous: { digest: API, pushedAt: '2026-03-01T10:00:00.000Z' },
  base: {
    reference: 'docker.io/library/ruby:2.7',
    platform: 'linux/amd64',
    oldDigest: OLD_AMD64,
    newDigest: NEW_AMD64,
  },
  layers: [
    {
      position: 0,
      change: 'changed',
      old: layer('aaaa0000', 30_000_000),
      new: layer('bbbb0000', 31_000_000),
    },
    { position: 3, change: 'added', new: layer('cccc0000', 1024) },
  ],
  history: ['- ADD file:old in /', '+ ADD file:new in /', '  CMD ["irb"]'],
  detectedAt: '2026-03-02T09:00:00.000Z',
  store: STORE,
};

const retagged: RegistryDriftAlert = {
  kind: 'registry-drift',
  image: { registry: REGISTRY, repository: 'app', tag: 'prod', digest: APP },
  change: 'retagged',
  detectedAt: '2026-03-04T00:00:00.000Z',
  lastSnapshot: { digest: API, snapshottedAt: '2026-03-01T10:00:05.123Z' },
  store: STORE,
};

describe('Function: formatAlert (drift kinds)', () => {
  it('formats an upstream move with the affected images, the diff and the next steps', () => {
    // Act
    const f = formatAlert(upstream);

    // Assess
    expect(f.subject).toBe(
      '[imagevault] upstream moved: docker.io/library/ruby:2.7 (sha256:abcd1234 -> sha256:ef015678)',
    );
    expect(f.attributes).toEqual({ kind: 'upstream-moved', repository: '*', severity: 'warning' });
    expect(f.message).toContain(`FROM ruby:2.7@${OLD_INDEX}`);
    expect(f.message).toContain(`imagevault restore app@${APP} --to ${REGISTRY}/app:1.4 --store ${STORE}`);
    expect(f.message).toMatchSnapshot();
  });

  it('names the one affected repository in the attributes and keeps long references within the subject limit', () => {
    // Prepare
    const long: UpstreamMovedAlert = {
      ...upstream,
      reference: `registry.example.com/${'very-long-team-name/'.repeat(4)}base-image:2026.03.01-with-a-long-tag`,
      affected: [upstream.affected[0]],
      diff: undefined,
      registry: undefined,
    };

    // Act
    const f = formatAlert(long);

    // Assess
    expect(f.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(f.subject).toMatch(
      /^\[imagevault\] upstream moved: \.\.\..*-with-a-long-tag \(sha256:abcd1234 -> sha256:ef015678\)$/,
    );
    expect(f.attributes.repository).toBe('app');
    expect(f.message).toContain('layer and history diff not available');
    expect(f.message).toContain(`--to <registry>/app:1.4`);
  });

  it('formats build drift with the changed layer positions and history lines', () => {
    // Act
    const f = formatAlert(build);

    // Assess
    expect(f.subject).toBe('[imagevault] build DRIFT: app:prod (sha256:0123fedc0123...)');
    expect(f.attributes).toEqual({ kind: 'build-drift', repository: 'app', severity: 'warning' });
    expect(f.message).toMatchSnapshot();
  });

  it('formats registry drift, critical when nothing can be restored', () => {
    // Act
    const moved = formatAlert(retagged);
    const gone = formatAlert({ ...retagged, change: 'deleted', lastSnapshot: undefined });

    // Assess
    expect(moved.subject).toBe('[imagevault] registry DRIFT, tag moved: app:prod (sha256:0123fedc0123...)');
    expect(moved.attributes.severity).toBe('warning');
    expect(moved.message).toMatchSnapshot();
    expect(gone.attributes).toEqual({ kind: 'registry-drift', repository: 'app', severity: 'critical' });
    expect(gone.message).toContain('the vault never snapshotted it');
  });

  it('ends every message with the alert as JSON', () => {
    for (const alert of [upstream, build, retagged]) {
      const json = formatAlert(alert).message.split('--- alert as JSON (for machines) ---\n')[1];
      expect(JSON.parse(json)).toEqual({ version: 1, ...alert });
    }
  });
});

describe('Class: SnsAlertPublisher (drift kinds)', () => {
  it('publishes kind, repository and severity as message attributes', async () => {
    // Prepare
    const sns = mockClient(SNSClient);
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const publisher = new SnsAlertPublisher(
      new SNSClient({ region: 'eu-west-1' }),
      'arn:aws:sns:eu-west-1:1:t',
    );

    // Act
    await publisher.publish(upstream);

    // Assess
    const input = sns.commandCalls(PublishCommand)[0].args[0].input;
    expect(input.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'upstream-moved' },
      repository: { DataType: 'String', StringValue: '*' },
      severity: { DataType: 'String', StringValue: 'warning' },
    });
    sns.restore();
  });
});
