import {
  blobKey,
  canDelete,
  CLOCK_SKEW_MS,
  forgetOf,
  Forgets,
  GC_KEYS,
  GraphReadError,
  GraphWalker,
  Holds,
  imageId,
  INDEX_FILE,
  listSessions,
  newId,
  openMarks,
  rescued,
  storeTime,
  type InUseSource,
  type MarkFile,
  type Retention,
  type Vault,
} from '../content';
import { BLOBS_PREFIX, REFERRERS_PREFIX } from '../content/keys';
import { Digest } from '../oci';

/*
 * Garbage collection: mark and sweep of the blobs no kept image needs, in two runs, safe against snapshots running at
 * the same time (the protocol: README "Garbage collection", files: lib/content/gc-protocol.ts).
 *
 *   run k:   mark   blobs unneeded now and older than the grace period → marks/k
 *   run k+1: sweep  mark k, once every writer that began before it has ended (or passed its cap): recompute what is
 *                   needed from scratch, keep what writers rescued, delete the rest; then mark again
 */

/** A day: far above a writer's cap (a CLI snapshot's 12 hours, a Lambda's 15 minutes) plus clock skew. */
export const DEFAULT_GRACE_MS = 24 * 60 * 60 * 1000;

export type GcEvent =
  | { phase: 'roots'; images: number }
  | { phase: 'mark'; mark: string; candidates: number; bytes: number }
  | { phase: 'sweep'; mark: string; done: number; total: number; digest: string }
  | { phase: 'waiting'; mark: string; writers: number; until: string };

export interface GcOptions {
  /** Blobs younger than this are never marked. @default DEFAULT_GRACE_MS */
  readonly graceMs?: number;
  /** Say what would be swept and marked; write and delete nothing. @default false */
  readonly dryRun?: boolean;
  readonly inUse?: InUseSource;
  readonly onEvent?: (e: GcEvent) => void;
  /**
   * How far clocks may differ: a sweep also waits for writers that began up to this long after its mark. Only tests
   * of the protocol's interleavings set it lower. @default CLOCK_SKEW_MS (5 minutes)
   */
  readonly clockSkewMs?: number;
  /**
   * Asked between steps (before each sweep, each delete, the mark and the tidy-up): true ends the run cleanly before
   * a time limit (a Lambda's 15 minutes). A sweep stopped so records what it deleted (`done/<k>`, which releases the
   * snapshots waiting for it) and hands the rest of its mark to a new mark, swept by a later run once the snapshots
   * running now have ended. @default never
   */
  readonly shouldStop?: () => boolean;
}

export interface SweepReport {
  mark: string;
  /** Deleted now (on a versioned bucket: a delete marker each; the bytes go when lifecycle expires the versions). */
  deleted: { blobs: number; bytes: number };
  /** Marked, but needed again or rescued by a writer: kept. */
  keptAgain: number;
  /** Deleted blobs whose version Object Lock keeps until its retention ends: billed until then. Not an error. */
  retained: { digest: string; size: number; mode: Retention['mode']; until: string }[];
  versioned: boolean;
  /** True when an earlier sweep of this mark was interrupted and this one finished it. */
  resumed: boolean;
  /** Stopped before its end (`shouldStop`): the blobs not yet deleted, handed to a new mark. */
  carriedOver?: { mark: string; blobs: number };
}

export interface GcReport {
  store: string;
  dryRun: boolean;
  graceMs: number;
  /** Images whose graphs were kept (not forgotten, held, in use), and the blobs they need. */
  kept: { images: number; blobs: number };
  swept: SweepReport[];
  /** Marks whose sweep must wait for writers that began before them. */
  waiting: { mark: string; writers: number; until: string }[];
  /** The mark written by this run (with --dry-run: what it would hold). */
  marked?: { mark: string; blobs: number; bytes: number; digests: string[] };
  /** Protocol files of ended writers and finished sweeps removed. */
  tidied: number;
  /** True when `shouldStop` ended the run early: what is left is done by the next run. */
  stopped?: boolean;
}

/** Thrown when gc cannot run on this store (it cannot delete). */
export class GcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GcError';
  }
}

