/**
 * refreshProvenance: what a record left pending (replication, the CloudTrail identity) is asked again, and a changed
 * answer is a new entry. S3 replication has no local peer, so the store here is a directory whose head() reports
 * the replication status a test sets — the one thing S3 would add.
 */
import { DirectoryObjectStore, Vault, type ObjectInfo, type ReplicationStatus } from '../../../lib/content';
import {
  ProvenanceLog,
  recordProvenance,
  recordPushIdentity,
  recordScan,
  refreshProvenance,
} from '../../../lib/provenance';
import { putImageEvent } from './events';
import { ecrImageScanDocumented, withDigest } from './scan-events';
import { snapshottedImage, tempDir } from '../helpers';

class ReplicatingStore extends DirectoryObjectStore {
  status: ReplicationStatus | undefined = 'pending';

  override async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await super.head(key);
    return info && this.status ? { ...info, versionId: 'v1', replication: this.status } : info;
  }
}

describe('Function: refreshProvenance', () => {
  const pushedAt = '2026-01-10T09:06:00.000Z';
  const soon = new Date('2026-01-10T10:00:00.000Z');
  const nextDay = new Date('2026-01-11T10:00:00.000Z');
  let store: ReplicatingStore;
  let vault: Vault;
  let digest: string;

  beforeEach(async () => {
    store = new ReplicatingStore(tempDir());
    vault = new Vault(store);
    await vault.init();
    digest = (await snapshottedImage(vault, 'team/app', 'v1', 'refresh', {}, pushedAt)).manifest.digest;
    await recordProvenance(vault, 'team/app', digest, { registry: 'registry.example', now: soon });
  });

  it('records replication pending at snapshot time', async () => {
    const [entry] = await new ProvenanceLog(store).entries('team/app');
    expect(entry.statement.predicate.snapshot).toMatchObject({
      replication: 'pending',
      replicationReason: 'S3 is still copying this snapshot to the replica region',
      versionIds: { manifest: 'v1', record: 'v1' },
    });
  });

  it('appends nothing while nothing changed', async () => {
    expect(await refreshProvenance(vault, 'team/app', { now: soon })).toEqual({
      repository: 'team/app',
      checked: 1,
      appended: 0,
    });
    expect(await new ProvenanceLog(store).entries('team/app')).toHaveLength(1);
  });

  it('appends one entry once S3 reports the snapshot replicated, keeping the subject, and then stops asking', async () => {
    store.status = 'completed';

    const first = await refreshProvenance(vault, 'team/app', { now: soon });

    expect(first).toEqual({ repository: 'team/app', checked: 1, appended: 1 });
    const entries = await new ProvenanceLog(store).entries('team/app');
    expect(entries.map((e) => e.statement.predicate.snapshot.replication)).toEqual(['pending', 'completed']);
    expect(entries[1].statement.subject[0].name).toBe('registry.example/team/app');
    // identity still pending within the window: it stays a candidate, but nothing changed
    expect(await refreshProvenance(vault, 'team/app', { now: soon })).toEqual({
      repository: 'team/app',
      checked: 1,
      appended: 0,
    });
  });

  it('reports a failed replication', async () => {
    store.status = 'failed';
    await refreshProvenance(vault, 'team/app', { now: soon });
    const latest = await new ProvenanceLog(store).latest('team/app', digest);
    expect(latest?.statement.predicate.snapshot).toMatchObject({
      replication: 'failed',
      replicationReason: expect.stringMatching(/^S3 replication FAILED/),
    });
  });

  it('says the identity is unknown once the CloudTrail window has passed, then leaves the record alone', async () => {
    store.status = 'completed';

    await refreshProvenance(vault, 'team/app', { now: nextDay });

    const latest = await new ProvenanceLog(store).latest('team/app', digest);
    expect(latest?.statement.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: 'no CloudTrail PutImage event received within 24 hours — is the trail configured?',
    });
    expect(await refreshProvenance(vault, 'team/app', { now: nextDay })).toEqual({
      repository: 'team/app',
      checked: 0,
      appended: 0,
    });
  });
});

