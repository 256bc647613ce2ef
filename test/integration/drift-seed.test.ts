/**
 * The seed incident end to end, through what users run: an internal app built on ruby:2.7; upstream republishes
 * ruby:2.7 with a new OS layer. `imagevault drift check` says upstream moved (exit 3, the app named); the app is
 * rebuilt on the new base and pushed; `imagevault snapshot` reports the build drift with the changed layer and the
 * history lines; the snapshot Lambda, given the same push as an ECR event, publishes a build-drift alert once.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { DirectoryObjectStore, Vault } from '../../lib/content';
import { staticCredentials } from '../../lib/registry/auth';
import { Registries } from '../../lib/services';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { createSnapshotHandler } from '../../lib/aws/handlers/snapshot';
import { LayoutBuilder, pushLayout, type BuiltImage, type Layer } from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { REGION, ecrEvent, sqsRecord } from '../unit/aws/ecr-events';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';

describe('the seed incident: ruby:2.7 republished under a running app', () => {
  let registry: string;
  let layout: LayoutBuilder;
  const l: Record<string, Layer> = {};
  const img: Record<string, BuiltImage> = {};
  const store = `file://${tempDir('imagevault-seed-')}`;

  const ruby = (name: string, openssl: string, os: Layer) =>
    layout.image({
      name,
      layers: [l.rootfs, os],
      history: [{ created_by: 'ADD rootfs' }, { created_by: `RUN apt-get install openssl=${openssl}` }],
    });
  const app = (name: string, base: BuiltImage, openssl: string, os: Layer) =>
    layout.image({
      name,
      layers: [l.rootfs, os, l.app],
      history: [
        { created_by: 'ADD rootfs' },
        { created_by: `RUN apt-get install openssl=${openssl}` },
        { created_by: 'COPY . /app' },
      ],
      annotations: { [BASE_NAME]: `${registry}/base/ruby:2.7`, [BASE_DIGEST]: base.digest },
    });
  const push = (image: BuiltImage, target: string) =>
    pushLayout(layout.dir, image.name, `${registry}/${target}`);

  beforeAll(async () => {
    registry = startRegistry(`seed-${Date.now()}`);
    layout = new LayoutBuilder(tempDir('imagevault-seed-layout-'));
    for (const seed of ['rootfs', 'openssl-1.1', 'openssl-3.0', 'app'])
      l[seed] = await layout.layer({ sizeBytes: 4096, seed: `seed-${seed}`, gzip: true });
    img.ruby1 = await ruby('ruby-1', '1.1', l['openssl-1.1']);
    img.web1 = await app('web-1', img.ruby1, '1.1', l['openssl-1.1']);
    await push(img.ruby1, 'base/ruby:2.7');
    await push(img.web1, 'app/web:prod');
  });

  it('1. snapshot records the base; drift check finds nothing yet (exit 0)', async () => {
    const s = await cliJson<{ buildDrift: unknown[] }>(
      '--store',
      store,
      'snapshot',
      `${registry}/app/web:prod`,
    );
    expect(s.buildDrift).toEqual([]);
    const check = await cli('--store', store, 'drift', 'check');
    expect(check.code).toBe(0);
    // provenance answers "has that base moved since?" from what the check recorded
    const shown = await cli('--store', store, 'provenance', 'show', 'app/web:prod');
    expect(shown.stdout).toContain(
      `upstream:  linux/amd64: ${registry}/base/ruby:2.7 UNCHANGED (tag now ${img.ruby1.digest.slice(0, 19)}…`,
    );
  });

  it('2. upstream republishes ruby:2.7: drift check exits 3 and names the app built on the old digest', async () => {
    img.ruby2 = await ruby('ruby-2', '3.0', l['openssl-3.0']);
    await push(img.ruby2, 'base/ruby:2.7');
    const check = await cli('--store', store, 'drift', 'check');
    expect(check.code).toBe(3);
    expect(check.stdout).toContain(`${registry}/base/ruby:2.7`);
    expect(check.stdout).toContain('app/web');
    expect(check.stdout).toContain('linux/amd64: base layers changed at 1');
    expect(check.stdout).toContain('- RUN apt-get install openssl=1.1');
    expect(check.stdout).toContain('+ RUN apt-get install openssl=3.0');
    const shown = await cliJson<{ upstream: { platform: string; status: string; digest: string }[] }>(
      '--store',
      store,
      'provenance',
      'show',
      '--json',
      'app/web:prod',
    );
    expect(shown.upstream).toEqual([
      expect.objectContaining({ platform: 'linux/amd64', status: 'moved', digest: img.ruby2.digest }),
    ]);
  });

  it('3. the rebuild on the new base: snapshot reports build drift with the layer and history lines', async () => {
    img.web2 = await app('web-2', img.ruby2, '3.0', l['openssl-3.0']);
    await push(img.web2, 'app/web:prod');
    const r = await cli('--store', store, 'snapshot', `${registry}/app/web:prod`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/BUILD DRIFT app\/web:prod \(linux\/amd64\): base .*base\/ruby:2\.7/);
    expect(r.stdout).toContain('base layers changed at 1');
    expect(r.stdout).toContain('- RUN apt-get install openssl=1.1');
    expect(r.stdout).toContain('+ RUN apt-get install openssl=3.0');
  });

  it('3b. with the app rebuilt, drift check is clean again: only images a tag still points to count', async () => {
    const check = await cli('--store', store, 'drift', 'check');
    expect(check.stdout).not.toContain('app/web@' + img.web2.digest);
    expect(check.code).toBe(0);
  });

  it('4. the snapshot Lambda, given the same pushes as ECR events, alerts once (not on a duplicate delivery)', async () => {
    // Prepare: a fresh vault, SNS mocked, the real registry standing in for ECR's data plane
    const sns = mockClient(SNSClient);
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const vault = new Vault(new DirectoryObjectStore(tempDir('imagevault-seed-lambda-')));
    await vault.init();
    const handler = createSnapshotHandler({
      vault,
      registries: new Registries({ credentials: staticCredentials({}) }),
      publisher: new SnsAlertPublisher(new SNSClient({ region: REGION }), 'arn:aws:sns:x:1:t'),
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'test', serviceName: 'snapshot' }),
      registryFor: () => registry,
    });
    const pushEvent = (id: string, digest: string, time: string) =>
      sqsRecord(ecrEvent({ id, repository: 'app/web', digest, tag: 'prod', time }));
    // Act
    await handler({ Records: [pushEvent('e1', img.web1.digest, '2026-03-01T10:00:00Z')] });
    const second = pushEvent('e2', img.web2.digest, '2026-03-02T10:00:00Z');
    const r = await handler({ Records: [second] });
    await handler({ Records: [second] }); // duplicate delivery
    // Assess
    expect(r.batchItemFailures).toEqual([]);
    const alerts = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(alerts).toHaveLength(1);
    expect(alerts[0].MessageAttributes?.kind?.StringValue).toBe('build-drift');
    expect(alerts[0].Subject).toMatch(/build drift/i);
    expect(alerts[0].Message).toContain('RUN apt-get install openssl=3.0');
    expect(alerts[0].Message).toContain(img.ruby1.digest);
    sns.restore();
  });
});