export async function collectGarbage(vault: Vault, options: GcOptions = {}): Promise<GcReport> {
  const store = vault.store;
  const dryRun = options.dryRun ?? false;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  if (!dryRun && !canDelete(store))
    throw new GcError(`${vault.url}: this store cannot delete; gc needs one that can`);
  const emit = options.onEvent ?? (() => undefined);
  const report: GcReport = {
    store: vault.url,
    dryRun,
    graceMs,
    kept: { images: 0, blobs: 0 },
    swept: [],
    waiting: [],
    tidied: 0,
  };

  // The run's own file gives the store's clock: every age below is measured on it.
  const run = newId();
  let now = new Date();
  if (!dryRun) {
    const key = `${GC_KEYS.runs}${run}.json`;
    await store.putBytes(key, Buffer.from(JSON.stringify({ run, startedAt: now.toISOString(), graceMs })), {
      ifNoneMatch: true,
    });
    now = (await storeTime(store, key)) ?? now;
    if (Math.abs(now.getTime() - Date.now()) > CLOCK_SKEW_MS)
      throw new GcError(
        `${vault.url}: this machine's clock is more than ${CLOCK_SKEW_MS / 1000} s off the store's: fix it; nothing deleted`,
      );
  }

  // Sweep the marks earlier runs left, oldest first.
  const marks = await openMarks(store);
  const sessions = await listSessions(store);
  const stop = () => {
    if (!dryRun && options.shouldStop?.()) report.stopped = true;
    return report.stopped === true;
  };
  for (const { id, at, mark } of marks) {
    if (stop()) break;
    // Writers that began before the mark may have read the marks before it existed: wait for them to end.
    const blocking = sessions.filter(
      (s) =>
        !s.ended &&
        s.start.getTime() <= at.getTime() + (options.clockSkewMs ?? CLOCK_SKEW_MS) &&
        now.getTime() <= s.start.getTime() + s.maxMs + CLOCK_SKEW_MS,
    );
    if (blocking.length > 0) {
      const until = new Date(Math.max(...blocking.map((s) => s.start.getTime() + s.maxMs + CLOCK_SKEW_MS)));
      report.waiting.push({ mark: id, writers: blocking.length, until: until.toISOString() });
      emit({ phase: 'waiting', mark: id, writers: blocking.length, until: until.toISOString() });
      continue;
    }
    report.swept.push(await sweep(vault, id, mark, dryRun, { ...options, shouldStop: stop }, emit));
  }

  // Mark: unneeded now and older than the grace period. No new mark while one waits: it would only pile up.
  if (report.waiting.length === 0 && !stop()) {
    const needed = await neededBlobs(vault, options.inUse, report, emit);
    const cutoff = now.getTime() - graceMs;
    const candidates: MarkFile['candidates'] = [];
    for (const alg of ['sha256', 'sha512']) {
      for await (const obj of store.list(`${BLOBS_PREFIX}${alg}/`)) {
        const digest = `${alg}:${obj.key.slice(`${BLOBS_PREFIX}${alg}/`.length)}`;
        if (!Digest.isValid(digest) || needed.has(digest)) continue;
        // No time known (a store that says none) counts as new: never marked.
        if ((obj.lastModified?.getTime() ?? Infinity) < cutoff) candidates.push({ digest, size: obj.size });
      }
    }
    const bytes = candidates.reduce((n, c) => n + c.size, 0);
    if (candidates.length > 0 && !dryRun) {
      const file: MarkFile = { run, graceMs, candidates };
      await store.putBytes(`${GC_KEYS.marks}${run}.json`, Buffer.from(JSON.stringify(file)), {
        ifNoneMatch: true,
      });
    }
    if (candidates.length > 0) {
      report.marked = {
        mark: run,
        blobs: candidates.length,
        bytes,
        digests: candidates.map((c) => c.digest),
      };
      emit({ phase: 'mark', mark: run, candidates: candidates.length, bytes });
    }
  }
  if (!dryRun && !stop()) report.tidied = await tidy(vault, now);
  return report;
}

/**
 * Sweeps mark k: the flag first, then the rescues, then what is needed now, from scratch; deletes the rest of the
 * mark. A rerun after a crash does the same again: it deletes only marked blobs that are still unneeded.
 */
