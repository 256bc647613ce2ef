import * as z from 'zod';
import {
  ObjectExistsError,
  WriteConflictError,
  mapBounded,
  type ObjectStore,
  type ObjectVersion,
  type Retention,
} from '../content';
import { PROVENANCE_PREFIX } from '../content/keys';
import { Digest, validateRepository } from '../oci';
import { canonicalHash } from './canonical';
import { LogContentionError, ProvenanceError } from './errors';
import type { LogEntry, ProvenanceStatement } from './types';

/*
 * Key layout, next to the vault's own records:
 *   imagevault/provenance/<repository>/@log/<seq, 10 digits>.json      the hash-chained log, written create-only
 *   imagevault/provenance/<repository>/_digests/<digest hex>/<seq>.json  a claim: digest's entry may be at seq
 *   imagevault/provenance/<repository>/_digests/indexed.json           marker: every entry has its claim
 *   imagevault/provenance/<repository>/_head.json                      {seq}: where listing the log may start
 *   imagevault/provenance/<repository>/_pending/<digest hex>.json      push identities (CloudTrail), see identity.ts
 *   imagevault/provenance/<repository>/_scans/<digest hex>.json        the newest scan result (ECR/Inspector), see scan.ts
 * Neither `@` nor `_` starts a repository path component, so these cannot collide with a repository name. The log
 * is `@log`, not `_log`: Athena (Hive) skips paths starting with `_` or `.` as hidden, and the Glue table over this
 * prefix must see the log — while the pending identities and scans, which are not log rows, are meant to stay hidden.
 */
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
const claimsPrefix = (repository: string, digest: string) =>
  `${digestsPrefix(repository)}${Digest.parse(digest).hex}/`;
