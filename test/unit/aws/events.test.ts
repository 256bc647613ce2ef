import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { EnqueueError, SqsEventQueue } from '../../../lib/aws/event-queue';
import {
  InvalidEventError,
  RepositoryFilter,
  parseImageEvent,
  reconcileEvent,
  reconcileMode,
} from '../../../lib/events';
import { DOCUMENTED_DELETE, ecrEvent, pullThroughCacheEvent, replicationEvent } from './ecr-events';

const DIGEST = `sha256:${'7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234'}0000`;
const CHILD = `sha256:${'a'.repeat(64)}`;

describe('Function: parseImageEvent', () => {
  it('parses the documented tagged push event from its SQS body text', () => {
    // Prepare
    const body = JSON.stringify(ecrEvent({ digest: DIGEST, tag: 'latest' }));

    // Act
    const event = parseImageEvent(body);

    // Assess
    expect(event).toEqual({
      id: '13cde686-328b-6117-af20-0e5566167482',
      origin: 'ecr-event',
      account: '123456789012',
      region: 'us-west-2',
      time: '2019-11-16T01:54:34Z',
      action: 'PUSH',
      result: 'SUCCESS',
      repository: 'my-repository-name',
      digest: DIGEST,
      tag: 'latest',
    });
  });

  it('parses an untagged push (a child of a multi-arch index) without a tag', () => {
    // Act
    const event = parseImageEvent(ecrEvent({ digest: CHILD, repository: 'team/app' }));

    // Assess
    expect(event.tag).toBeUndefined();
    expect(event).toMatchObject({ action: 'PUSH', repository: 'team/app', digest: CHILD });
  });

  it('treats an empty image-tag as untagged', () => {
    expect(parseImageEvent(ecrEvent({ digest: CHILD, tag: '' })).tag).toBeUndefined();
  });

  it('parses the documented delete event', () => {
    // Act
    const event = parseImageEvent(JSON.stringify(DOCUMENTED_DELETE));

    // Assess
    expect(event).toMatchObject({
      action: 'DELETE',
      tag: 'latest',
      id: 'dd3b46cb-2c74-f49e-393b-28286b67279d',
    });
  });

  it('keeps fields ECR adds later (manifest-media-type) without failing', () => {
    // Prepare
    const raw = ecrEvent({ digest: DIGEST, tag: '1.0' });
    (raw.detail as Record<string, unknown>)['manifest-media-type'] =
      'application/vnd.oci.image.index.v1+json';

    // Act + Assess
    expect(parseImageEvent(raw).tag).toBe('1.0');
  });

  it('parses the event reconcile writes as a reconcile event', () => {
    // Prepare
    const raw = reconcileEvent({
      account: '123456789012',
      region: 'eu-west-1',
      repository: 'app',
      digest: DIGEST,
      tag: 'v1',
      time: new Date('2026-01-02T03:04:05.000Z'),
      id: 'r-1',
    });

    // Act
    const event = parseImageEvent(JSON.stringify(raw));

    // Assess
    expect(raw.source).toBe('imagevault.reconcile');
    expect(event).toMatchObject({
      origin: 'reconcile',
      id: 'r-1',
      tag: 'v1',
      time: '2026-01-02T03:04:05.000Z',
    });
  });

  it('parses a pull-through cache sync as a push of the image it cached', () => {
    // Act
    const event = parseImageEvent(JSON.stringify(pullThroughCacheEvent({ digest: DIGEST })));

    // Assess
    expect(event).toEqual({
      id: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
      origin: 'pull-through-cache',
      account: '123456789012',
      region: 'us-west-2',
      time: '2023-02-28T02:36:48Z',
      action: 'PUSH',
      result: 'SUCCESS',
      repository: 'docker-hub/alpine',
      digest: DIGEST,
      tag: '3.17.2',
    });
  });

  it('keeps a failed cache sync failed, so it is not acted on', () => {
    expect(parseImageEvent(pullThroughCacheEvent({ digest: DIGEST, status: 'FAILED' })).result).toBe(
      'FAILED',
    );
  });

  it('parses a replication into this registry as a push of the replicated image', () => {
    // Act
    const event = parseImageEvent(replicationEvent({ digest: DIGEST, tag: 'v1' }));

    // Assess
    expect(event).toMatchObject({
      origin: 'replication',
      action: 'PUSH',
      result: 'SUCCESS',
      repository: 'team/app',
      digest: DIGEST,
      tag: 'v1',
    });
  });

  it('names the bad field of a pull-through cache event', () => {
    // Prepare
    const bad = pullThroughCacheEvent({ digest: 'sha256:nope' });

    // Act / Assess
    expect(() => parseImageEvent(bad)).toThrow(/detail\.image-digest: not a valid digest/);
  });

  it('throws InvalidEventError for a body that is not JSON', () => {
    // Act
    const act = () => parseImageEvent('hello <world>');

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('not an ECR image event: the message body is not JSON ("hello <world>")');
  });

  it('throws InvalidEventError naming every bad field', () => {
    // Prepare
    const raw = ecrEvent({ digest: 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234' });
    (raw as Record<string, unknown>).account = '{{123456789012}}';

    // Act
    const act = () => parseImageEvent(raw);

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow(/account: not a 12-digit AWS account id/);
    expect(act).toThrow(/detail\.image-digest: not a valid digest/);
  });

  it.each([
    [
      'another detail-type',
      { ...ecrEvent({ digest: DIGEST }), 'detail-type': 'ECR Image Scan' },
      /detail-type/,
    ],
    ['another source', { ...ecrEvent({ digest: DIGEST }), source: 'aws.s3' }, /source/],
    ['an unknown action', ecrEvent({ digest: DIGEST, action: 'TAG' as 'PUSH' }), /action-type/],
    ['an invalid tag', ecrEvent({ digest: DIGEST, tag: '-bad tag' }), /image-tag: not a valid tag/],
    ['a bad repository name', ecrEvent({ digest: DIGEST, repository: 'Upper/Case' }), /repository-name/],
    ['an array', [1, 2], /\(event\)/],
    ['null', null, /\(event\)/],
    ['a time that is not ISO 8601', { ...ecrEvent({ digest: DIGEST }), time: 'yesterday' }, /time/],
  ])('throws for %s', (_name, raw, message) => {
    expect(() => parseImageEvent(raw)).toThrow(message);
  });
});

describe('Class: RepositoryFilter', () => {
  it('matches every repository with *', () => {
    expect(RepositoryFilter.parse('*').matches('anything/at/all')).toBe(true);
  });

  it('matches by plain prefix', () => {
    // Act
    const f = RepositoryFilter.parse(' team-a/ , base ');

    // Assess
    expect(f.prefixes).toEqual(['team-a/', 'base']);
    expect(f.matches('team-a/api')).toBe(true);
    expect(f.matches('baseline')).toBe(true);
    expect(f.matches('team-ab')).toBe(false);
    expect(f.toString()).toBe('team-a/,base');
  });

  it.each(['', ' , ', 'Team', 'a,*', 'a b'])('rejects %j', (value) => {
    expect(() => RepositoryFilter.parse(value)).toThrow(/must be "\*" or a comma-separated list/);
  });
});

describe('Function: reconcileMode', () => {
  it('is scheduled for an EventBridge scheduled event', () => {
    expect(
      reconcileMode({
        version: '0',
        id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: '123456789012',
        time: '2015-10-08T16:53:06Z',
        region: 'us-east-1',
        resources: ['arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule'],
        detail: {},
      }),
    ).toBe('scheduled');
  });

  it('is a backfill for any other invocation, and follows an explicit mode', () => {
    expect(reconcileMode({})).toBe('backfill');
    expect(reconcileMode(undefined)).toBe('backfill');
    expect(reconcileMode({ mode: 'scheduled' })).toBe('scheduled');
  });

  it('throws for an unknown mode', () => {
    expect(() => reconcileMode({ mode: 'sometimes' })).toThrow(/not a reconcile trigger.*mode/);
  });
});

describe('Class: SqsEventQueue', () => {
  const sqs = mockClient(SQSClient);
  const url = 'https://sqs.us-west-2.amazonaws.com/123456789012/snapshots';
  const events = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      reconcileEvent({
        account: '123456789012',
        region: 'us-west-2',
        repository: 'app',
        digest: DIGEST,
        tag: `t${i}`,
        time: '2026-01-01T00:00:00Z',
        id: `e${i}`,
      }),
    );

  beforeEach(() => sqs.reset());

  it('sends in batches of at most 10', async () => {
    // Prepare
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });

    // Act
    await new SqsEventQueue(new SQSClient({}), url).send(events(23));

    // Assess
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls.map((c) => c.args[0].input.Entries!.length)).toEqual([10, 10, 3]);
    expect(calls[0].args[0].input.QueueUrl).toBe(url);
    expect(JSON.parse(calls[2].args[0].input.Entries![2].MessageBody!)).toMatchObject({ id: 'e22' });
  });

  it('retries entries that failed on the service side once', async () => {
    // Prepare
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Failed: [{ Id: 'm1', Code: 'InternalError', SenderFault: false }] })
      .resolves({});

    // Act
    await new SqsEventQueue(new SQSClient({}), url).send(events(2));

    // Assess
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1].args[0].input.Entries!.map((e) => e.Id)).toEqual(['m1']);
  });

  it('throws EnqueueError for sender faults', async () => {
    // Prepare
    sqs.on(SendMessageBatchCommand).resolves({
      Failed: [{ Id: 'm0', Code: 'InvalidParameterValue', Message: 'too big', SenderFault: true }],
    });

    // Act + Assess
    await expect(new SqsEventQueue(new SQSClient({}), url).send(events(1))).rejects.toThrow(
      new EnqueueError(
        `SQS SendMessageBatch to ${url} refused 1 message(s): m0: InvalidParameterValue too big`,
      ),
    );
  });
});