async function sweep(
  vault: Vault,
  id: string,
  mark: MarkFile,
  dryRun: boolean,
  options: GcOptions,
  emit: (e: GcEvent) => void,
): Promise<SweepReport> {
  const store = vault.store;
  const flag = `${GC_KEYS.sweep}${id}.json`;
  const resumed = (await store.head(flag)) !== undefined;
  if (!dryRun && !resumed)
    await store.putBytes(flag, Buffer.from(JSON.stringify({ mark: id, at: new Date().toISOString() })));
  const saved = await rescued(store, id);
  const needed = await neededBlobs(vault, options.inUse);
  const doomed = mark.candidates.filter((c) => !needed.has(c.digest) && !saved.has(c.digest));
  const report: SweepReport = {
    mark: id,
    deleted: { blobs: 0, bytes: 0 },
    keptAgain: mark.candidates.length - doomed.length,
    retained: [],
    versioned: false,
    resumed,
  };
  report.deleted = { blobs: doomed.length, bytes: doomed.reduce((n, c) => n + c.size, 0) };
  if (!dryRun && canDelete(store)) {
    let deleted = doomed.length;
    for (const [n, c] of doomed.entries()) {
      if (options.shouldStop?.()) {
        // The rest becomes a new mark before this one ends: never unmarked, and swept only after every writer that
        // began before it has ended, as any mark is.
        const rest = doomed.slice(n);
        const next = newId();
        const file: MarkFile = { run: next, graceMs: mark.graceMs, candidates: rest };
        await store.putBytes(`${GC_KEYS.marks}${next}.json`, Buffer.from(JSON.stringify(file)), {
          ifNoneMatch: true,
        });
        report.carriedOver = { mark: next, blobs: rest.length };
        deleted = n;
        break;
      }
      emit({ phase: 'sweep', mark: id, done: n, total: doomed.length, digest: c.digest });
      const r = await store.delete(blobKey(c.digest));
      report.versioned ||= r.versioned;
      if (r.retention && r.retention.until.getTime() > Date.now())
        report.retained.push({
          digest: c.digest,
          size: c.size,
          mode: r.retention.mode,
          until: r.retention.until.toISOString(),
        });
    }
    report.deleted = {
      blobs: deleted,
      bytes: doomed.slice(0, deleted).reduce((n, c) => n + c.size, 0),
    };
    // Referrer links to manifests now gone would name content the vault no longer has.
    const gone = new Set(doomed.slice(0, deleted).map((c) => c.digest));
    for await (const obj of store.list(REFERRERS_PREFIX)) {
      const name = obj.key.slice(obj.key.lastIndexOf('/') + 1).replace(/\.json$/, '');
      if (gone.has(name.replace('-', ':'))) await store.delete(obj.key);
    }
    await store.putBytes(`${GC_KEYS.done}${id}.json`, Buffer.from(JSON.stringify(report)));
  }
  return report;
}

/**
 * Every blob a kept image needs: images not forgotten, held images and images in use (forgotten or not), and what
 * the OCI layout's index.json names. Any read that fails throws: nothing is deleted on a partial answer.
 */
async function neededBlobs(
  vault: Vault,
  inUse: InUseSource | undefined,
  report?: GcReport,
  emit?: (e: GcEvent) => void,
): Promise<Set<string>> {
  const forgets = await new Forgets(vault.store).newest();
  const held = await new Holds(vault.store).heldImages();
  const running = new Set(((await inUse?.inUse()) ?? []).map((e) => e.digest));
  const walker = new GraphWalker(vault);
  const needed = new Set<string>();
  let images = 0;
  for (const repository of await vault.repositories()) {
    for (const record of await vault.images(repository)) {
      const id = imageId(repository, record.descriptor.digest);
      let graph;
      if (!forgetOf(record, forgets) || held.has(id)) graph = await walker.graph(id, record.descriptor);
      else if (running.size > 0) {
        // A forgotten image may still run (retention keeps what runs, but an inventory may have found it later).
        // Its content may be partly swept already: whatever is left of it that runs is kept.
        graph = await walker.graph(id, record.descriptor).catch((e: unknown) => {
          if (e instanceof GraphReadError) return undefined;
          throw e;
        });
        if (graph && ![...graph.manifests].some((m) => running.has(m))) graph = undefined;
      }
      if (!graph) continue;
      images++;
      for (const d of graph.blobs.keys()) needed.add(d);
    }
  }
  const index = await vault.store.getBytes(INDEX_FILE);
  if (index) {
    const manifests =
      (
        JSON.parse(index.toString('utf8')) as {
          manifests?: { digest: string; mediaType: string; size: number }[];
        }
      ).manifests ?? [];
    for (const m of manifests) {
      if (needed.has(m.digest) || !(await vault.store.head(blobKey(m.digest)))) continue;
      for (const d of (await walker.graph(`${INDEX_FILE} entry ${m.digest}`, m)).blobs.keys()) needed.add(d);
    }
  }
  if (report) report.kept = { images, blobs: needed.size };
  emit?.({ phase: 'roots', images });
  return needed;
}

/** Removes the session files of writers that ended or passed their cap, and the files of finished sweeps. */
async function tidy(vault: Vault, now: Date): Promise<number> {
  const store = vault.store;
  if (!canDelete(store)) return 0;
  let n = 0;
  for (const s of await listSessions(store)) {
    if (!s.ended && now.getTime() <= s.start.getTime() + s.maxMs + CLOCK_SKEW_MS) continue;
    await store.delete(s.key);
    await store.delete(s.key.replace(/\.json$/, '.end'));
    n++;
  }
  const open = new Set((await openMarks(store)).map((m) => m.id));
  for (const prefix of [GC_KEYS.rescue, GC_KEYS.sweep, GC_KEYS.marks, GC_KEYS.runs]) {
    for await (const obj of store.list(prefix)) {
      const id = obj.key
        .slice(prefix.length)
        .split('/')[0]
        .replace(/\.json$/, '');
      // A run's file stays while its mark is open; runs that marked nothing, and finished marks, go. The done/ files
      // stay: a writer that saw a mark open checks them (lib/content/gc-protocol.ts).
      if (open.has(id)) continue;
      await store.delete(obj.key);
      n++;
    }
  }
  return n;
}
