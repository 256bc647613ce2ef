/**
 * Garbage collection on a directory vault and on radosgw (versioned bucket), against the races of the protocol:
 * a writer reusing a stored blob across a mark and a sweep, a writer whose blob a finished sweep deleted, a rescue,
 * a killed sweep resumed, a root that cannot be read, held and in-use images, the dry run, and real snapshots
 * racing gc runs. After each, `imagevault verify` must be clean.
 */
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  blobKey,
  DirectoryObjectStore,
  Forgets,
  Vault,
  WriteSession,
  type ObjectStore,
} from '../../lib/content';
import { S3ObjectStore } from '../../lib/content/s3';
import { MediaType, Reference } from '../../lib/oci';
import { Registries, Snapshotter } from '../../lib/services';
import { collectGarbage, type GcReport } from '../../lib/services/gc';
import { HoldService } from '../../lib/services/holds';
import { pushBlob, pushManifest } from '../../fixtures';
import { descOf, putImage, recordRunning, type TestImage } from '../../fixtures/vault-images';
import { s3ProcessEnv, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

async function keys(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out.sort();
}

const present = async (vault: Vault, img: TestImage) =>
  Promise.all([...img.blobs.keys()].map(async (d) => (await vault.store.head(blobKey(d))) !== undefined));

/** An image as a snapshot leaves it: content, record, one push of repository:tag. */
async function image(vault: Vault, repository: string, tag: string, layers: Buffer[]): Promise<TestImage> {
  const img = await putImage(vault, layers);
  const at = new Date().toISOString();
  await vault.putImage({
    repository,
    descriptor: img.manifest,
    firstSnapshotAt: at,
    lastSnapshotAt: at,
    blobs: img.blobs.size,
    bytes: 1,
    referrers: [],
    extensions: {},
  });
  await vault.recordTag({
    repository,
    tag,
    action: 'push',
    descriptor: img.manifest,
    observedAt: at,
    source: { kind: 'test' },
  });
  return img;
}

async function forget(vault: Vault, repository: string, img: TestImage): Promise<void> {
  const record = (await vault.image(repository, img.manifest.digest))!;
  await new Forgets(vault.store).record({
    repository,
    descriptor: img.manifest,
    forgottenAt: new Date().toISOString(),
    upTo: record.lastSnapshotAt,
    reason: 'test',
    rule: 'test',
    by: 'test',
  });
}

/** A writer's commit as the snapshot makes it: the record, written after the protocol's check. */
async function commit(vault: Vault, repository: string, img: TestImage): Promise<void> {
  const at = new Date(Date.now() + 1).toISOString();
  const prev = await vault.image(repository, img.manifest.digest);
  await vault.putImage({ ...prev!, lastSnapshotAt: at });
}

async function repush(vault: Vault, img: TestImage): Promise<void> {
  for (const [digest, data] of img.blobs) {
    const mediaType = digest === img.manifest.digest ? img.manifest.mediaType : MediaType.OciLayer;
    await vault.push({ ...descOf(mediaType, data) }, Readable.from([data]));
  }
}

/** No skew margin: a writer that begins after a mark (1 s later: S3 times are in seconds) is not waited for. */
const gc = (vault: Vault, extra: Parameters<typeof collectGarbage>[1] = {}) =>
  collectGarbage(vault, { graceMs: 0, clockSkewMs: 0, ...extra });
const tick = () => new Promise((r) => setTimeout(r, 1100));

const bucket = `gc-${Date.now()}`;
const stores: [string, () => Promise<string>][] = [
  ['a directory', async () => pathToFileURL(tempDir()).href],
  [
    'radosgw (versioned bucket)',
    async () => {
      Object.assign(process.env, s3ProcessEnv());
      await testBucket(bucket).then(({ client }) => client.destroy());
      return `s3://${bucket}/v${Math.random().toString(16).slice(2, 8)}`;
    },
  ],
];

describe.each(stores)('imagevault gc on %s', (_kind, makeStore) => {
  const saved = { ...process.env };
  let url: string;
  let vault: Vault;
  const verifyClean = async () => {
    const r = await cli('--store', url, 'verify');
    expect(r.stdout).toContain('OK: everything present and verified');
    expect(r.code).toBe(0);
  };

  beforeEach(async () => {
    url = await makeStore();
    const store = url.startsWith('s3://')
      ? S3ObjectStore.fromUrl(url)
      : new DirectoryObjectStore(new URL(url).pathname);
    vault = new Vault(store);
    await vault.init();
  });
  afterAll(() => {
    process.env = saved;
  });

  it('a dry run changes nothing; two runs delete exactly the blobs only a forgotten image needs', async () => {
    const shared = Buffer.from('shared base layer');
    const kept = await image(vault, 'gc/app', 'new', [shared, Buffer.from('kept own')]);
    const gone = await image(vault, 'gc/app', 'old', [shared, Buffer.from('gone own')]);
    await image(vault, 'gc/app', 'old', [Buffer.from('old tag moved on')]);
    await forget(vault, 'gc/app', gone);

    const before = await keys(vault.store);
    const dry = await cliJson<GcReport>('--store', url, 'gc', '--dry-run', '--grace', '0');
    expect(await keys(vault.store)).toEqual(before);
    expect(dry.marked?.blobs).toBe(3);

    const first = await cliJson<GcReport>('--store', url, 'gc', '--grace', '0');
    expect(first.marked?.digests.sort()).toEqual(
      [...gone.blobs.keys()].filter((d) => !kept.blobs.has(d)).sort(),
    );
    expect(await present(vault, gone)).toEqual([true, true, true, true]);

    // A dry run with a mark pending says what its sweep would delete, and deletes nothing.
    const pending = await keys(vault.store);
    const dry2 = await cliJson<GcReport>('--store', url, 'gc', '--dry-run', '--grace', '0');
    expect(dry2.swept[0].deleted.blobs).toBe(3);
    expect(await keys(vault.store)).toEqual(pending);

    const second = await cliJson<GcReport>('--store', url, 'gc', '--grace', '0');
    expect(second.swept[0].deleted.blobs).toBe(3);
    expect(second.swept[0].versioned).toBe(url.startsWith('s3://'));
    expect(await present(vault, kept)).toEqual([true, true, true, true]);
    // gone's layers: the shared one stays, its own goes; then its config and manifest go.
    expect(await present(vault, gone)).toEqual([true, false, false, false]);
    await verifyClean();
  });

  it('never deletes what is held or in use, even when it was forgotten before', async () => {
    const held = await image(vault, 'gc/held', 'a', [Buffer.from('held layer')]);
    const running = await image(vault, 'gc/run', 'a', [Buffer.from('running layer')]);
    const neither = await image(vault, 'gc/none', 'a', [Buffer.from('neither layer')]);
    for (const [repo, img] of [
      ['gc/held', held],
      ['gc/run', running],
      ['gc/none', neither],
    ] as const)
      await forget(vault, repo, img);
    await new HoldService(vault).hold({
      repository: 'gc/held',
      digest: held.manifest.digest,
      by: 't',
      reason: 'legal',
    });
    await recordRunning(
      vault,
      { repository: 'gc/run', digest: running.manifest.digest },
      { cluster: 'prod', service: 'web' },
    );
    await cliJson('--store', url, 'gc', '--grace', '0');
    await cliJson('--store', url, 'gc', '--grace', '0');
    expect(await present(vault, held)).toEqual([true, true, true]);
    expect(await present(vault, running)).toEqual([true, true, true]);
    expect(await present(vault, neither)).toEqual([false, false, false]);
  });

  it('race: a writer that found a blob stored before the mark holds the sweep until it commits', async () => {
    const orphan = await image(vault, 'gc/reuse', 'a', [Buffer.from('reused layer')]);
    await forget(vault, 'gc/reuse', orphan);
    const writer = await WriteSession.begin(vault);
    expect(await vault.exists(orphan.manifest)).toBe(true); // dedup: the writer will not copy it
    const mark = await gc(vault);
    expect(mark.marked?.blobs).toBe(3);
    const blocked = await gc(vault);
    expect(blocked.waiting).toHaveLength(1);
    expect(blocked.swept).toHaveLength(0);
    expect(await writer.beforeCommit('gc/reuse', orphan.manifest)).toEqual([]);
    await commit(vault, 'gc/reuse', orphan);
    await writer.end();
    const swept = await gc(vault);
    expect(swept.swept[0]).toMatchObject({ deleted: { blobs: 0 }, keptAgain: 3 });
    expect(await present(vault, orphan)).toEqual([true, true, true]);
    await verifyClean();
  });

  it('race: a writer that began after the mark rescues what it reuses; the sweep keeps it', async () => {
    const orphan = await image(vault, 'gc/rescue', 'a', [Buffer.from('rescued layer')]);
    await forget(vault, 'gc/rescue', orphan);
    expect((await gc(vault)).marked?.blobs).toBe(3);
    await tick();
    const writer = await WriteSession.begin(vault);
    expect(await vault.exists(orphan.manifest)).toBe(true);
    expect(await writer.beforeCommit('gc/rescue', orphan.manifest)).toEqual([]);
    // The sweep runs between the writer's check and its commit: the record is not there yet, the rescue is.
    const swept = await gc(vault);
    expect(swept.swept[0]).toMatchObject({ deleted: { blobs: 0 }, keptAgain: 3 });
    await commit(vault, 'gc/rescue', orphan);
    await writer.end();
    await verifyClean();
  });

  it('race: a sweep that ends between a writer finding a blob and committing makes the writer copy it again', async () => {
    const orphan = await image(vault, 'gc/swept', 'a', [Buffer.from('swept layer')]);
    await forget(vault, 'gc/swept', orphan);
    expect((await gc(vault)).marked?.blobs).toBe(3);
    await tick();
    const writer = await WriteSession.begin(vault);
    expect(await vault.exists(orphan.manifest)).toBe(true);
    expect((await gc(vault)).swept[0].deleted.blobs).toBe(3);
    const lost = await writer.beforeCommit('gc/swept', orphan.manifest);
    expect(lost.length).toBeGreaterThan(0);
    await repush(vault, orphan);
    expect(await writer.beforeCommit('gc/swept', orphan.manifest)).toEqual([]);
    await commit(vault, 'gc/swept', orphan);
    await writer.end();
    await verifyClean();
  });

  it('a fresh blob of a writer still copying is never marked within the grace period', async () => {
    const writer = await WriteSession.begin(vault);
    const fresh = await putImage(vault, [Buffer.from('being copied')]);
    const r = await collectGarbage(vault, { graceMs: 60 * 60 * 1000 });
    expect(r.marked).toBeUndefined();
    expect(await present(vault, fresh)).toEqual([true, true, true]);
    await writer.end();
  });

  it('a writer past its cap commits nothing', async () => {
    const writer = await WriteSession.begin(vault, { maxMs: 1000 });
    const img = await putImage(vault, [Buffer.from('zombie')]);
    await expect(writer.beforeCommit('gc/zombie', img.manifest)).rejects.toThrow(/ran longer than its/);
    await writer.end();
  });

  it('a sweep killed midway is finished by the next run, deleting only what was marked and unneeded', async () => {
    const kept = await image(vault, 'gc/kill', 'new', [Buffer.from('k1')]);
    const gone = await image(vault, 'gc/kill', 'old', [
      Buffer.from('g1'),
      Buffer.from('g2'),
      Buffer.from('g3'),
    ]);
    await image(vault, 'gc/kill', 'old', [Buffer.from('g-next')]);
    await forget(vault, 'gc/kill', gone);
    expect((await gc(vault)).marked?.blobs).toBe(5);
    await expect(
      gc(vault, {
        onEvent: (e) => {
          if (e.phase === 'sweep' && e.done === 2) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect((await present(vault, gone)).filter(Boolean)).toHaveLength(3);
    const rerun = await cliJson<GcReport>('--store', url, 'gc', '--grace', '0');
    expect(rerun.swept[0]).toMatchObject({ resumed: true, deleted: { blobs: 5 } });
    expect(await present(vault, gone)).toEqual([false, false, false, false, false]);
    expect(await present(vault, kept)).toEqual([true, true, true]);
    await verifyClean();
  });

  it('a run told to stop mid-sweep ends cleanly: the deleted part is done, the rest a new mark the next run sweeps', async () => {
    const kept = await image(vault, 'gc/stop', 'new', [Buffer.from('s1')]);
    const gone = await image(vault, 'gc/stop', 'old', [Buffer.from('t1'), Buffer.from('t2')]);
    await image(vault, 'gc/stop', 'old', [Buffer.from('s-next')]);
    await forget(vault, 'gc/stop', gone);
    const first = await gc(vault);
    expect(first.marked?.blobs).toBe(4);
    // A writer that began before the stop waits for this mark's sweep to end: the stop must end it.
    let deletes = 0;
    const stopped = await gc(vault, {
      onEvent: (e) => {
        if (e.phase === 'sweep') deletes++;
      },
      shouldStop: () => deletes >= 2,
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.swept[0]).toMatchObject({ mark: first.marked!.mark, deleted: { blobs: 2 } });
    expect(stopped.swept[0].carriedOver?.blobs).toBe(2);
    expect(stopped.marked).toBeUndefined();
    expect(await vault.store.head(`imagevault/gc/done/${first.marked!.mark}.json`)).toBeDefined();
    expect((await present(vault, gone)).filter(Boolean)).toHaveLength(2);
    // The next run sweeps the carried-over mark (no writer began before it) and deletes only its blobs.
    await tick();
    const next = await gc(vault);
    expect(next.swept).toEqual([
      expect.objectContaining({
        mark: stopped.swept[0].carriedOver!.mark,
        deleted: expect.objectContaining({ blobs: 2 }),
      }),
    ]);
    expect(await present(vault, gone)).toEqual([false, false, false, false]);
    expect(await present(vault, kept)).toEqual([true, true, true]);
    await verifyClean();
  });

  it('deletes nothing when a kept image cannot be read whole', async () => {
    const kept = await image(vault, 'gc/bad', 'new', [Buffer.from('b1')]);
    const gone = await image(vault, 'gc/bad', 'old', [Buffer.from('b2')]);
    await image(vault, 'gc/bad', 'old', [Buffer.from('b3')]);
    await forget(vault, 'gc/bad', gone);
    await gc(vault);
    const good = kept.blobs.get(kept.manifest.digest)!;
    await vault.store.putBytes(blobKey(kept.manifest.digest), Buffer.from('{"not": "the manifest"}'));
    const r = await cli('--store', url, 'gc', '--grace', '0');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`gc/bad@${kept.manifest.digest}: cannot read manifest`);
    expect(await present(vault, gone)).toEqual([true, true, true]);
    await vault.store.putBytes(blobKey(kept.manifest.digest), good);
  });

  it('real snapshots racing gc runs: no finished snapshot loses a blob, and verify is clean', async () => {
    const registry = testbed().registry;
    const repo = `gc-race/${Math.random().toString(16).slice(2, 8)}`;
    const base = Buffer.from(`base ${repo}`);
    const tags: string[] = [];
    for (const t of ['a', 'b', 'c']) {
      const layers = [base, Buffer.from(`${repo} ${t}`)];
      const ds = layers.map((l) => descOf(MediaType.OciLayer, l));
      const config = Buffer.from(
        JSON.stringify({
          os: 'linux',
          architecture: 'amd64',
          rootfs: { type: 'layers', diff_ids: ds.map((d) => d.digest) },
        }),
      );
      for (const [d, data] of [
        ...ds.map((d, i) => [d, layers[i]] as const),
        [descOf(MediaType.OciConfig, config), config] as const,
      ])
        await pushBlob(registry, repo, d.digest, data);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: descOf(MediaType.OciConfig, config),
          layers: ds,
        }),
      );
      await pushManifest(registry, repo, t, MediaType.OciManifest, manifest);
      tags.push(t);
    }
    // Each writer dawdles between its copy and its record (the base detection step), so gc runs fall in between.
    const snapshotter = new Snapshotter(vault, new Registries(), {
      detectBase: () => new Promise((r) => setTimeout(() => r(undefined), Math.random() * 400)),
    });
    // Each snapshot is an event of its own, so its push is recorded even when the tag has not moved
    let events = 0;
    const snap = (t: string) =>
      snapshotter.snapshot({
        reference: Reference.parse(`${registry}/${repo}:${t}`),
        source: { kind: 'test', id: `push-${++events}` },
      });
    for (const t of tags) await snap(t);
    // A never-revived orphan: gc must delete it, so the test shows gc was at work.
    const orphan = await image(vault, 'gc-race/orphan', 'x', [Buffer.from(`orphan ${repo}`)]);
    await forget(vault, 'gc-race/orphan', orphan);

    // Writers: forget an image, then snapshot it again (it finds every blob stored: the reuse race), over and over.
    let stop = false;
    const writers = (async () => {
      for (let round = 0; round < 6; round++)
        for (const t of tags) {
          const d = (await vault.resolveTag(repo, t)).descriptor;
          const record = (await vault.image(repo, d.digest))!;
          await new Forgets(vault.store).record({
            repository: repo,
            descriptor: d,
            forgottenAt: new Date().toISOString(),
            upTo: record.lastSnapshotAt,
            reason: 'race',
            rule: 'race',
            by: 'test',
          });
          // Long enough for gc to mark the forgotten image before the next snapshot finds its blobs stored.
          await new Promise((r) => setTimeout(r, Math.random() * 400));
          await snap(t);
        }
      stop = true;
    })();
    let deleted = 0;
    let runs = 0;
    let sweeps = 0;
    const collector = (async () => {
      while (!stop) {
        const r = await gc(vault);
        if (r.swept.length > 0) sweeps++;
        deleted += r.swept.reduce((n, s) => n + s.deleted.blobs, 0);
        runs++;
      }
    })();
    await Promise.all([writers, collector]);
    for (let i = 0; i < 3; i++) deleted += (await gc(vault)).swept.reduce((n, s) => n + s.deleted.blobs, 0);
    expect(runs).toBeGreaterThan(1);
    expect(sweeps).toBeGreaterThan(0);
    expect(await present(vault, orphan)).toEqual([false, false, false]);
    expect(deleted).toBeGreaterThanOrEqual(3);
    await verifyClean();
  });
});