const claimKey = (repository: string, digest: string, seq: number) =>
  `${claimsPrefix(repository, digest)}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
const indexedKey = (repository: string) => `${digestsPrefix(repository)}indexed.json`;
const headKey = (repository: string) => `${PROVENANCE_PREFIX}${repository}/_head.json`;
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
   * `not-kept`: the store has no version history (a directory, an unversioned bucket), so only the chain was
   * checked; `not-checked`: the version history could not be read (see versionsNote).
   */
  versions: 'checked' | 'not-kept' | 'not-checked';
  /** Why the versions were not checked (e.g. no s3:ListBucketVersions). */
  versionsNote?: string;
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
  /** The provenance logs of a vault: the one way to open them. */
  static of(vault: { readonly store: ObjectStore }, options: ProvenanceLogOptions = {}): ProvenanceLog {
    return new ProvenanceLog(vault.store, options);
  }

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
   * The newest entry for a digest, if any. Every writer claims `_digests/<digest>/<seq>` before it writes entry
   * `seq`, so the digest's entries are among its claims: the newest claim whose entry holds this digest is the
   * answer, a LIST and a GET in a log of ten entries or of a hundred thousand. (A claim whose entry another writer
   * won, or whose write failed, is skipped.) A log written before claims existed is read whole until its next append
   * indexes it: reading writes nothing.
   */
  async latest(repository: string, digest: string): Promise<LogEntry | undefined> {
    validateRepository(repository);
    return (await this.latestThrough(repository, digest, Number.POSITIVE_INFINITY)).entry;
  }

  /**
   * The newest entry for a digest among entries numbered up to `maxSeq`, and whether the log is indexed (an append
   * needs to know too, and the marker is never removed). `read`: an entry the caller has just read, not read again
   * (an append reads the newest, which is often the digest's own).
   */
  private async latestThrough(
    repository: string,
    digest: string,
    maxSeq: number,
    read?: { key: string; entry: LogEntry },
  ): Promise<{ entry: LogEntry | undefined; indexed: boolean }> {
    if (!(await this.store.head(indexedKey(repository))))
      return {
        entry: latestOf(
          (await this.entries(repository)).filter((e) => e.seq <= maxSeq),
          digest,
        ),
        indexed: false,
      };
    const claims: number[] = [];
    for await (const obj of this.store.list(claimsPrefix(repository, digest))) claims.push(seqOfKey(obj.key));
    for (const seq of claims.filter((n) => n <= maxSeq).sort((a, b) => b - a)) {
      const key = logKey(repository, seq);
      const entry = key === read?.key ? read.entry : await this.read(key);
      if (entry?.digest === digest) return { entry, indexed: true };
    }
    return { entry: undefined, indexed: true };
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

  /** The entry keys in sequence order, after `startAfter` if given (LIST only: 1 request per 1,000 entries). */
  private async keys(repository: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const obj of this.store.list(logPrefix(repository), { startAfter })) keys.push(obj.key);
    return keys.sort();
  }

  /**
   * The newest entry key. Listing starts from the head hint (a seq some earlier append reached), so an append
   * lists only the log's tail; the hint may lag (it is written after the entry) but never runs ahead of the log,
   * and a hint at an entry that is not there is ignored. The listing starts just before the hinted entry, so the
   * same LIST that finds the tail also says whether the hinted entry is there (no HEAD of its own).
   */
  private async lastKey(repository: string): Promise<string | undefined> {
    const bytes = await this.store.getBytes(headKey(repository));
    const hinted = bytes ? (JSON.parse(bytes.toString('utf8')) as { seq?: unknown }).seq : undefined;
    if (typeof hinted === 'number' && Number.isSafeInteger(hinted) && hinted > 0) {
      const from = await this.keys(repository, logKey(repository, hinted - 1));
      if (from[0] === logKey(repository, hinted)) return from[from.length - 1];
    }
    const all = await this.keys(repository);
    return all[all.length - 1];
  }

  private async read(key: string): Promise<LogEntry | undefined> {
    const bytes = await this.store.getBytes(key);
    return bytes ? LogEntrySchema.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
  }

  private async claim(repository: string, digest: string, seq: number): Promise<void> {
    await this.store.putBytes(claimKey(repository, digest, seq), Buffer.from(`{"seq":${seq}}\n`), {
      contentType: 'application/json',
    });
  }

  /**
   * Before the first append by this version: claims for the entries already there (an older log, read once, 16
   * at a time), then the marker that says every entry has its claim.
   */
  private async ensureIndexed(repository: string, indexed: boolean): Promise<void> {
    if (indexed) return;
    const all = await this.entries(repository);
    await mapBounded(all, READ_CONCURRENCY, (e) => this.claim(repository, e.digest, e.seq));
    await this.store.putBytes(indexedKey(repository), Buffer.from('{}\n'), {
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
    const { entry } = await this.appendFor(repository, digest, async () => statement, time);
    return entry!;
  }

  /**
   * Appends what `build` makes of the digest's newest entry, unless it returns undefined (nothing new to say).
   * When another writer takes the sequence number first, `build` runs again on the log as it is then: an entry
   * another writer appended for the same digest meanwhile is what it builds on, so concurrent enrichments (a scan
   * and an identity, two tags of one push) each end up in the newest entry instead of one replacing the other.
   */
  async appendFor(
    repository: string,
    digest: string,
    build: (previous: LogEntry | undefined) => Promise<ProvenanceStatement | undefined>,
    time = new Date().toISOString(),
  ): Promise<{ entry: LogEntry | undefined; appended: boolean }> {
    validateRepository(repository);
    Digest.parse(digest);
    let lost: unknown;
    for (let attempt = 1; attempt <= APPEND_ATTEMPTS; attempt++) {
      // Only the newest entry is read: its hash is the link, its seq + 1 the next key.
      const lastKey = await this.lastKey(repository);
      const last = lastKey ? await this.read(lastKey) : undefined;
      if (lastKey && !last)
        throw new ProvenanceError(`${repository}: the newest log entry ${lastKey} vanished while reading`);
      // Numbered from the newest key, which is what create-only protects, whatever the entry in it says.
      const lastSeq = lastKey ? seqOfKey(lastKey) : 0;
      const { entry: previous, indexed } = await this.latestThrough(
        repository,
        digest,
        lastSeq,
        lastKey && last ? { key: lastKey, entry: last } : undefined,
      );
      const statement = await build(previous);
      if (statement === undefined) return { entry: previous, appended: false };
      // Only a writer indexes an older log: reading, and deciding there is nothing to say, write nothing.
      await this.ensureIndexed(repository, indexed);
      const body = {
        seq: lastSeq + 1,
        time,
        repository,
        digest,
        statement,
        previous: last?.hash ?? null,
      };
      const entry: LogEntry = { ...body, hash: entryHash(body) };
      const lock = this.options.retention;
      // The claim first: a reader that finds the entry always finds its claim.
      await this.claim(repository, digest, entry.seq);
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
        // Another writer took the number, or kept conflicting on it (the store already retried its 409s): whether
        // it won is unknown, so the log is read again and the entry built on whatever is there now.
        if (!(e instanceof ObjectExistsError) && !(e instanceof WriteConflictError)) throw e;
        lost = e;
        continue;
      }
      await this.store.putBytes(headKey(repository), Buffer.from(`{"seq":${entry.seq}}\n`), {
        contentType: 'application/json',
      });
      return { entry, appended: true };
    }
    throw new LogContentionError(
      `${repository}: could not append ${digest} to the provenance log after ${APPEND_ATTEMPTS} attempts (other writers took or contended for each sequence number; last: ${(lost as Error).message})`,
      { cause: lost },
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
    const { versions, note } = await this.checkVersions(repository, problems);
    return {
      repository,
      entries: keys.length,
      ok: problems.length === 0,
      problems,
      ...(previousHash ? { head: previousHash } : {}),
      versions,
      ...(note ? { versionsNote: note } : {}),
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
  ): Promise<{ versions: ChainReport['versions']; note?: string }> {
    if (!this.store.listVersions) return { versions: 'not-kept' };
    const byKey = new Map<string, ObjectVersion[]>();
    try {
      for await (const v of this.store.listVersions(logPrefix(repository))) {
        const list = byKey.get(v.key) ?? [];
        list.push(v);
        byKey.set(v.key, list);
      }
    } catch (e) {
      return {
        versions: 'not-checked',
        note: `the version history could not be read (s3:ListBucketVersions needed): ${(e as Error).message}`,
      };
    }
    // S3 lists the one version of each key of an unversioned (or suspended) bucket with the id "null": a history
    // that cannot show anything.
    if ([...byKey.values()].some((vs) => vs.some((v) => v.versionId === 'null')))
      return {
        versions: 'not-kept',
        note: 'the bucket does not keep versions (versioning off or suspended)',
      };
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
    return { versions: 'checked' };
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
