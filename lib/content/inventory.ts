import { createHash, randomBytes } from 'node:crypto';
import * as z from 'zod';
import { Digest, validateRepository } from '../oci';
import { mapBounded } from './concurrency';
import { INVENTORY_PREFIX, INVENTORY_RUNNING_PREFIX } from './keys';
import { putNewRecord, type ObjectStore } from './objectstore';

/*
 * The in-use inventory: which image digests run where, as scans of ECS, Lambda and Kubernetes saw them.
 *
 *   imagevault/inventory/scans/<time>_<rand>.json
 *       one per scan, written create-only and never changed: when, which sources, each source's error, and every
 *       sighting (repository, digest, where). The history: what ran where at any past scan.
 *   imagevault/inventory/running/<repository>/@<alg>/<hex>/<workload id>.json
 *       one per (repository, digest, workload): where, first seen, last seen. Rewritten by each scan that sees it
 *       (a versioned bucket keeps every earlier version); the scans above hold the same facts on any store.
 *   imagevault/inventory/sources/<source id>.json
 *       per source (ECS or Lambda in a region, a Kubernetes context): its last scan and its last good scan.
 *
 * A workload, not a task or pod, is what a running record is per: tasks and pods come and go with every deploy or
 * restart, and a record per task would grow without end. The tasks or pods seen are kept in it as a sample.
 * `@` starts no repository path component, so `<repository>/@sha256` can never collide with a repository name.
 */
const SCANS = `${INVENTORY_PREFIX}scans/`;
const RUNNING = INVENTORY_RUNNING_PREFIX;
const SOURCES = `${INVENTORY_PREFIX}sources/`;

/** Records read or written at once: each is a round trip on S3, and a scan may see hundreds of workloads. */
const IO_CONCURRENCY = 16;

/** How many task ARNs or pod names a running record keeps from one sighting (a sample, for the reader). */
export const INSTANCE_SAMPLE = 10;

export const PlacementSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('ecs'),
    region: z.string(),
    clusterArn: z.string(),
    cluster: z.string(),
    /** The task's group: `service:NAME` for a service's task, `family:NAME` for a standalone task. */
    group: z.string(),
    service: z.string().optional(),
    containers: z.array(z.string()),
    /** Task ARNs seen running this digest (a sample). */
    instances: z.array(z.string()),
  }),
  z.object({
    kind: z.literal('lambda'),
    region: z.string(),
    function: z.string(),
    functionArn: z.string(),
    instances: z.array(z.string()).default([]),
  }),
  z.object({
    kind: z.literal('kubernetes'),
    /** The kubeconfig context (or cluster) the pods were listed through. */
    cluster: z.string(),
    namespace: z.string(),
    /** `Kind/name` of the owning workload (a Deployment for a ReplicaSet's pods), else `Pod/name`. */
    workload: z.string(),
    containers: z.array(z.string()),
    /** Pod names seen running this digest (a sample). */
    instances: z.array(z.string()),
  }),
]);
export type Placement = z.infer<typeof PlacementSchema>;

/** One digest seen running in one workload by one scan. */
export const SightingSchema = z.object({
  repository: z.string(),
  digest: z.string(),
  /** The image as the runtime named it (`imageID`, `imageDigest`, `ResolvedImageUri`). */
  image: z.string(),
  /** The scanned source: `ecs:<region>`, `lambda:<region>`, `kubernetes:<context>`. */
  source: z.string(),
  placement: PlacementSchema,
});
export type Sighting = z.infer<typeof SightingSchema>;

export const SourceResultSchema = z.object({
  source: z.string(),
  ok: z.boolean(),
  sightings: z.number().int().nonnegative(),
  /** Why the source could not be scanned (wholly or in part): a scan with an error proves nothing stopped running. */
  error: z.string().optional(),
  /** References the source listed that name no image by digest, and why (a running image the scan cannot place). */
  unresolved: z.array(z.object({ image: z.string(), where: z.string(), reason: z.string() })).default([]),
});
export type SourceResult = z.infer<typeof SourceResultSchema>;

/** A running digest the vault did not hold, and what the scan did about it. */
export const GapSchema = z.object({
  repository: z.string(),
  digest: z.string(),
  image: z.string(),
  where: z.array(z.string()),
  snapshotted: z.boolean(),
  error: z.string().optional(),
});
export type Gap = z.infer<typeof GapSchema>;

export const ScanRecordSchema = z.object({
  startedAt: z.string(),
  finishedAt: z.string(),
  sources: z.array(SourceResultSchema),
  sightings: z.array(SightingSchema),
  gaps: z.array(GapSchema),
});
export type ScanRecord = z.infer<typeof ScanRecordSchema>;

