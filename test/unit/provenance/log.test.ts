import {
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { DirectoryObjectStore } from '../../../lib/content';
import { Digest } from '../../../lib/oci';
import {
  ProvenanceLog,
  entryHash,
  logKey,
  type LogEntry,
  type ProvenanceStatement,
} from '../../../lib/provenance';
import { tempDir } from '../helpers';

const digest = (s: string) => Digest.of(Buffer.from(s)).toString();
const statement = (d: string, tag: string) =>
  ({
    _type: 'x',
    subject: [{ name: 'app/web', digest: { sha256: d.slice(7) } }],
    predicate: { tag },
  }) as unknown as ProvenanceStatement;

describe('Class: ProvenanceLog', () => {
  let dir: string;
  let log: ProvenanceLog;
  const file = (seq: number) => path.join(dir, ...logKey('app/web', seq).split('/'));

  beforeEach(async () => {
    // Prepare: three entries, two for one digest (an enrichment) and one for another.
    dir = tempDir('imagevault-provlog-');
    log = new ProvenanceLog(new DirectoryObjectStore(dir));
    await log.append('app/web', digest('a'), statement(digest('a'), 'v1'));
    await log.append('app/web', digest('b'), statement(digest('b'), 'v2'));
    await log.append('app/web', digest('a'), statement(digest('a'), 'v1-enriched'));
  });

  describe('Method: append', () => {
    it('chains each entry to the hash of the one before, from null', async () => {
      const all = await log.entries('app/web');
      expect(all.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(all[0].previous).toBeNull();
      expect(all[1].previous).toBe(all[0].hash);
      expect(all[2].previous).toBe(all[1].hash);
      for (const e of all) expect(entryHash(e)).toBe(e.hash);
      expect(path.basename(file(3))).toBe('0000000003.json');
    });

    it('takes the next sequence number when another writer took one (create-only writes)', async () => {
      const other = new ProvenanceLog(new DirectoryObjectStore(dir));
      const [x, y] = await Promise.all([
        log.append('app/web', digest('c'), statement(digest('c'), 'x')),
        other.append('app/web', digest('d'), statement(digest('d'), 'y')),
      ]);
      expect(new Set([x.seq, y.seq])).toEqual(new Set([4, 5]));
      expect((await log.verify('app/web')).ok).toBe(true);
    });
  });

  describe('Method: latest', () => {
    it('is the newest entry for the digest', async () => {
      const e = await log.latest('app/web', digest('a'));
      expect(e?.seq).toBe(3);
      expect(await log.latest('app/web', digest('zzz'))).toBeUndefined();
    });

    it('lists the digest claims and reads one entry, however long the log is; so does an append, plus the newest entry', async () => {
      // Prepare: 40 more entries, then count what reading and appending cost
      for (let i = 0; i < 40; i++)
        await log.append('app/web', digest(`n${i}`), statement(digest(`n${i}`), 'n'));
      const store = new DirectoryObjectStore(dir);
      const reads: string[] = [];
      const getBytes = store.getBytes.bind(store);
      store.getBytes = async (key: string) => {
        reads.push(key);
        return getBytes(key);
      };
      const counted = new ProvenanceLog(store);

      // Act / Assess
      expect((await counted.latest('app/web', digest('a')))?.seq).toBe(3);
      expect(reads).toEqual([logKey('app/web', 3)]); // the digest's claims are LISTed, not read
      reads.length = 0;
      const appended = await counted.append('app/web', digest('a'), statement(digest('a'), 'again'));
      expect(appended.seq).toBe(44);
      // the newest entry (the link) and the digest's newest (what the new one builds on): not the 40 between
      expect(reads.filter((k) => k.includes('/@log/'))).toEqual([
        logKey('app/web', 43),
        logKey('app/web', 3),
      ]);
      expect((await counted.latest('app/web', digest('a')))?.seq).toBe(44);
    });

    it("appends after the digest's own newest entry with one read of it, one HEAD and two LISTs", async () => {
      // Prepare: the newest entry is the digest's, and the head hint points at it
      const last = await log.append('app/web', digest('a'), statement(digest('a'), 'v3'));
      const store = new DirectoryObjectStore(dir);
      const calls: string[] = [];
      const rel = (key: string) => key.replace('imagevault/provenance/app/web/', '');
      const { head, getBytes, list } = { head: store.head, getBytes: store.getBytes, list: store.list };
      store.head = async (key) => (calls.push(`HEAD ${rel(key)}`), head.call(store, key));
      store.getBytes = async (key) => (calls.push(`GET ${rel(key)}`), getBytes.call(store, key));
      store.list = (prefix, options) => (
        calls.push(`LIST ${rel(prefix)}`),
        list.call(store, prefix, options)
      );

      // Act
      await new ProvenanceLog(store).append('app/web', digest('a'), statement(digest('a'), 'v4'));

      // Assess: no HEAD of the hinted entry (the tail's LIST starts before it), the entry read once, the marker
      // looked at once
      expect(calls.filter((c) => !c.startsWith('PUT'))).toEqual([
        'GET _head.json',
        'LIST @log/',
        `GET @log/${logKey('app/web', last.seq).split('/').pop()}`,
        'HEAD _digests/indexed.json',
        `LIST _digests/${digest('a').split(':')[1]}/`,
      ]);
    });

    it('reads a log written before digest pointers existed whole, writing nothing, until its next append', async () => {
      // Prepare: drop the pointers and the marker, as an older imagevault left the log
      const digests = path.join(dir, 'imagevault/provenance/app/web/_digests');
      rmSync(digests, { recursive: true });

      // Act / Assess: reads find the entries and write nothing (a read-only on-call role can show records)
      expect((await log.latest('app/web', digest('b')))?.seq).toBe(2);
      expect((await log.latest('app/web', digest('a')))?.seq).toBe(3);
      expect(existsSync(digests)).toBe(false);
      // the next append indexes every digest once
      await log.append('app/web', digest('c'), statement(digest('c'), 'v3'));
      expect(readdirSync(digests).sort()).toEqual(
        [digest('a'), digest('b'), digest('c')]
          .map((d) => d.slice(7))
          .concat('indexed.json')
          .sort(),
      );
      expect(readdirSync(path.join(digests, digest('a').slice(7))).sort()).toEqual([
        '0000000001.json',
        '0000000003.json',
      ]);
      expect((await log.latest('app/web', digest('b')))?.seq).toBe(2);
    });

    it('skips a claim whose entry holds another digest (a writer that lost the race for that seq)', async () => {
      const claims = path.join(dir, 'imagevault/provenance/app/web/_digests', digest('b').slice(7));
      writeFileSync(path.join(claims, '0000000003.json'), '{"seq":3}');
      expect((await log.latest('app/web', digest('b')))?.seq).toBe(2);
    });

    it('keeps two concurrent enrichments of one digest: the loser of the race rebuilds on the winner', async () => {
      // Act: two writers add a fact each to digest a's newest entry at the same time
      const other = new ProvenanceLog(new DirectoryObjectStore(dir));
      const add = (l: ProvenanceLog, fact: string) =>
        l.appendFor('app/web', digest('a'), async (previous) => {
          const facts = (previous?.statement.predicate as unknown as { facts?: string[] }).facts ?? [];
          await new Promise((r) => setTimeout(r, 5));
          return { ...statement(digest('a'), 'v1'), predicate: { facts: [...facts, fact] } } as never;
        });
      await Promise.all([add(log, 'scan'), add(other, 'identity')]);

      // Assess: the newest entry has both, whichever came last
      const newest = await log.latest('app/web', digest('a'));
      expect(newest?.seq).toBe(5);
      expect(((newest?.statement.predicate as unknown as { facts: string[] }).facts ?? []).sort()).toEqual([
        'identity',
        'scan',
      ]);
      expect((await log.verify('app/web')).ok).toBe(true);
    });
  });

  describe('Method: recent', () => {
    it('is the tail appended since a time, newest first', async () => {
      const cut = new Date(Date.now() + 60_000);
      await log.append(
        'app/web',
        digest('late'),
        statement(digest('late'), 'x'),
        new Date(cut.getTime() + 1).toISOString(),
      );
      expect((await log.recent('app/web', cut)).map((e) => e.seq)).toEqual([4]);
      expect((await log.recent('app/web', new Date(0))).map((e) => e.seq)).toEqual([4, 3, 2, 1]);
    });
  });

  describe('Method: verify', () => {
    it('reports an intact chain', async () => {
      const r = await log.verify('app/web');
      expect(r).toMatchObject({ repository: 'app/web', entries: 3, ok: true, problems: [] });
      expect(r.head).toBe((await log.entries('app/web'))[2].hash);
    });

    it('detects an edited entry and names it', async () => {
      // Act: change the tag inside entry 2, keeping its recorded hash
      const e = JSON.parse(readFileSync(file(2), 'utf8')) as LogEntry;
      (e.statement.predicate as unknown as { tag: string }).tag = 'forged';
      writeFileSync(file(2), JSON.stringify(e));
      // Assess
      const r = await log.verify('app/web');
      expect(r.ok).toBe(false);
      expect(r.problems).toEqual([
        expect.objectContaining({ kind: 'edited', seq: 2, key: logKey('app/web', 2) }),
      ]);
    });

    it('detects an edited entry whose hash was recomputed: the next link breaks', async () => {
      const e = JSON.parse(readFileSync(file(2), 'utf8')) as LogEntry;
      e.time = '2000-01-01T00:00:00.000Z';
      e.hash = entryHash(e);
      writeFileSync(file(2), JSON.stringify(e));
      const r = await log.verify('app/web');
      expect(r.problems).toEqual([expect.objectContaining({ seq: 3, key: logKey('app/web', 3) })]);
    });

    it('detects a removed entry', async () => {
      unlinkSync(file(2));
      const r = await log.verify('app/web');
      expect(r.ok).toBe(false);
      expect(r.problems).toEqual([
        expect.objectContaining({
          kind: 'removed',
          key: logKey('app/web', 3),
          detail: expect.stringContaining('entry 2 is missing'),
        }),
      ]);
    });

    it('detects a removed entry whose successors were renumbered', async () => {
      unlinkSync(file(2));
      const e = JSON.parse(readFileSync(file(3), 'utf8')) as LogEntry;
      e.seq = 2;
      e.hash = entryHash(e);
      writeFileSync(file(2), JSON.stringify(e));
      unlinkSync(file(3));
      const r = await log.verify('app/web');
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'removed', key: logKey('app/web', 2) })]);
    });

    it('detects reordered entries', async () => {
      renameSync(file(2), `${file(2)}.tmp`);
      renameSync(file(3), file(2));
      renameSync(`${file(2)}.tmp`, file(3));
      const r = await log.verify('app/web');
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => [p.kind, p.key])).toEqual([
        ['reordered', logKey('app/web', 2)],
        ['reordered', logKey('app/web', 3)],
      ]);
    });

    it('reports an unreadable entry', async () => {
      writeFileSync(file(1), 'not json');
      const r = await log.verify('app/web');
      expect(r.problems).toEqual([
        expect.objectContaining({ kind: 'unreadable', key: logKey('app/web', 1) }),
      ]);
    });
  });

  describe('Method: verify (version history)', () => {
    it('says the versions were not checked, and why, when the history cannot be read', async () => {
      const store = new DirectoryObjectStore(dir);
      Object.assign(store, {
        // eslint-disable-next-line require-yield -- a listing that fails at once, as S3 does without the permission
        async *listVersions(): AsyncIterable<never> {
          throw new Error('AccessDenied: s3:ListBucketVersions');
        },
      });
      expect(await new ProvenanceLog(store).verify('app/web')).toMatchObject({
        ok: true,
        versions: 'not-checked',
        versionsNote: expect.stringMatching(/s3:ListBucketVersions needed\): AccessDenied/),
      });
    });
  });

  describe('Method: repositories', () => {
    it('finds every repository with a log, nested names included', async () => {
      await log.append('team/svc/api', digest('x'), statement(digest('x'), 'x'));
      expect(await log.repositories()).toEqual(['app/web', 'team/svc/api']);
    });
  });
});
