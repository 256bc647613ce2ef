import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';

/**
 * Makes a real S3 client (radosgw) answer conditional writes the way AWS S3 does under concurrency: a PutObject with
 * If-None-Match whose key already has a conditional write in flight fails with 409 ConditionalRequestConflict
 * instead of reaching the server. radosgw itself never answers 409 here. Each conditional write is held for
 * `holdMs` before it is sent, so writers that race really overlap. Returns how many 409s were injected.
 */
export function injectConditionalConflicts(client: S3Client, holdMs = 40): { conflicts: () => number } {
  const inFlight = new Set<string>();
  let conflicts = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; IfNoneMatch?: string };
      if (context.commandName !== 'PutObjectCommand' || input.IfNoneMatch === undefined) return next(args);
      const key = String(input.Key);
      if (inFlight.has(key)) {
        conflicts++;
        throw new S3ServiceException({
          name: 'ConditionalRequestConflict',
          $fault: 'client',
          $metadata: { httpStatusCode: 409 },
          message: 'A conflicting operation occurred. If using PutObject you can retry the request.',
        });
      }
      inFlight.add(key);
      try {
        await new Promise((resolve) => setTimeout(resolve, holdMs));
        return await next(args);
      } finally {
        inFlight.delete(key);
      }
    },
    { step: 'initialize', name: 'injectConditionalConflicts' },
  );
  return { conflicts: () => conflicts };
}
