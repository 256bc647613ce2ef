/**
 * Scan-result events exactly as AWS documents them (copied verbatim from the pages cited; functions, so each test
 * gets its own copy to change). Two of the documented examples carry placeholder digests that are no digest — 60
 * hex characters, and 54 followed by "EXAMPLE" — so tests that need them to parse put a real digest in with
 * `withDigest`; the verbatim events show that such an event is refused, naming what is wrong.
 */

/** Basic scanning, "Event for a completed image scan (basic scanning)",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html */
export const ecrImageScanDocumented = () => ({
  version: '0',
  id: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
  'detail-type': 'ECR Image Scan',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2019-10-29T02:36:48Z',
  region: 'us-east-1',
  resources: ['arn:aws:ecr:us-east-1:123456789012:repository/my-repository-name'],
  detail: {
    'scan-status': 'COMPLETE',
    'repository-name': 'my-repository-name',
    'finding-severity-counts': {
      CRITICAL: 10,
      MEDIUM: 9,
    },
    'image-digest': 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234',
    'image-tags': [],
  },
});

/** Enhanced scanning, "Event for an initial image scan (enhanced scanning)",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-events.html */
export const inspectorScanEcrGuideDocumented = () => ({
  version: '0',
  id: '739c0d3c-4f02-85c7-5a88-94a9EXAMPLE',
  'detail-type': 'Inspector2 Scan',
  source: 'aws.inspector2',
  account: '123456789012',
  time: '2021-12-03T18:03:16Z',
  region: 'us-east-2',
  resources: ['arn:aws:ecr:us-east-2:123456789012:repository/amazon/amazon-ecs-sample'],
  detail: {
    'scan-status': 'INITIAL_SCAN_COMPLETE',
    'repository-name': 'arn:aws:ecr:us-east-2:123456789012:repository/amazon/amazon-ecs-sample',
    'finding-severity-counts': {
      CRITICAL: 7,
      HIGH: 61,
      MEDIUM: 62,
      TOTAL: 158,
    },
    'image-digest': 'sha256:36c7b282abd0186e01419f2e58743e1bf635808231049bbc9d77e5EXAMPLE',
    'image-tags': ['latest'],
  },
});

/** "Amazon ECR image initial scan", https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html */
export const inspectorScanDocumented = () => ({
  version: '0',
  id: 'fdaa751a-984c-a709-44f9-9a9da9cd3606',
  'detail-type': 'Inspector2 Scan',
  source: 'aws.inspector2',
  account: '111122223333',
  time: '2023-01-20T23:15:18Z',
  region: 'us-east-1',
  resources: ['arn:aws:ecr:us-east-1:111122223333:repository/inspector2'],
  detail: {
    'scan-status': 'INITIAL_SCAN_COMPLETE',
    'repository-name': 'arn:aws:ecr:us-east-1:111122223333:repository/inspector2',
    'finding-severity-counts': {
      CRITICAL: 0,
      HIGH: 0,
      MEDIUM: 0,
      TOTAL: 0,
    },
    'image-digest': 'sha256:965fbcae990b0467ed5657caceaec165018ef44a4d2d46c7cdea80a9dff0d1ea',
    'image-tags': ['ubuntu22'],
    version: '1.0',
  },
});

/** "Amazon EC2 instance initial scan", same page: an Inspector2 Scan that is no ECR image. */
export const inspectorEc2ScanDocumented = () => ({
  version: '0',
  id: '28a46762-6ac8-6cc4-4f55-bc9ab99af928',
  'detail-type': 'Inspector2 Scan',
  source: 'aws.inspector2',
  account: '111122223333',
  time: '2023-01-20T22:52:35Z',
  region: 'us-east-1',
  resources: ['i-087d63509b8c97098'],
  detail: {
    'scan-status': 'INITIAL_SCAN_COMPLETE',
    'finding-severity-counts': {
      CRITICAL: 0,
      HIGH: 0,
      MEDIUM: 0,
      TOTAL: 0,
    },
    'instance-id': 'i-087d63509b8c97098',
    version: '1.0',
  },
});

/** "Event for a completed image push", https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html */
export const ecrImageActionDocumented = () => ({
  version: '0',
  id: '13cde686-328b-6117-af20-0e5566167482',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2019-11-16T01:54:34Z',
  region: 'us-west-2',
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'my-repository-name',
    'image-digest': 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234',
    'action-type': 'PUSH',
    'image-tag': 'latest',
  },
});

type ScanEventLike = { time: string; detail: Record<string, unknown> } & Record<string, unknown>;

/** The event with the image (and, optionally, repository and time) replaced: documented shape, our image. */
export function withDigest<T extends ScanEventLike>(
  event: T,
  digest: string,
  opts: { repository?: string; time?: string; counts?: Record<string, number> } = {},
): T {
  const detail: Record<string, unknown> = { ...event.detail, 'image-digest': digest };
  if (opts.repository) {
    const name = detail['repository-name'] as string;
    detail['repository-name'] = name.startsWith('arn:')
      ? name.replace(/repository\/.+$/, `repository/${opts.repository}`)
      : opts.repository;
  }
  if (opts.counts) detail['finding-severity-counts'] = opts.counts;
  return { ...event, ...(opts.time ? { time: opts.time } : {}), detail };
}
