import { z } from 'zod';
import { ObjectExistsError, type ObjectStore, type ObjectVersion, type Retention } from '../content';
import { Digest, validateRepository } from '../oci';
import { canonicalHash } from './canonical';
import { LogContentionError, ProvenanceError } from './errors';
import type { LogEntry, ProvenanceStatement } from './types';

/*
 * Key layout, next to the vault's own records:
 *   imagevault/provenance/<repository>/@log/<seq, 10 digits>.json      the hash-chained log, written create-only
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
const DAY_MS = 86_400_000;

export const logPrefix = (repository: string) => `${PROVENANCE_PREFIX}${repository}/@log/`;
export const logKey = (repository: string, seq: number) =>
  `${logPrefix(repository)}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
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
    const out: LogEntry[] = [];
    for await (const obj of this.store.list(logPrefix(repository))) {
      const bytes = await this.store.getBytes(obj.key);
      if (bytes) out.push(LogEntrySchema.parse(JSON.parse(bytes.toString('utf8'))));
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** The newest entry for a digest, if any. */
  async latest(repository: string, digest: string): Promise<LogEntry | undefined> {
    return latestOf(await this.entries(repository), digest);
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
    for (let attempt = 1; attempt <= APPEND_ATTEMPTS; attempt++) {
      const all = await this.entries(repository);
      const last = all[all.length - 1];
      const body = {
        seq: (last?.seq ?? 0) + 1,
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
        return entry;
      } catch (e) {
        if (!(e instanceof ObjectExistsError)) throw e;
      }
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
    let count = 0;
    // False right after an unreadable entry: its hash is unknown, so the next link cannot be checked.
    let linkKnown = true;
    for await (const obj of this.store.list(logPrefix(repository))) {
      count++;
      const keySeq = Number(/(\d+)\.json$/.exec(obj.key)?.[1] ?? NaN);
      let entry: LogEntry;
      try {
        const bytes = await this.store.getBytes(obj.key);
        if (!bytes) throw new ProvenanceError('object vanished while reading');
        entry = LogEntrySchema.parse(JSON.parse(bytes.toString('utf8')));
      } catch (e) {
        problems.push({ kind: 'unreadable', key: obj.key, detail: (e as Error).message });
        expectedSeq = (Number.isFinite(keySeq) ? keySeq : expectedSeq) + 1;
        linkKnown = false;
        continue;
      }
      const actual = entryHash(entry);
      if (actual !== entry.hash) {
        problems.push({
          kind: 'edited',
          key: obj.key,
          seq: entry.seq,
          detail: `entry ${entry.seq} was changed after it was written: its content hashes to ${actual}, it says ${entry.hash}`,
        });
      }
      if (entry.seq !== keySeq) {
        problems.push({
          kind: 'reordered',
          key: obj.key,
          seq: entry.seq,
          detail: `the object for sequence ${keySeq} holds entry ${entry.seq}`,
        });
      } else if (keySeq > expectedSeq) {
        problems.push({
          kind: 'removed',
          key: obj.key,
          seq: entry.seq,
          detail:
            keySeq === expectedSeq + 1
              ? `entry ${expectedSeq} is missing before entry ${keySeq}`
              : `entries ${expectedSeq}..${keySeq - 1} are missing before entry ${keySeq}`,
        });
      } else if (linkKnown && entry.previous !== previousHash) {
        problems.push({
          kind: entry.previous === null ? 'reordered' : 'removed',
          key: obj.key,
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
      entries: count,
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
      const seq = Number(/(\d+)\.json$/.exec(key)?.[1] ?? NaN);
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
