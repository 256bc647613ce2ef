import { Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import { ALL_REPOSITORIES } from './validation';

/**
 * The EventBridge pattern of successful ECR pushes and deletes in the protected repositories: all of them for
 * '*', otherwise a prefix match per entry.
 */
export function ecrImageActionPattern(repositories: readonly string[]): events.EventPattern {
  const all = repositories.includes(ALL_REPOSITORIES);
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Image Action'],
    detail: {
      'action-type': ['PUSH', 'DELETE'],
      result: ['SUCCESS'],
      ...(all
        ? {}
        : { 'repository-name': events.Match.anyOf(...repositories.map((r) => events.Match.prefix(r))) }),
    },
  };
}

/** Successful pull-through cache syncs (an image cached from upstream) in the protected repositories. */
export function ecrPullThroughCachePattern(repositories: readonly string[]): events.EventPattern {
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Pull Through Cache Action'],
    detail: { 'sync-status': ['SUCCESS'], ...repositoryNameFilter(repositories) },
  };
}

/** Successful replications of images into the protected repositories of this registry. */
export function ecrReplicationPattern(repositories: readonly string[]): events.EventPattern {
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Replication Action'],
    detail: { result: ['SUCCESS'], ...repositoryNameFilter(repositories) },
  };
}

/** `repository-name` by prefix, or nothing for all repositories. */
function repositoryNameFilter(repositories: readonly string[]): Record<string, unknown> {
  return repositories.includes(ALL_REPOSITORIES)
    ? {}
    : { 'repository-name': events.Match.anyOf(...repositories.map((r) => events.Match.prefix(r))) };
}

/**
 * The EventBridge pattern of CloudTrail `ecr:PutImage` calls in the protected repositories (a failed call is
 * delivered too, and ignored by the handler with a log line).
 */
export function ecrPutImagePattern(repositories: readonly string[]): events.EventPattern {
  const all = repositories.includes(ALL_REPOSITORIES);
  return {
    source: ['aws.ecr'],
    detailType: ['AWS API Call via CloudTrail'],
    detail: {
      eventSource: ['ecr.amazonaws.com'],
      eventName: ['PutImage'],
      ...(all
        ? {}
        : {
            requestParameters: {
              repositoryName: events.Match.anyOf(...repositories.map((r) => events.Match.prefix(r))),
            },
          }),
    },
  };
}

/** ECR basic scan results (`ECR Image Scan`) in the protected repositories; the detail names the repository. */
export function ecrScanPattern(repositories: readonly string[]): events.EventPattern {
  const all = repositories.includes(ALL_REPOSITORIES);
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Image Scan'],
    ...(all
      ? {}
      : {
          detail: {
            'repository-name': events.Match.anyOf(...repositories.map((r) => events.Match.prefix(r))),
          },
        }),
  };
}

/**
 * Amazon Inspector scan results (`Inspector2 Scan`) for images in the protected repositories. Inspector names the
 * repository by ARN, so the prefixes are matched on `arn:…:repository/<prefix>` (EC2 and Lambda scans, with other
 * ARNs, never match).
 */
export function inspectorScanPattern(scope: Construct, repositories: readonly string[]): events.EventPattern {
  const arns = repositoryArns(scope, repositories).map((a) => a.replace(/\*$/, ''));
  return {
    source: ['aws.inspector2'],
    detailType: ['Inspector2 Scan'],
    detail: { 'repository-name': events.Match.anyOf(...arns.map((a) => events.Match.prefix(a))) },
  };
}

/** ARNs of the protected repositories: `repository/*` for all, `repository/<prefix>*` per prefix. */
export function repositoryArns(scope: Construct, repositories: readonly string[]): string[] {
  const stack = Stack.of(scope);
  const names = repositories.includes(ALL_REPOSITORIES) ? ['*'] : repositories.map((r) => `${r}*`);
  return names.map((resourceName) =>
    stack.formatArn({ service: 'ecr', resource: 'repository', resourceName }),
  );
}
