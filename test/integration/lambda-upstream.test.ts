/**
 * The scheduled upstream check as the Lambda runs it (createUpstreamCheckHandler): a local registry plays upstream,
 * an app built on its base:2.7 is snapshotted into a directory vault (base detected from its annotations), and SNS
 * is mocked. Unchanged upstream → no alert; base:2.7 republished → exactly one `upstream-moved` alert across two
 * runs.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { openVault } from '../../lib/content/open';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { createUpstreamCheckHandler, type UpstreamCheckHandler } from '../../lib/aws/handlers/upstream';
import { LayoutBuilder, pushLayout, type BuiltImage, type Layer } from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cliJson } from './cli-helpers';

const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:imagevault-alerts';
const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:imagevault-upstream';

describe('Lambda: upstream check (local registry as upstream, directory vault, SNS mocked)', () => {
  const sns = mockClient(SNSClient);
  let registry: string;
  let layout: LayoutBuilder;
  let handler: UpstreamCheckHandler;
  const l: Record<string, Layer> = {};
  const img: Record<string, BuiltImage> = {};
  const storeDir = tempDir('imagevault-lambda-upstream-');

  const base = (name: string, os: Layer, line: string) =>
    layout.image({
      name,
      layers: [l.rootfs, os],
      history: [{ created_by: 'ADD rootfs' }, { created_by: line }],
    });
  const push = (image: BuiltImage, target: string) =>
    pushLayout(layout.dir, image.name, `${registry}/${target}`);
  const published = () => sns.commandCalls(PublishCommand).map((c) => c.args[0].input);

  beforeAll(async () => {
    registry = startRegistry(`lambda-upstream-${Date.now()}`);
    layout = new LayoutBuilder(tempDir('imagevault-lambda-upstream-layout-'));
    for (const seed of ['rootfs', 'os-1', 'os-2', 'app'])
      l[seed] = await layout.layer({ sizeBytes: 4096, seed: `lambda-upstream-${seed}`, gzip: true });
    img.base1 = await base('base-1', l['os-1'], 'RUN apt-get install openssl=1.1');
    img.app = await layout.image({
      name: 'app-1',
      layers: [l.rootfs, l['os-1'], l.app],
      history: [
        { created_by: 'ADD rootfs' },
        { created_by: 'RUN apt-get install openssl=1.1' },
        { created_by: 'COPY . /app' },
      ],
      annotations: { [BASE_NAME]: `${registry}/base/os:2.7`, [BASE_DIGEST]: img.base1.digest },
    });
    await push(img.base1, 'base/os:2.7');
    await push(img.app, 'app/web:prod');
    await cliJson('--store', `file://${storeDir}`, 'snapshot', `${registry}/app/web:prod`);

    handler = createUpstreamCheckHandler({
      vault: await openVault(storeDir),
      publisher: new SnsAlertPublisher(new SNSClient({ region: 'eu-west-1' }), TOPIC),
      store: `file://${storeDir}`,
    });
  });

  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  });

  it('publishes nothing while upstream is unchanged, at one HEAD and no GET', async () => {
    // Act
    const summary = await handler({}, { invokedFunctionArn: FUNCTION_ARN });

    // Assess
    expect(summary).toMatchObject({
      references: 1,
      current: 1,
      moved: 0,
      deferred: 0,
      failed: 0,
      alerts: { sent: 0, alreadySent: 0, notSent: 0 },
      requests: { head: 1, get: 0 },
    });
    expect(published()).toEqual([]);
  });

  it('publishes exactly one upstream-moved alert across two runs when the tag is republished', async () => {
    // Prepare: upstream republishes base/os:2.7 with a new OS layer
    img.base2 = await base('base-2', l['os-2'], 'RUN apt-get install openssl=3.0');
    await push(img.base2, 'base/os:2.7');

    // Act
    const first = await handler({}, { invokedFunctionArn: FUNCTION_ARN });
    const second = await handler({}, { invokedFunctionArn: FUNCTION_ARN });

    // Assess
    expect(first).toMatchObject({ moved: 1, alerts: { sent: 1, alreadySent: 0 } });
    expect(second).toMatchObject({ moved: 1, alerts: { sent: 0, alreadySent: 1 } });
    const messages = published();
    expect(messages).toHaveLength(1);
    const [msg] = messages;
    expect(msg.TopicArn).toBe(TOPIC);
    expect(msg.MessageAttributes?.kind).toEqual({ DataType: 'String', StringValue: 'upstream-moved' });
    expect(msg.Subject).toContain('base/os:2.7');
    // the affected app, the history lines that changed, and a restore command into the function's ECR
    expect(msg.Message).toContain('app/web');
    expect(msg.Message).toContain('openssl=3.0');
    expect(msg.Message).toContain('123456789012.dkr.ecr.eu-west-1.amazonaws.com/app/web');
    expect(msg.Message).toContain(`--store file://${storeDir}`);
  });
});
