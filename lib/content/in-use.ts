import { z } from 'zod';
import { IN_USE_PREFIX } from './keys';
import type { ObjectStore } from './objectstore';

/*
 * Where images run. Retention and GC always keep an image that runs (or ran within a window), whatever the policy
 * says: the most common image-loss story is a cleanup deleting what a cluster still pulls. The inventory scanners
 * (ECS, Lambda, Kubernetes) are sources of this; today the vault's own in-use records are the one source.
 */

export const InUseEntrySchema = z.object({
  /** The digest a workload runs: an image index or a platform's manifest. */
  digest: z.string(),
  /** The repository it was pulled from, when known. */
  repository: z.string().optional(),
  /** Where it runs, in words: `ecs:cluster/service`, `k8s:cluster/namespace/pod`, `lambda:function`. */
  where: z.string(),
  firstSeen: z.string().optional(),
  lastSeen: z.string(),
});
export type InUseEntry = z.infer<typeof InUseEntrySchema>;

/** One scan's record in the vault: `imagevault/in-use/<scanner>.json` (or any key under the prefix). */
export const InUseRecordSchema = z.object({
  scannedAt: z.string(),
  entries: z.array(InUseEntrySchema),
});

/** What runs where. An implementation must fail rather than answer short: a missing entry can lose a running image. */
export interface InUseSource {
  inUse(): Promise<InUseEntry[]>;
}

/** The in-use records kept in the vault under `imagevault/in-use/` (none yet is an empty set, not an error). */
export class VaultInUse implements InUseSource {
  constructor(private readonly store: ObjectStore) {}

  async inUse(): Promise<InUseEntry[]> {
    const out: InUseEntry[] = [];
    for await (const obj of this.store.list(IN_USE_PREFIX)) {
      const bytes = await this.store.getBytes(obj.key);
      if (!bytes) continue;
      let parsed;
      try {
        parsed = InUseRecordSchema.parse(JSON.parse(bytes.toString('utf8')));
      } catch (e) {
        // A record we cannot read could name a running image: refuse to go on without it.
        throw new Error(`${this.store.url}: in-use record ${obj.key} is unreadable: ${(e as Error).message}`);
      }
      out.push(...parsed.entries);
    }
    return out;
  }
}