export const RunningRecordSchema = z.object({
  repository: z.string(),
  digest: z.string(),
  image: z.string(),
  source: z.string(),
  placement: PlacementSchema,
  firstSeen: z.string(),
  lastSeen: z.string(),
});
export type RunningRecord = z.infer<typeof RunningRecordSchema>;

export const SourceStateSchema = z.object({
  source: z.string(),
  lastScanAt: z.string(),
  /** The last scan of this source that completed without error: what "running now" is measured against. */
  lastOkAt: z.string().optional(),
});
export type SourceState = z.infer<typeof SourceStateSchema>;

/** Where a digest runs or ran, as the read API gives it. */
export interface InUseEntry extends RunningRecord {
  /** In words: `ecs:eu-west-1/prod/web`, `lambda:eu-west-1/resize`, `kubernetes:prod-eks/shop/Deployment/api`. */
  where: string;
  /** Seen by the newest good scan of its source: running now, as far as the vault knows. */
  running: boolean;
}

/**
 * What other use cases (retention, GC, the deletion guard) ask of the inventory. An implementation fails rather
 * than answering short: a missing entry could let a running image be deleted.
 */
export interface InUse {
  /** Every workload (repository, digest) runs or ran in, with first and last seen. Empty: never seen running. */
  where(repository: string, digest: string): Promise<InUseEntry[]>;
  /** Every (repository, digest, workload) seen running at or after `since` (`lastSeen ≥ since`). */
  inUseSince(since: Date): Promise<InUseEntry[]>;
}

/** Whether (repository, digest) runs now, or ran within `withinMs` of `now` when given. */
export async function isInUse(
  inUse: InUse,
  repository: string,
  digest: string,
  options: { withinMs?: number; now?: Date } = {},
): Promise<boolean> {
  const entries = await inUse.where(repository, digest);
  if (entries.some((e) => e.running)) return true;
  if (options.withinMs === undefined) return false;
  const since = (options.now ?? new Date()).getTime() - options.withinMs;
  return entries.some((e) => Date.parse(e.lastSeen) >= since);
}

/** The words for a placement: `kind:` then its path, region or cluster first. */
export function placementLabel(p: Placement): string {
  switch (p.kind) {
    case 'ecs':
      return `ecs:${p.region}/${p.cluster}/${p.service ?? p.group}`;
    case 'lambda':
      return `lambda:${p.region}/${p.function}`;
    case 'kubernetes':
      return `kubernetes:${p.cluster}/${p.namespace}/${p.workload}`;
  }
}

/** The identity of a workload: what a running record is per (its sample of tasks or pods is not part of it). */
function placementId(p: Placement): string {
  const identity =
    p.kind === 'ecs'
      ? [p.kind, p.region, p.clusterArn, p.group]
      : p.kind === 'lambda'
        ? [p.kind, p.region, p.functionArn]
        : [p.kind, p.cluster, p.namespace, p.workload];
  return hash16(JSON.stringify(identity));
}

const hash16 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
const timeKey = (iso: string) => iso.replace(/[-:]/g, '').replace('.', '');
const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');

function digestPrefix(repository: string, digest: string): string {
  validateRepository(repository);
  const d = Digest.parse(digest);
  return `${RUNNING}${repository}/@${d.algorithm}/${d.hex}/`;
}

/** Thrown when an inventory record cannot be read: the reader stops rather than answer without it. */
export class InventoryRecordError extends Error {
  constructor(store: string, key: string, cause: unknown) {
    // zod's own message is a multi-line JSON dump: one line per problem, joined, keeps the failure one line.
    const why =
      cause instanceof z.ZodError
        ? cause.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
        : ((cause as Error).message ?? String(cause));
    super(`${store}: inventory record ${key} is unreadable: ${why}`, { cause });
    this.name = 'InventoryRecordError';
  }
}

/** The inventory in a vault's store: written by scans, read through the InUse interface. */
export class Inventory implements InUse {
  constructor(readonly store: ObjectStore) {}

