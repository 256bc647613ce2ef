import { randomBytes } from 'node:crypto';
import { Digest, type Descriptor } from '../oci';
import { GraphReadError, GraphWalker } from './graph';
import { GC_PREFIX } from './keys';
import { blobKey } from './layout';
import type { ObjectStore } from './objectstore';
import type { Vault } from './vault';

/*
 * The files by which garbage collection and writers keep each other safe (the protocol is in the README, "Garbage
 * collection"). All under `imagevault/gc/`, all small, written once:
 *
 *   sessions/<id>_<maxSeconds>s.json   a writer began (its store time is the start); `.end` beside it: it ended
 *   runs/<k>.json                      gc run k began (its store time is T_k)
 *   marks/<k>.json                     the blobs run k found unneeded and older than the grace period (time M_k)
 *   rescue/<k>/<alg>-<hex>             a writer needs this marked blob: the sweep of k must keep it
 *   sweep/<k>.json                     the sweep of mark k began (written before it lists the rescues)
 *   done/<k>.json                      the sweep of mark k ended
 *
 * A race the protocol closes (distribution#3045): a writer finds a blob already stored, GC reads the roots, the
 * writer commits a record naming the blob, GC deletes it. Blob age cannot close it (a reused blob is old).
 */

export const GC_KEYS = {
  sessions: `${GC_PREFIX}sessions/`,
  runs: `${GC_PREFIX}runs/`,
  marks: `${GC_PREFIX}marks/`,
  rescue: `${GC_PREFIX}rescue/`,
  sweep: `${GC_PREFIX}sweep/`,
  done: `${GC_PREFIX}done/`,
} as const;

/** Clocks may differ this much between writers, gc and the store; a writer further off is refused. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** How long a CLI snapshot may take from start to commit: past it, it refuses to commit (and a sweep stops waiting). */
export const DEFAULT_WRITER_MAX_MS = 12 * 60 * 60 * 1000;

