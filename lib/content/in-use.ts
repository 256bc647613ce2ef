import { Inventory } from './inventory';
import type { ObjectStore } from './objectstore';

/*
 * Where images run, as retention and GC ask it. They always keep an image that runs (or ran within a window),
 * whatever the policy says: the most common image-loss story is a cleanup deleting what a cluster still pulls. The
 * answer comes from the in-use inventory (lib/content/inventory.ts), which `imagevault inventory` scans write.
 */

/** One workload a digest runs (or ran) in. */
export interface InUseSighting {
  /** The digest a workload runs: an image index or a platform's manifest. */
  readonly digest: string;
  /** The repository it was pulled from, as the vault names it. */
  readonly repository?: string;
  /** Where it runs, in words: `ecs:eu-west-1/prod/api`, `kubernetes:prod-eks/shop/Deployment/api`. */
  readonly where: string;
  readonly firstSeen?: string;
  /** When it was last seen running; the present for what the newest good scan of its source saw. */
  readonly lastSeen: string;
}

/** What runs where. An implementation must fail rather than answer short: a missing entry can lose a running image. */
export interface InUseSource {
  inUse(): Promise<InUseSighting[]>;
}

/** The vault's in-use inventory: every workload each digest was seen in (none yet is an empty set, not an error). */
export class VaultInUse implements InUseSource {
  constructor(
    private readonly store: ObjectStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async inUse(): Promise<InUseSighting[]> {
    const now = this.now().toISOString();
    // Since the beginning: the caller applies its own window. An unreadable record throws (the inventory refuses to
    // answer short).
    const entries = await new Inventory(this.store).inUseSince(new Date(0));
    return entries.map((e) => ({
      digest: e.digest,
      repository: e.repository,
      where: e.where,
      firstSeen: e.firstSeen,
      // Running as far as the vault knows (its source's newest good scan saw it): in use now, however old that scan.
      lastSeen: e.running ? now : e.lastSeen,
    }));
  }
}
