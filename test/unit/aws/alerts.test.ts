import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { MAX_SUBJECT_LENGTH, formatAlert, type Alert, type ReconcileGap } from '../../../lib/alerts';
import { SnsAlertPublisher } from '../../../lib/aws/sns-alerts';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const STORE = 's3://imagevault-vault-123456789012/prod';
const D1 = `sha256:${'abcd1234'.repeat(8)}`;
const D2 = `sha256:${'0123fedc'.repeat(8)}`;

const failed: Alert = {
  kind: 'snapshot-failed',
  image: { registry: REGISTRY, repository: 'app', tag: '1.4', digest: D1 },
  reason: 'http://127.0.0.1/v2/app/blobs/sha256:... GET: HTTP 404 BLOB_UNKNOWN',
  attempts: 3,
  event: { id: '13cde686-328b-6117-af20-0e5566167482', origin: 'ecr-event', time: '2026-03-01T10:00:00Z' },
  store: STORE,
};

const deleted: Alert = {
  kind: 'image-deleted',
  image: { registry: REGISTRY, repository: 'team-a/api', tag: 'prod', digest: D1 },
  deletedAt: '2026-03-02T08:15:00Z',
  event: { id: 'dd3b46cb-2c74-f49e-393b-28286b67279d', origin: 'ecr-event' },
  lastSnapshot: { digest: D1, snapshottedAt: '2026-03-01T10:00:05.123Z' },
  store: STORE,
};

const gap = (tag: string, vault?: ReconcileGap['vault']): ReconcileGap => ({
  image: { registry: REGISTRY, repository: 'app', tag, digest: D2 },
  pushedAt: '2026-02-27T09:00:00.000Z',
  ...(vault && { vault }),
});

describe('Function: formatAlert', () => {
  it('formats a snapshot failure', () => {
    // Act
    const f = formatAlert(failed);

    // Assess
    expect(f.subject).toBe('[imagevault] snapshot FAILED: app:1.4 (sha256:abcd1234abcd...)');
    expect(f.attributes).toEqual({ kind: 'snapshot-failed', repository: 'app', severity: 'critical' });
    expect(f.message).toMatchSnapshot();
  });

  it('formats a delete with the snapshot to restore', () => {
    // Act
    const f = formatAlert(deleted);

    // Assess
    expect(f.subject).toBe('[imagevault] image DELETED in ECR: team-a/api:prod (sha256:abcd1234abcd...)');
    expect(f.attributes.severity).toBe('warning');
    expect(f.message).toContain(
      `imagevault restore team-a/api@${D1} --to ${REGISTRY}/team-a/api:prod --store ${STORE}`,
    );
    expect(f.message).toMatchSnapshot();
  });

  it('formats a delete of an image the vault never held as critical', () => {
    // Act
    const f = formatAlert({ ...deleted, lastSnapshot: undefined } as Alert);

    // Assess
    expect(f.attributes.severity).toBe('critical');
    expect(f.message).toMatchSnapshot();
  });

  it('formats one reconcile gap: a moved tag', () => {
    // Act
    const f = formatAlert({
      kind: 'reconcile-gap',
      gaps: [gap('latest', { digest: D1, observedAt: '2026-02-20T12:00:00.000Z' })],
      reconciledAt: '2026-03-01T06:00:00.000Z',
      store: STORE,
    });

    // Assess
    expect(f.subject).toBe('[imagevault] reconcile GAP: app:latest (sha256:0123fedc0123...)');
    expect(f.attributes).toEqual({ kind: 'reconcile-gap', repository: 'app', severity: 'warning' });
    expect(f.message).toMatchSnapshot();
  });

  it('formats many reconcile gaps in one alert', () => {
    // Act
    const f = formatAlert({
      kind: 'reconcile-gap',
      gaps: [gap('1'), { ...gap('2'), image: { ...gap('2').image, repository: 'base' } }],
      reconciledAt: '2026-03-01T06:00:00.000Z',
      store: STORE,
    });

    // Assess
    expect(f.subject).toBe('[imagevault] reconcile found 2 GAPS in 2 repositories');
    expect(f.attributes.repository).toBe('*');
    expect(f.message).toMatchSnapshot();
  });

  it('keeps the subject ASCII and under 100 characters for a long repository name', () => {
    // Prepare
    const repository = `${'very-long-team-name/'.repeat(6)}service`;

    // Act
    const f = formatAlert({
      ...failed,
      image: { ...failed.image, repository, tag: 'release-2026.03.01-ünïcode' },
    } as Alert);

    // Assess
    expect(f.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(f.subject).toMatch(
      /^\[imagevault\] snapshot FAILED: \.\.\.[\x20-\x7e]+ \(sha256:abcd1234abcd\.\.\.\)$/,
    );
  });

  it('ends the body with the alert as JSON', () => {
    // Act
    const body = formatAlert(failed).message;

    // Assess
    const json = body.slice(body.indexOf('{'));
    expect(JSON.parse(json)).toEqual({ version: 1, ...failed });
  });
});

describe('Class: SnsAlertPublisher', () => {
  const sns = mockClient(SNSClient);

  beforeEach(() => sns.reset());

  it('publishes subject, text and String message attributes', async () => {
    // Prepare
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const topic = 'arn:aws:sns:eu-west-1:123456789012:imagevault-alerts';

    // Act
    await new SnsAlertPublisher(new SNSClient({}), topic).publish(failed);

    // Assess
    const input = sns.commandCalls(PublishCommand)[0].args[0].input;
    expect(input).toEqual({
      TopicArn: topic,
      Subject: '[imagevault] snapshot FAILED: app:1.4 (sha256:abcd1234abcd...)',
      Message: formatAlert(failed).message,
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'snapshot-failed' },
        repository: { DataType: 'String', StringValue: 'app' },
        severity: { DataType: 'String', StringValue: 'critical' },
      },
    });
  });
});
