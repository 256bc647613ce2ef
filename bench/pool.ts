/**
 * Runs `job` over `items`, `limit` at a time, as our copy bounds its blob transfers. Imports nothing, so the bench's
 * minimal child processes (bench/node-floor.ts) can take it without taking anything of ours.
 */
export async function pool<T>(items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await job(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
