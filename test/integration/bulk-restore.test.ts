/**
 * restore --all: the whole lost registry back from the vault, in parallel, resumable — against a real registry,
 * with skopeo as the oracle for every manifest's bytes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BulkRestoreSummary } from '../../lib/services/bulk-restore';
import { openVault } from '../../lib/content/open';
import {
  pushStandardFixtures,
  skopeoInspectRaw,
  type PushedFixtures,
  type PushedImage,
} from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson, cliWithProgress } from './cli-helpers';

async function bulkJson(
  ...args: string[]
): Promise<{ code: number; summary: BulkRestoreSummary; stderr: string }> {
  const r = await cli('--json', ...args);
  if (r.code !== 0 && r.code !== 1)
    throw new Error(`imagevault ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return { code: r.code, summary: JSON.parse(r.stdout) as BulkRestoreSummary, stderr: r.stderr };
}

const names = (list: { image: string }[]) => list.map((i) => i.image);

describe('restore --all', () => {
  let v1: PushedFixtures;
  let v2: PushedFixtures;
  let store: string;
  /** Between the first snapshot of everything and the second of bulk/multi:1. */
  let between: string;
  /** What each vault repository:tag is now, and at `between`. */
  let now: Record<string, PushedImage>;
  let then: Record<string, PushedImage>;

  beforeAll(async () => {
    const source = startRegistry(`bulk-src-${Date.now()}`);
    store = `file://${tempDir('imagevault-bulk-')}`;
    v1 = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'bulk', seed: 'bulk-1' });
    await cliJson('--store', store, 'snapshot', '--all-tags', `${source}/bulk/`);
    await new Promise((r) => setTimeout(r, 20));
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    // Every tag moves in the registry, but only bulk/multi:1 is snapshotted again.
    v2 = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'bulk', seed: 'bulk-2' });
    await cliJson('--store', store, 'snapshot', `${source}/bulk/multi:1`);
    const vault = await openVault(store);
    // A second tag on the same image, and a tag deleted after its push (as the Lambda records them).
    const multi = await vault.resolveTag('bulk/multi', '1');
    await vault.recordTag({ ...multi, tag: 'stable', observedAt: new Date().toISOString() });
    const plain = await vault.resolveTag('bulk/plain', '1');
    await vault.recordTag({
      ...plain,
      action: 'delete',
      observedAt: new Date().toISOString(),
      source: { kind: 'ecr-event', detail: 'DELETE' },
    });
    then = {
      'bulk/docker:1': v1.docker,
      'bulk/empty:1': v1.withEmptyLayer,
      'bulk/index:1': v1.index,
      'bulk/multi:1': v1.multiLayer,
      'bulk/plain:1': v1.plainTar,
      'bulk/shared-a:1': v1.shared[0],
      'bulk/shared-b:1': v1.shared[1],
    };
    now = { ...then, 'bulk/multi:1': v2.multiLayer, 'bulk/multi:stable': v2.multiLayer };
  });

  it('a dry run lists every image, the deleted tag among them, and pushes nothing', async () => {
    const dest = startRegistry(`bulk-dry-${Date.now()}`);
    const { code, summary } = await bulkJson('--store', store, 'restore', '--all', '--to', dest, '--dry-run');
    expect(code).toBe(0);
    expect(summary.dryRun).toBe(true);
    expect(names(summary.restored)).toEqual(Object.keys(now).sort());
    expect(names(summary.deleted)).toEqual(['bulk/plain:1']);
    await expect(skopeoInspectRaw(`${dest}/bulk/docker:1`)).rejects.toThrow();
  });

  it('restores everything; interrupted by a corrupt blob, a re-run does only what is missing', async () => {
    const dest = startRegistry(`bulk-resume-${Date.now()}`);

    // 1. Part of the registry: the two images that share layers. The second mounts them from the first.
    const first = await cliWithProgress(
      '--store',
      store,
      'restore',
      '--all',
      '--prefix',
      'bulk/shared*',
      '--to',
      dest,
      '--parallel',
      '4',
    );
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/^restoring 2 images$/m);
    expect(first.stderr).toMatch(/^\[2\/2, [\d.]+ MiB\] bulk\/shared-.:1 → /m);
    expect(first.stdout).toMatch(
      /restored 2, skipped 0 \(already there\), failed 0, of 2 images into .*, 2 shared layers mounted/,
    );

    // 2. The rest, with one image's layer rotten in the vault: that image fails, every other one is restored.
    const layer = v1.docker.layers[0].digest;
    const file = path.join(new URL(store).pathname, 'blobs', 'sha256', layer.slice(7));
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[100] ^= 0xff;
    writeFileSync(file, bad);
    const second = await bulkJson('--store', store, 'restore', '--all', '--to', dest, '--parallel', '2');
    writeFileSync(file, good);
    expect(second.code).toBe(1);
    expect(names(second.summary.skipped)).toEqual(['bulk/shared-a:1', 'bulk/shared-b:1']);
    expect(names(second.summary.failed)).toEqual(['bulk/docker:1']);
    expect(second.summary.failed[0].error).toContain(layer);
    expect(names(second.summary.restored)).toEqual(
      Object.keys(now)
        .filter((k) => !/shared|docker/.test(k))
        .sort(),
    );
    // The second tag of the same image found the graph there and only set its tag.
    const stable = second.summary.restored.find((r) => r.image === 'bulk/multi:stable')!;
    expect(stable.blobs.copied).toBe(0);
    expect(second.summary.deleted).toEqual([
      expect.objectContaining({
        image: 'bulk/plain:1',
        digest: v1.plainTar.digest,
        deletedAt: expect.any(String),
      }),
    ]);
    expect(second.summary.images).toEqual({ total: 8, restored: 5, skipped: 2, failed: 1 });

    // 3. Resumed after the repair: only the failed image is copied.
    const third = await bulkJson('--store', store, 'restore', '--all', '--to', dest);
    expect(third.code).toBe(0);
    expect(names(third.summary.restored)).toEqual(['bulk/docker:1']);
    expect(third.summary.skipped).toHaveLength(7);
    expect(third.summary.failed).toEqual([]);

    // Every manifest is byte-identical to what was pushed originally, the signature included.
    for (const [image, pushed] of Object.entries(now)) {
      expect(await skopeoInspectRaw(`${dest}/${image}`)).toEqual(pushed.manifestBytes);
    }
    expect(await skopeoInspectRaw(`${dest}/bulk/multi@${v2.signature.digest}`)).toEqual(
      v2.signature.manifestBytes,
    );
  });

  it('--at restores each tag as it was then; a later run stops on the moved tag unless --force', async () => {
    const dest = startRegistry(`bulk-at-${Date.now()}`);
    const past = await bulkJson('--store', store, 'restore', '--all', '--at', between, '--to', dest);
    expect(past.code).toBe(0);
    expect(names(past.summary.restored)).toEqual(Object.keys(then).sort());
    expect(past.summary.notYetPushed).toEqual(['bulk/multi:stable']);
    expect(past.summary.deleted).toEqual([]);
    for (const [image, pushed] of Object.entries(then)) {
      expect(await skopeoInspectRaw(`${dest}/${image}`)).toEqual(pushed.manifestBytes);
    }

    const latest = await bulkJson('--store', store, 'restore', '--all', '--to', dest);
    expect(latest.code).toBe(1);
    expect(latest.summary.failed).toEqual([
      expect.objectContaining({
        image: 'bulk/multi:1',
        error: expect.stringContaining(
          `bulk/multi:1 in ${dest} points to ${v1.multiLayer.digest}; the vault's is ${v2.multiLayer.digest} — overwrite it with --force`,
        ),
      }),
    ]);
    expect(names(latest.summary.restored)).toEqual(['bulk/multi:stable']);
    expect(await skopeoInspectRaw(`${dest}/bulk/multi:1`)).toEqual(v1.multiLayer.manifestBytes);

    const forced = await bulkJson('--store', store, 'restore', '--all', '--to', dest, '--force');
    expect(forced.code).toBe(0);
    expect(forced.summary.restored).toEqual([
      expect.objectContaining({ image: 'bulk/multi:1', tag: 'overwritten' }),
    ]);
    expect(await skopeoInspectRaw(`${dest}/bulk/multi:1`)).toEqual(v2.multiLayer.manifestBytes);
  });

  it('puts everything under a namespace when --to has one', async () => {
    const dest = startRegistry(`bulk-ns-${Date.now()}`);
    const { summary } = await bulkJson(
      '--store',
      store,
      'restore',
      '--all',
      '--prefix',
      'bulk/index',
      '--to',
      `${dest}/restored`,
    );
    expect(summary.restored.map((r) => r.destination)).toEqual([`${dest}/restored/bulk/index:1`]);
    expect(await skopeoInspectRaw(`${dest}/restored/bulk/index:1`)).toEqual(v1.index.manifestBytes);
  });

  it('fails naming the prefix when it matches no repository', async () => {
    const r = await cli(
      '--store',
      store,
      'restore',
      '--all',
      '--prefix',
      'bulk/shared',
      '--to',
      'x.example.com',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nothing to restore: no repository of .* is under "bulk\/shared"/);
  });

  it.each([
    [['--to', 'registry.example.com/app:1']],
    [['--to', 'app']],
    [['--to', 'registry.example.com', '--prefix', 'Team']],
  ])('exits 2 on a bad destination or prefix: %j', async (args) => {
    const r = await cli('--store', store, 'restore', '--all', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid/);
  });
});
