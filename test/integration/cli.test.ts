import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

describe('imagevault CLI', () => {
  let registry: string;
  let fx: PushedFixtures;
  let store: string;

  beforeAll(async () => {
    // A registry of its own, so the catalog holds exactly this test's repositories.
    registry = startRegistry(`cli-${Date.now()}`);
    fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'team' });
    store = `file://${tempDir('imagevault-cli-')}`;
  });

  it('snapshots every tag of every repository under a prefix, skipping referrers fallback tags', async () => {
    const r = await cliJson<{ snapshots: { reference: string }[]; failures: unknown[] }>(
      '--store',
      store,
      'snapshot',
      '--all-tags',
      `${registry}/team/`,
    );
    expect(r.failures).toEqual([]);
    const repos = r.snapshots.map((s) => s.reference.replace(`${registry}/`, '').replace(/@.*/, '')).sort();
    expect(repos).toEqual([
      'team/docker:1',
      'team/empty:1',
      'team/index:1',
      'team/multi:1',
      'team/plain:1',
      'team/shared-a:1',
      'team/shared-b:1',
    ]);
    const list = await cliJson<{ repositories: string[] }>('--store', store, 'list');
    expect(list.repositories).toHaveLength(7);
  });

  it('exports a docker-archive that skopeo reads, for the platform asked', async () => {
    const file = path.join(tempDir(), 'index.tar');
    const r = await cliJson<{ manifest: { digest: string } }>(
      '--store',
      store,
      'export',
      'team/index:1',
      '--docker-archive',
      file,
      '--platform',
      'linux/arm64',
    );
    const arm = fx.index.manifests!.find((m) => m.platform?.architecture === 'arm64')!;
    expect(r.manifest.digest).toBe(arm.digest);
    const info = JSON.parse(
      execFileSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' }),
    );
    expect(info.Architecture).toBe('arm64');
  });

  it('exits 1 naming the image when a tag is not in the vault', async () => {
    const r = await cli('--store', store, 'restore', 'team/multi:nope', '--to', `${registry}/x:1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/team\/multi:nope has never been snapshotted/);
  });

  it('exits 1 naming the reference when the registry has no such tag', async () => {
    const r = await cli('--store', store, 'snapshot', `${registry}/team/multi:missing`);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/team\/multi:missing.*404 MANIFEST_UNKNOWN/s);
  });

  it.each([
    [['restore', 'Team/App:1', '--to', 'x/y:1'], /invalid repository/],
    [['restore', 'app:1', '--to', 'x/y:1', '--at', 'last tuesday'], /is not a time/],
    [['export', 'app:1'], /exactly one of --oci-layout DIR or --docker-archive FILE/],
    [['history', 'app'], /history needs REPO:TAG/],
  ])('exits 2 on bad input: %j', async (args, message) => {
    const r = await cli('--store', store, ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses an unknown store scheme', async () => {
    const r = await cli('--store', 'ftp://x/y', 'list');
    // A store URL is input: bad input exits 2, as the README documents.
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unsupported store URL/);
  });
});
