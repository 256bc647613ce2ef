/**
 * ECR "ECR Image Action" events shaped exactly as the ECR user guide documents them
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html), with real digests: the guide's
 * own examples carry shortened, invalid ones.
 */
import type { SQSRecord } from 'aws-lambda';

export const ACCOUNT = '123456789012';
export const REGION = 'us-west-2';

export interface EventInit {
  id?: string;
  time?: string;
  repository?: string;
  digest: string;
  tag?: string;
  action?: 'PUSH' | 'DELETE';
  result?: string;
  source?: string;
}

/** The documented push example (tag `latest`) with its fields replaced by `init`'s. */
export function ecrEvent(init: EventInit): Record<string, unknown> {
  return {
    version: '0',
    id: init.id ?? '13cde686-328b-6117-af20-0e5566167482',
    'detail-type': 'ECR Image Action',
    source: init.source ?? 'aws.ecr',
    account: ACCOUNT,
    time: init.time ?? '2019-11-16T01:54:34Z',
    region: REGION,
    resources: [],
    detail: {
      result: init.result ?? 'SUCCESS',
      'repository-name': init.repository ?? 'my-repository-name',
      'image-digest': init.digest,
      'action-type': init.action ?? 'PUSH',
      ...(init.tag !== undefined && { 'image-tag': init.tag }),
    },
  };
}

/** The documented delete example. */
export const DOCUMENTED_DELETE = {
  version: '0',
  id: 'dd3b46cb-2c74-f49e-393b-28286b67279d',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: ACCOUNT,
  time: '2019-11-16T02:01:05Z',
  region: REGION,
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'my-repository-name',
    'image-digest': `sha256:${'fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234'.padEnd(64, '0')}`,
    'action-type': 'DELETE',
    'image-tag': 'latest',
  },
};

let seq = 0;

/** An SQS record as the Lambda event source delivers an EventBridge → SQS message. */
export function sqsRecord(body: unknown, receiveCount = 1): SQSRecord {
  seq++;
  return {
    messageId: `059f36b4-87a3-44ab-83d2-${String(seq).padStart(12, '0')}`,
    receiptHandle: `AQEB-receipt-${seq}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '1573869275000',
      SenderId: 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: '1573869275010',
    },
    messageAttributes: {},
    md5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:imagevault-snapshots`,
    awsRegion: REGION,
  };
}

/**
 * An "ECR Pull Through Cache Action" event as the ECR user guide documents it (a cache rule with prefix
 * `docker-hub` syncing `alpine`), with a real digest and `init`'s fields.
 */
export function pullThroughCacheEvent(init: {
  digest: string;
  tag?: string;
  repository?: string;
  status?: string;
}): Record<string, unknown> {
  const repository = init.repository ?? 'docker-hub/alpine';
  return {
    version: '0',
    id: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
    'detail-type': 'ECR Pull Through Cache Action',
    source: 'aws.ecr',
    account: ACCOUNT,
    time: '2023-02-28T02:36:48Z',
    region: REGION,
    resources: [`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repository}`],
    detail: {
      'rule-version': '1',
      'sync-status': init.status ?? 'SUCCESS',
      'ecr-repository-prefix': repository.split('/')[0],
      'repository-name': repository,
      'upstream-registry-url': 'public.ecr.aws',
      'image-tag': init.tag ?? '3.17.2',
      'image-digest': init.digest,
    },
  };
}

/**
 * An "ECR Replication Action" event: an image replicated into this registry from another region. The fields are
 * those of the event's schema in EventBridge's registry (result, action-type, repository-name, image-digest,
 * image-tag, source-account, source-region); the values, `action-type`'s included, are made up.
 */
export function replicationEvent(init: {
  digest: string;
  tag?: string;
  repository?: string;
  result?: string;
}): Record<string, unknown> {
  return {
    version: '0',
    id: 'c8b133b1-6029-ee73-e2a1-4f466b8ba999',
    'detail-type': 'ECR Replication Action',
    source: 'aws.ecr',
    account: ACCOUNT,
    time: '2024-05-08T20:44:54Z',
    region: REGION,
    resources: [`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${init.repository ?? 'team/app'}`],
    detail: {
      result: init.result ?? 'SUCCESS',
      'repository-name': init.repository ?? 'team/app',
      'image-digest': init.digest,
      'source-account': '210987654321',
      'action-type': 'REPLICATE',
      'source-region': 'us-east-2',
      ...(init.tag !== undefined && { 'image-tag': init.tag }),
    },
  };
}
