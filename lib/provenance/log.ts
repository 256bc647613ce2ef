import { z } from 'zod';
import {
  ObjectExistsError,
  mapBounded,
  type ObjectStore,
  type ObjectVersion,
  type Retention,
} from '../content';
import { Digest, validateRepository } from '../oci';
import { canonicalHash } from './canonical';
import { LogContentionError, ProvenanceError } from './errors';
import type { LogEntry, ProvenanceStatement } from './types';

/*
 * Key layout, next to the vault's own records:
 *   imagevault/provenance/<repository>/@log/<seq, 10 digits>.json      the hash-chained log, written create-only
 *   imagevault/provenance/<repository>/_digests/<digest hex>.json      {seq}: the newest entry of each digest
 *   imagevault/provenance/<repository>/_digests/indexed.json           {throughSeq}: pointers exist up to there
 *   imagevault/provenance/<repository>/_pending/<digest hex>.json      push identities (CloudTrail), see identity.ts
 *   imagevault/provenance/<repository>/_scans/<digest hex>.json        the newest scan result (ECR/Inspector), see scan.ts
 * Neither `@` nor `_` starts a repository path component, so these cannot collide with a repository name. The log
 * is `@log`, not `_log`: Athena (Hive) skips paths starting with `_` or `.` as hidden, and the Glue table over this
 * prefix must see the log — while the pending identities and scans, which are not log rows, are meant to stay hidden.
 */
export const PROVENANCE_PREFIX = 'imagevault/provenance/';
const SEQ_DIGITS = 10;
/** Appends retried when another writer takes the same sequence number; a handful covers any real contention. */
const APPEND_ATTEMPTS = 5;
/** Entries read at once when a whole log is read (list, verify): each is one small GET. */
const READ_CONCURRENCY = 16;
const DAY_MS = 86_400_000;