/** Key-safe, sortable time with a random tail: run and session ids. */
export function newId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace('.', '')}_${randomBytes(4).toString('hex')}`;
}

/** Thrown when a writer cannot take part safely (its clock is off, it ran past its cap): it commits nothing. */
export class WriteSessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteSessionError';
  }
}

/** The store's time of one object just written (S3's LastModified, a file's mtime), or undefined. */
export async function storeTime(store: ObjectStore, key: string): Promise<Date | undefined> {
  for await (const obj of store.list(key)) if (obj.key === key) return obj.lastModified;
  return undefined;
}

/** A mark: the blobs gc run k would delete, if a later sweep still finds them unneeded. */
export interface MarkFile {
  run: string;
  graceMs: number;
  candidates: { digest: string; size: number }[];
}

/** The marks whose sweep has not ended, oldest first, with their store time. */
export async function openMarks(store: ObjectStore): Promise<{ id: string; at: Date; mark: MarkFile }[]> {
  const done = new Set<string>();
  for await (const obj of store.list(GC_KEYS.done))
    done.add(obj.key.slice(GC_KEYS.done.length, -'.json'.length));
  const out = [];
  for await (const obj of store.list(GC_KEYS.marks)) {
    const id = obj.key.slice(GC_KEYS.marks.length, -'.json'.length);
    if (done.has(id)) continue;
    const bytes = await store.getBytes(obj.key);
    if (!bytes) continue;
    out.push({
      id,
      at: obj.lastModified ?? new Date(0),
      mark: JSON.parse(bytes.toString('utf8')) as MarkFile,
    });
  }
  return out;
}

/** A writer's session as gc sees it. */
export interface SessionInfo {
  id: string;
  key: string;
  start: Date;
  maxMs: number;
  ended: boolean;
}

export async function listSessions(store: ObjectStore): Promise<SessionInfo[]> {
  const starts = new Map<string, SessionInfo>();
  const ends = new Set<string>();
  for await (const obj of store.list(GC_KEYS.sessions)) {
    const name = obj.key.slice(GC_KEYS.sessions.length);
    const m = /^(.+)_(\d+)s\.(json|end)$/.exec(name);
    if (!m) continue;
    if (m[3] === 'end') ends.add(m[1]);
    else
      starts.set(m[1], {
        id: m[1],
        key: obj.key,
        start: obj.lastModified ?? new Date(0),
        maxMs: Number(m[2]) * 1000,
        ended: false,
      });
  }
  return [...starts.values()].map((s) => ({ ...s, ended: ends.has(s.id) }));
}

const rescueKey = (mark: string, digest: string) => {
  const d = Digest.parse(digest);
  return `${GC_KEYS.rescue}${mark}/${d.algorithm}-${d.hex}`;
};

/** The digests writers rescued from mark k. */
export async function rescued(store: ObjectStore, mark: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const obj of store.list(`${GC_KEYS.rescue}${mark}/`)) {
    const name = obj.key.slice(`${GC_KEYS.rescue}${mark}/`.length);
    out.add(name.replace('-', ':'));
  }
  return out;
}

export interface WriteSessionOptions {
  /** The longest this writer may take from begin to commit. @default DEFAULT_WRITER_MAX_MS */
  readonly maxMs?: number;
  /** How long to wait for a running sweep to end before giving up the commit. @default 10 minutes */
  readonly sweepWaitMs?: number;
}

/**
 * A writer's side of the protocol: begin before copying, `beforeCommit` just before writing the record that names
 * the image, `end` after it (whatever happened). `beforeCommit` answers the blobs a concurrent sweep deleted after
 * this writer found them stored: copy them again, then call it again.
 */
export class WriteSession {
  private constructor(
    private readonly vault: Vault,
    readonly id: string,
    private readonly key: string,
    readonly start: Date,
    private readonly maxMs: number,
    private readonly sweepWaitMs: number,
  ) {}

  static async begin(vault: Vault, options: WriteSessionOptions = {}): Promise<WriteSession> {
    const maxMs = options.maxMs ?? DEFAULT_WRITER_MAX_MS;
    const id = newId();
    const key = `${GC_KEYS.sessions}${id}_${Math.ceil(maxMs / 1000)}s.json`;
    const local = Date.now();
    await vault.store.putBytes(
      key,
      Buffer.from(JSON.stringify({ id, maxMs, startedAt: new Date(local).toISOString() })),
      {
        ifNoneMatch: true,
        contentType: 'application/json',
      },
    );
    const start = (await storeTime(vault.store, key)) ?? new Date(local);
    const session = new WriteSession(vault, id, key, start, maxMs, options.sweepWaitMs ?? 10 * 60 * 1000);
    if (Math.abs(start.getTime() - local) > CLOCK_SKEW_MS) {
      await session.end();
      throw new WriteSessionError(
        `${vault.url}: this machine's clock is ${Math.round((local - start.getTime()) / 1000)} s off the store's (more than ${CLOCK_SKEW_MS / 1000} s): fix the clock; nothing was written`,
      );
    }
    return session;
  }

  /**
   * Rescues the blobs of `root`'s graph that an open mark names, then checks whether that mark's sweep has begun:
   * if so, waits for it to end and answers the blobs it deleted (to be copied again). Refuses past the writer's cap.
   */
  async beforeCommit(image: string, root: Descriptor): Promise<string[]> {
    if (Date.now() > this.start.getTime() + this.maxMs - CLOCK_SKEW_MS)
      throw new WriteSessionError(
        `${image}: the snapshot ran longer than its ${Math.round(this.maxMs / 60000)} minutes; garbage collection may have swept what it found stored, so it is not recorded: run it again`,
      );
    const { open, sweptSince } = await this.marksSinceStart();
    if (open.length === 0 && !sweptSince) return [];
    let blobs: Map<string, number>;
    try {
      blobs = (await new GraphWalker(this.vault).graph(image, root)).blobs;
    } catch (e) {
      // Part of the graph is already gone: copy it again.
      if (e instanceof GraphReadError) return [root.digest];
      throw e;
    }
    const store = this.vault.store;
    const lost = new Set<string>();
    // A sweep finished since this writer began: what it found stored may be gone. Check all of it.
    if (sweptSince) for (const d of blobs.keys()) if (!(await store.head(blobKey(d)))) lost.add(d);
    for (const { id, mark } of open) {
      const hits = mark.candidates.map((c) => c.digest).filter((d) => blobs.has(d));
      if (hits.length === 0) continue;
      for (const d of hits) await store.putBytes(rescueKey(id, d), Buffer.alloc(0));
      // The sweep writes its flag before it lists the rescues: no flag now means it will see ours. Its done file
      // counts too (gc tidies the flag of a finished sweep, never the done file).
      if (
        !(await store.head(`${GC_KEYS.sweep}${id}.json`)) &&
        !(await store.head(`${GC_KEYS.done}${id}.json`))
      )
        continue;
      await this.awaitDone(image, id);
      for (const d of hits) if (!(await store.head(blobKey(d)))) lost.add(d);
    }
    return [...lost];
  }

  /**
   * The marks not yet swept, and whether a sweep ended since this session began (its mark may be tidied away, so
   * that is all a writer can know of it). Marks are listed before the done files, so a mark never falls between.
   */
  private async marksSinceStart(): Promise<{ open: { id: string; mark: MarkFile }[]; sweptSince: boolean }> {
    const store = this.vault.store;
    const markIds: string[] = [];
    for await (const obj of store.list(GC_KEYS.marks))
      markIds.push(obj.key.slice(GC_KEYS.marks.length, -'.json'.length));
    const done = new Map<string, Date>();
    for await (const obj of store.list(GC_KEYS.done))
      done.set(obj.key.slice(GC_KEYS.done.length, -'.json'.length), obj.lastModified ?? new Date());
    const since = this.start.getTime() - CLOCK_SKEW_MS;
    let sweptSince = [...done.values()].some((t) => t.getTime() >= since);
    const open = [];
    for (const id of markIds) {
      if (done.has(id)) continue;
      const bytes = await store.getBytes(`${GC_KEYS.marks}${id}.json`);
      // Gone between the two listings: swept and tidied meanwhile.
      if (!bytes) sweptSince = true;
      else open.push({ id, mark: JSON.parse(bytes.toString('utf8')) as MarkFile });
    }
    return { open, sweptSince };
  }

  async end(): Promise<void> {
    await this.vault.store.putBytes(this.key.replace(/\.json$/, '.end'), Buffer.alloc(0));
  }

  private async awaitDone(image: string, mark: string): Promise<void> {
    const until = Date.now() + this.sweepWaitMs;
    for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
      if (await this.vault.store.head(`${GC_KEYS.done}${mark}.json`)) return;
      if (Date.now() > until)
        throw new WriteSessionError(
          `${image}: garbage collection run ${mark} is sweeping and has not ended within ${this.sweepWaitMs / 1000} s; not recorded: run the snapshot again`,
        );
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
