import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';

/**
 * Makes a real S3 client (radosgw) answer conditional writes the way AWS S3 does under concurrency: a PutObject with
 * If-None-Match whose key already has a conditional write in flight fails with 409 ConditionalRequestConflict
 * instead of reaching the server. radosgw itself never answers 409 here.
 *
 * Each conditional write is held for `holdMs` before it is sent, so writers that race really overlap. After
 * `holdNextUntilContended()`, the next conditional write is held until a second writer tries the same key (or
 * `firstHoldMs` passes): on a loaded machine writers started together can reach their first write more than `holdMs`
 * apart, and a race that happens only when the machine is quiet makes a flaky test. `conflicts()` counts the 409s.
 *
 * A key stays "in flight" for `settleMs` after its write is answered. Once, under a CI run's I/O load, radosgw (Ceph
 * 16) kept two versions of a key that only ever received If-None-Match writes, one after the other: the second create
 * was accepted as if the first were not there. AWS S3 never does that (its conditional writes are atomic and read
 * after write consistent), so the test bed keeps retries clear of that window; a retry inside it gets the 409 AWS
 * may answer for overlapping writes.
 */
export function injectConditionalConflicts(
  client: S3Client,
  holdMs = 40,
  firstHoldMs = 10_000,
  settleMs = 250,
): { conflicts: () => number; holdNextUntilContended: () => void } {
  const inFlight = new Map<string, () => void>();
  let first = false;
  let conflicts = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; IfNoneMatch?: string };
      if (context.commandName !== 'PutObjectCommand' || input.IfNoneMatch === undefined) return next(args);
      const key = String(input.Key);
      const holder = inFlight.get(key);
      if (holder) {
        conflicts++;
        holder();
        throw new S3ServiceException({
          name: 'ConditionalRequestConflict',
          $fault: 'client',
          $metadata: { httpStatusCode: 409 },
          message: 'A conflicting operation occurred. If using PutObject you can retry the request.',
        });
      }
      const wait = first ? firstHoldMs : holdMs;
      first = false;
      let timer: NodeJS.Timeout | undefined;
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, wait);
        // A contender releases the first writer at once; later writers keep their short hold
        release = wait === holdMs ? () => undefined : resolve;
        inFlight.set(key, release);
      });
      try {
        await held;
        return await next(args);
      } finally {
        clearTimeout(timer);
        const mine = release;
        // Only this write's entry is cleared: the key is free again once the store has settled.
        setTimeout(() => {
          if (inFlight.get(key) === mine) inFlight.delete(key);
        }, settleMs).unref();
      }
    },
    { step: 'initialize', name: 'injectConditionalConflicts' },
  );
  return {
    conflicts: () => conflicts,
    holdNextUntilContended: () => {
      first = true;
    },
  };
}