export const logPrefix = (repository: string) => `${PROVENANCE_PREFIX}${repository}/@log/`;
export const logKey = (repository: string, seq: number) =>
  `${logPrefix(repository)}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
const digestsPrefix = (repository: string) => `${PROVENANCE_PREFIX}${repository}/_digests/`;
const pointerKey = (repository: string, digest: string) =>
  `${digestsPrefix(repository)}${Digest.parse(digest).hex}.json`;
const indexedKey = (repository: string) => `${digestsPrefix(repository)}indexed.json`;
const seqOfKey = (key: string): number => Number(/(\d+)\.json$/.exec(key)?.[1] ?? NaN);

export const pendingKey = (repository: string, digest: string) =>
  `${PROVENANCE_PREFIX}${repository}/_pending/${Digest.parse(digest).hex}.json`;
export const scanKey = (repository: string, digest: string) =>
  `${PROVENANCE_PREFIX}${repository}/_scans/${Digest.parse(digest).hex}.json`;

const LogEntrySchema = z.object({
  seq: z.number().int().positive(),
  time: z.string(),
  repository: z.string(),
  digest: z.string(),
  statement: z.custom<ProvenanceStatement>(
    (v) => typeof v === 'object' && v !== null && 'predicate' in v && 'subject' in v,
  ),
  previous: z.string().nullable(),
  hash: z.string(),
});

/** The hash an entry must carry: sha256 of the canonical JSON of every member but `hash`. */
export function entryHash(entry: Omit<LogEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = entry;
  return canonicalHash(rest);
}

/**
 * `overwritten` and `deleted` come from the bucket's version history, not the chain: they show a rewrite that kept
 * the chain consistent (a re-hashed forgery) and a removed newest entry, which no chain can show by itself.
 */
export type ChainProblemKind = 'edited' | 'removed' | 'reordered' | 'unreadable' | 'overwritten' | 'deleted';

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The object key of the entry at fault (or of the entry after a gap). */
  key: string;
  seq?: number;
  detail: string;
}

export interface ChainReport {
  repository: string;
  entries: number;
  ok: boolean;
  problems: ChainProblem[];
  /** The last entry's hash: keep it elsewhere to detect a truncated tail, which no chain can show by itself. */
  head?: string;
  /**
   * `checked`: the store keeps versions and every entry key was found written exactly once and never deleted;
   * `not-kept`: the store has no version history (a directory), so only the chain was checked.
   */
  versions: 'checked' | 'not-kept';
}

/** Object Lock for each new log entry: its mode, and how many days from the append nobody may remove it. */
export interface LogRetention {
  readonly mode: Retention['mode'];
  readonly days: number;
}

export interface ProvenanceLogOptions {
  /**
   * Lock every entry written (S3 Object Lock; the bucket must have been created with it). Independent of the
   * bucket's default retention, so records can be kept longer than the blobs.
   * @default none: entries get the bucket's default retention, if it has one
   */
  readonly retention?: LogRetention;
}

/**
 * A repository's provenance log: append-only, each entry carrying the hash of the one before, written create-only
 * so an append never replaces an entry. Enrichment (an identity arriving later, a scan) is a new entry for the
 * same digest; the newest entry for a digest is its current record.
 */
export class ProvenanceLog {
  constructor(
    readonly store: ObjectStore,
    readonly options: ProvenanceLogOptions = {},
  ) {
    const r = options.retention;
    if (r && (!Number.isSafeInteger(r.days) || r.days < 1))
      throw new ProvenanceError(`provenance retention must be a whole number of days ≥ 1, got ${r.days}`);
  }

  /** Every entry, in sequence order, parsed but not verified (see verify). */
  async entries(repository: string): Promise<LogEntry[]> {
    validateRepository(repository);
    const read = await mapBounded(await this.keys(repository), READ_CONCURRENCY, (key) => this.read(key));
    return read.filter((e): e is LogEntry => e !== undefined).sort((a, b) => a.seq - b.seq);
  }

  /**
   * The newest entry for a digest, if any: through the digest's pointer, so one image's record costs the same
   * few requests in a log of ten entries or of a hundred thousand. A log written before the pointers existed is
   * read whole until its next append indexes it (reading writes nothing). A pointer can lag (a writer that stopped between its entry and its pointer, two
   * writers of one digest at once): the entry then returned is the one before, and the caller appends an entry
   * that repeats facts, never loses them (identities and scans are re-read from their own stores).
   */
  async latest(repository: string, digest: string): Promise<LogEntry | undefined> {
    validateRepository(repository);
    if (!(await this.store.head(indexedKey(repository))))
      return latestOf(await this.entries(repository), digest);
    const pointer = await this.readPointer(repository, digest);
    if (pointer === undefined) return undefined;
    const entry = await this.read(logKey(repository, pointer));
    if (entry?.digest === digest) return entry;
    // A pointer at nothing, or at another digest's entry, is not trusted: read the log.
    return latestOf(await this.entries(repository), digest);
  }

  /** The entries appended since `since` (by their time), newest first: the tail a periodic job needs. */
  async recent(repository: string, since: Date): Promise<LogEntry[]> {
    validateRepository(repository);
    const keys = (await this.keys(repository)).reverse();
    const out: LogEntry[] = [];
    // A batch at a time from the newest, read at once, until an entry older than `since` turns up.
    for (let i = 0; i < keys.length; i += READ_CONCURRENCY) {
      const batch = await mapBounded(keys.slice(i, i + READ_CONCURRENCY), READ_CONCURRENCY, (k) =>
        this.read(k),
      );
      for (const entry of batch) {
        if (!entry) continue;
        if (new Date(entry.time).getTime() < since.getTime()) return out;
        out.push(entry);
      }
    }
    return out;
  }

  /** The entry keys in sequence order (LIST only: 1 request per 1,000 entries). */
  private async keys(repository: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const obj of this.store.list(logPrefix(repository))) keys.push(obj.key);
    return keys.sort();
  }

  private async read(key: string): Promise<LogEntry | undefined> {
    const bytes = await this.store.getBytes(key);
    return bytes ? LogEntrySchema.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
  }

  private async readPointer(repository: string, digest: string): Promise<number | undefined> {
    const bytes = await this.store.getBytes(pointerKey(repository, digest));
    if (!bytes) return undefined;
    const seq = (JSON.parse(bytes.toString('utf8')) as { seq?: unknown }).seq;
    return typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined;
  }

  /** Points the digest at entry `seq`, unless it points at a newer one already. */
  private async writePointer(repository: string, digest: string, seq: number): Promise<void> {
    const have = await this.readPointer(repository, digest);
    if (have !== undefined && have >= seq) return;
    await this.store.putBytes(
      pointerKey(repository, digest),
      Buffer.from(JSON.stringify({ seq, digest }) + '\n'),
      {
        contentType: 'application/json',
      },
    );
  }

  /**
   * Before the first append by this version: writes the pointers of the entries already there (an older log, read
   * once), then the marker that says every entry has its pointer.
   */
  private async ensureIndexed(repository: string): Promise<void> {
    if (await this.store.head(indexedKey(repository))) return;
    const all = await this.entries(repository);
    const newest = new Map<string, number>();
    for (const e of all) newest.set(e.digest, Math.max(newest.get(e.digest) ?? 0, e.seq));
    for (const [digest, seq] of newest) await this.writePointer(repository, digest, seq);
    const throughSeq = all.length > 0 ? all[all.length - 1].seq : 0;
    await this.store.putBytes(indexedKey(repository), Buffer.from(JSON.stringify({ throughSeq }) + '\n'), {
      contentType: 'application/json',
    });
  }

  /** Appends a statement for (repository, digest) at the end of the chain. */
  async append(
    repository: string,
    digest: string,
    statement: ProvenanceStatement,
    time = new Date().toISOString(),
  ): Promise<LogEntry> {
    validateRepository(repository);
    Digest.parse(digest);
    await this.ensureIndexed(repository);
    for (let attempt = 1; attempt <= APPEND_ATTEMPTS; attempt++) {
      // Only the newest entry is read: its hash is the link, its seq + 1 the next key.
      const keys = await this.keys(repository);
      const last = keys.length > 0 ? await this.read(keys[keys.length - 1]) : undefined;
      if (keys.length > 0 && !last)
        throw new ProvenanceError(
          `${repository}: the newest log entry ${keys[keys.length - 1]} vanished while reading`,
        );
      const body = {
        // Numbered from the newest key, which is what create-only protects, whatever the entry in it says.
        seq: keys.length > 0 ? seqOfKey(keys[keys.length - 1]) + 1 : 1,
        time,
        repository,
        digest,
        statement,
        previous: last?.hash ?? null,
      };
      const entry: LogEntry = { ...body, hash: entryHash(body) };
      const lock = this.options.retention;
      try {
        await this.store.putBytes(
          logKey(repository, entry.seq),
          Buffer.from(JSON.stringify(entry, null, 2) + '\n'),
          {
            ifNoneMatch: true,
            contentType: 'application/json',
            // From the real clock, not the entry's time: a lock is about when the object was written.
            ...(lock
              ? { retention: { mode: lock.mode, until: new Date(Date.now() + lock.days * DAY_MS) } }
              : {}),
          },
        );
      } catch (e) {
        if (!(e instanceof ObjectExistsError)) throw e;
        continue;
      }
      await this.writePointer(repository, digest, entry.seq);
      return entry;
    }
    throw new LogContentionError(
      `${repository}: could not append to the provenance log after ${APPEND_ATTEMPTS} attempts (other writers took each sequence number)`,
    );
  }

  /** Repositories that have a provenance log, found by walking the tree. */
  async repositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (path: string): Promise<void> => {
      const dirs = await this.store.listDirs(`${PROVENANCE_PREFIX}${path}`);
      if (dirs.includes('@log')) out.push(path.replace(/\/$/, ''));
      for (const d of dirs) if (!d.startsWith('_')) await walk(`${path}${d}/`);
    };
    await walk('');
    return out.sort();
  }

  /**
   * Recomputes every entry's hash and link. An edited entry no longer matches its hash; a removed one leaves a gap
   * in the sequence (and the next entry's `previous` pointing at nothing we hold); an entry moved to another
   * sequence number, or a forged one spliced in, breaks its file name or its link. A truncated tail is not visible
   * from the chain alone: compare `head` with a copy kept elsewhere (or rely on Object Lock).
   */
  async verify(repository: string): Promise<ChainReport> {
    validateRepository(repository);
    const problems: ChainProblem[] = [];
    let expectedSeq = 1;
    let previousHash: string | null = null;
    // False right after an unreadable entry: its hash is unknown, so the next link cannot be checked.
    let linkKnown = true;
    // Read many at once (each is a round trip on S3), then check in order: the links need the order.
    const keys = await this.keys(repository);
    const read = await mapBounded(keys, READ_CONCURRENCY, async (key) => {
      try {
        const entry = await this.read(key);
        return entry ?? new ProvenanceError('object vanished while reading');
      } catch (e) {
        return e as Error;
      }
    });
    for (const [i, key] of keys.entries()) {
      const keySeq = seqOfKey(key);
      const entry = read[i];
      if (entry instanceof Error) {
        problems.push({ kind: 'unreadable', key, detail: entry.message });
        expectedSeq = (Number.isFinite(keySeq) ? keySeq : expectedSeq) + 1;
        linkKnown = false;
        continue;
      }
      const actual = entryHash(entry);
      if (actual !== entry.hash) {
        problems.push({
          kind: 'edited',
          key,
          seq: entry.seq,
          detail: `entry ${entry.seq} was changed after it was written: its content hashes to ${actual}, it says ${entry.hash}`,
        });
      }
      if (entry.seq !== keySeq) {
        problems.push({
          kind: 'reordered',
          key,
          seq: entry.seq,
          detail: `the object for sequence ${keySeq} holds entry ${entry.seq}`,
        });
      } else if (keySeq > expectedSeq) {
        problems.push({
          kind: 'removed',
          key,
          seq: entry.seq,
          detail:
            keySeq === expectedSeq + 1
              ? `entry ${expectedSeq} is missing before entry ${keySeq}`
              : `entries ${expectedSeq}..${keySeq - 1} are missing before entry ${keySeq}`,
        });
      } else if (linkKnown && entry.previous !== previousHash) {
        problems.push({
          kind: entry.previous === null ? 'reordered' : 'removed',
          key,
          seq: entry.seq,
          detail: `entry ${entry.seq} links to ${entry.previous ?? 'nothing'}, but the entry before it hashes to ${previousHash ?? 'nothing (it is first)'}: an entry before it was replaced or removed`,
        });
      }
      expectedSeq = (Number.isFinite(keySeq) ? keySeq : expectedSeq) + 1;
      previousHash = entry.hash;
      linkKnown = true;
    }
    const versions = await this.checkVersions(repository, problems);
    return {
      repository,
      entries: keys.length,
      ok: problems.length === 0,
      problems,
      ...(previousHash ? { head: previousHash } : {}),
      versions,
    };
  }

  /**
   * On a versioned store, every entry key must have exactly one version and no delete marker: entries are written
   * create-only, so a second version is an overwrite and a marker a deletion — whatever the chain says. Under
   * Object Lock neither can remove the original version, which is still there to compare.
   */
  private async checkVersions(
    repository: string,
    problems: ChainProblem[],
  ): Promise<ChainReport['versions']> {
    if (!this.store.listVersions) return 'not-kept';
    const byKey = new Map<string, ObjectVersion[]>();
    for await (const v of this.store.listVersions(logPrefix(repository))) {
      const list = byKey.get(v.key) ?? [];
      list.push(v);
      byKey.set(v.key, list);
    }
    for (const [key, versions] of byKey) {
      const seq = seqOfKey(key);
      const at = Number.isFinite(seq) ? { seq } : {};
      const markers = versions.filter((v) => v.deleteMarker);
      const written = versions.filter((v) => !v.deleteMarker);
      const latest = versions.find((v) => v.isLatest);
      if (latest?.deleteMarker) {
        problems.push({
          kind: 'deleted',
          key,
          ...at,
          detail: `entry ${Number.isFinite(seq) ? seq : key} was deleted (delete marker ${latest.versionId}); ${
            written.length > 0
              ? `its written version ${written[written.length - 1].versionId} is still in the bucket`
              : 'no version of it is left'
          }`,
        });
      } else if (markers.length > 0) {
        problems.push({
          kind: 'deleted',
          key,
          ...at,
          detail: `entry ${Number.isFinite(seq) ? seq : key} was deleted and written again`,
        });
      }
      if (written.length > 1) {
        problems.push({
          kind: 'overwritten',
          key,
          ...at,
          detail: `entry ${Number.isFinite(seq) ? seq : key} was written ${written.length} times; the first version, ${
            written[written.length - 1].versionId
          }, is the original`,
        });
      }
    }
    return 'checked';
  }
}

/** The newest entry for a digest among entries (in any order). */
export function latestOf(entries: LogEntry[], digest: string): LogEntry | undefined {
  let hit: LogEntry | undefined;
  for (const e of entries) if (e.digest === digest && (!hit || e.seq > hit.seq)) hit = e;
  return hit;
}

/** The newest entry of every digest in a repository's log, newest push first. */
export function latestByDigest(entries: LogEntry[]): LogEntry[] {
  const byDigest = new Map<string, LogEntry>();
  for (const e of entries) {
    const have = byDigest.get(e.digest);
    if (!have || e.seq > have.seq) byDigest.set(e.digest, e);
  }
  return [...byDigest.values()].sort((a, b) =>
    b.statement.predicate.push.time.localeCompare(a.statement.predicate.push.time),
  );
}