describe('Function: recordProvenance (what earlier entries learnt)', () => {
  it('never turns an unknown identity back into pending (a re-record without the not-ECR hint)', async () => {
    const store = new DirectoryObjectStore(tempDir());
    const vault = new Vault(store);
    await vault.init();
    const { digest } = (await snapshottedImage(vault, 'team/app', 'v1', 'not-ecr')).manifest;
    await recordProvenance(vault, 'team/app', digest, { registry: 'registry.example', cloudTrail: false });
    await vault.putImage({
      ...(await vault.image('team/app', digest))!,
      lastSnapshotAt: '2026-01-10T10:00:00.000Z',
    });

    const again = await recordProvenance(vault, 'team/app', digest, {
      registry: 'registry.example',
      now: new Date('2026-01-10T10:00:00.000Z'),
    });

    expect(again.appended).toBe(false);
    expect(again.statement.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: expect.stringMatching(/^registry\.example is not ECR/),
    });
  });
});

describe('Function: recordProvenance (the push as the caller saw it)', () => {
  it('reads no tag history with a push hint, and merges it with earlier entries: every tag, the earliest time', async () => {
    // Prepare: a repository with many tags, and a store that says which tag histories are read
    const store = new DirectoryObjectStore(tempDir());
    const vault = new Vault(store);
    await vault.init();
    const { digest } = (await snapshottedImage(vault, 'team/app', 'v1', 'hint')).manifest;
    for (let i = 0; i < 5; i++) await snapshottedImage(vault, 'team/app', `other-${i}`, `other-${i}`);
    const listed: string[] = [];
    const list = store.list.bind(store);
    store.list = (prefix: string) => {
      listed.push(prefix);
      return list(prefix);
    };

    // Act
    await recordProvenance(vault, 'team/app', digest, {
      push: { time: '2026-01-10T09:06:00.000Z', tags: ['v1'] },
    });
    const second = await recordProvenance(vault, 'team/app', digest, {
      push: { time: '2026-01-11T00:00:00.000Z', tags: ['stable'] },
    });

    // Assess
    expect(listed.filter((p) => p.includes('/_tags/'))).toEqual([]);
    expect(second.appended).toBe(true);
    expect(second.statement.predicate.push).toMatchObject({
      time: '2026-01-10T09:06:00.000Z',
      tags: ['stable', 'v1'],
    });
  });
});

describe('Concurrent writers of one digest', () => {
  it('two tags of one push recorded at once: the newest entry has both', async () => {
    const vault = new Vault(new DirectoryObjectStore(tempDir()));
    await vault.init();
    const { digest } = (await snapshottedImage(vault, 'team/app', 'a', 'two-tags')).manifest;
    const at = '2026-01-10T09:06:00.000Z';

    await Promise.all(
      ['a', 'b'].map((tag) =>
        recordProvenance(vault, 'team/app', digest, { push: { time: at, tags: [tag] } }),
      ),
    );

    const newest = await new ProvenanceLog(vault.store).latest('team/app', digest);
    expect(newest?.statement.predicate.push.tags).toEqual(['a', 'b']);
  });

  it('a scan and the CloudTrail identity arriving together: the newest entry has both', async () => {
    const vault = new Vault(new DirectoryObjectStore(tempDir()));
    await vault.init();
    const { digest } = (await snapshottedImage(vault, 'team/app', 'v1', 'scan-and-identity')).manifest;
    await recordProvenance(vault, 'team/app', digest);

    await Promise.all([
      recordScan(vault, withDigest(ecrImageScanDocumented(), digest, { repository: 'team/app' })),
      recordPushIdentity(vault, putImageEvent({ repository: 'team/app', digest, identity: 'assumed-role' })),
    ]);

    const newest = await new ProvenanceLog(vault.store).latest('team/app', digest);
    expect(newest?.statement.predicate.scan.status).toBe('complete');
    expect(newest?.statement.predicate.push.identityStatus).toBe('known');
  });
});