  /**
   * Records one finished scan: the scan record (create-only), then each sighting's running record and each
   * source's state. A source whose scan failed keeps its last good time, so what it ran before stays "running".
   */
  async record(scan: ScanRecord): Promise<string> {
    const full = ScanRecordSchema.parse(scan);
    const key = `${SCANS}${timeKey(new Date(full.startedAt).toISOString())}_${randomBytes(4).toString('hex')}.json`;
    await putNewRecord(this.store, key, full, 'inventory scan');
    // One clock format for every comparison below (string order is time order).
    const seen = new Date(full.finishedAt).toISOString();
    await mapBounded(mergeSightings(full.sightings), IO_CONCURRENCY, async (s) => {
      const runningKey = `${digestPrefix(s.repository, s.digest)}${placementId(s.placement)}.json`;
      const before = await this.read(runningKey, RunningRecordSchema);
      const record: RunningRecord = { ...s, firstSeen: before?.firstSeen ?? seen, lastSeen: seen };
      await this.store.putBytes(runningKey, json(record), { contentType: 'application/json' });
    });
    // Sources last: until a source's new good time is written, the records just written read as running anyway;
    // the other order would show, for a moment or after a crash, a running digest as no longer running.
    for (const r of full.sources) {
      const sourceKey = `${SOURCES}${hash16(r.source)}.json`;
      const before = await this.read(sourceKey, SourceStateSchema);
      const state: SourceState = {
        source: r.source,
        lastScanAt: seen,
        ...(r.ok ? { lastOkAt: seen } : before?.lastOkAt ? { lastOkAt: before.lastOkAt } : {}),
      };
      await this.store.putBytes(sourceKey, json(state), { contentType: 'application/json' });
    }
    return key;
  }

  async where(repository: string, digest: string): Promise<InUseEntry[]> {
    return this.entries(digestPrefix(repository, digest));
  }

  async inUseSince(since: Date): Promise<InUseEntry[]> {
    const at = since.getTime();
    return (await this.entries(RUNNING)).filter((e) => Date.parse(e.lastSeen) >= at);
  }

  /** Every scan, oldest first (keys sort by start time). */
  async *scans(): AsyncIterable<ScanRecord & { key: string }> {
    for await (const obj of this.store.list(SCANS)) {
      const scan = await this.read(obj.key, ScanRecordSchema);
      if (scan) yield { ...scan, key: obj.key };
    }
  }

  /** The newest scan, or undefined before the first. */
  async latestScan(): Promise<(ScanRecord & { key: string }) | undefined> {
    let last: string | undefined;
    for await (const obj of this.store.list(SCANS)) last = obj.key;
    if (!last) return undefined;
    const scan = await this.read(last, ScanRecordSchema);
    return scan && { ...scan, key: last };
  }

  /** Every source ever scanned, with its last scan and last good scan. */
  async sources(): Promise<SourceState[]> {
    const out: SourceState[] = [];
    for await (const obj of this.store.list(SOURCES)) {
      const s = await this.read(obj.key, SourceStateSchema);
      if (s) out.push(s);
    }
    return out;
  }

  private async entries(prefix: string): Promise<InUseEntry[]> {
    const lastOk = new Map((await this.sources()).map((s) => [s.source, s.lastOkAt]));
    const keys: string[] = [];
    for await (const obj of this.store.list(prefix)) keys.push(obj.key);
    const records = await mapBounded(keys, IO_CONCURRENCY, (key) => this.read(key, RunningRecordSchema));
    return records
      .filter((r): r is RunningRecord => r !== undefined)
      .map((r) => {
        const ok = lastOk.get(r.source);
        return { ...r, where: placementLabel(r.placement), running: ok !== undefined && r.lastSeen >= ok };
      });
  }

  private async read<T>(key: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const bytes = await this.store.getBytes(key);
    if (!bytes) return undefined;
    try {
      return schema.parse(JSON.parse(bytes.toString('utf8')));
    } catch (e) {
      throw new InventoryRecordError(this.store.url, key, e);
    }
  }
}

/**
 * One sighting per (repository, digest, workload): a service's tasks or a Deployment's pods each report the same
 * digest, and their containers and instances are gathered into one record.
 */
export function mergeSightings(sightings: Sighting[]): Sighting[] {
  const byKey = new Map<string, Sighting>();
  for (const s of sightings) {
    const key = `${s.repository}@${s.digest}#${placementId(s.placement)}`;
    const had = byKey.get(key);
    if (!had) {
      byKey.set(key, structuredClone(s));
      continue;
    }
    const p = had.placement;
    const q = s.placement;
    p.instances = union(p.instances, q.instances).slice(0, INSTANCE_SAMPLE);
    if ((p.kind === 'ecs' || p.kind === 'kubernetes') && (q.kind === 'ecs' || q.kind === 'kubernetes'))
      p.containers = union(p.containers, q.containers);
  }
  return [...byKey.values()];
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];
