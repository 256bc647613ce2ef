/**
 * Legal hold through the CLI on a directory vault: hold by tag and by digest, the append-only record (who, when,
 * why), refusals as one line with exit 2.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DirectoryObjectStore, Vault } from '../../lib/content';
import { snapshottedImage, tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

describe('imagevault hold / release', () => {
  let root: string;
  let store: string;
  let digest: string;

  beforeAll(async () => {
    root = tempDir();
    store = pathToFileURL(root).href;
    const vault = new Vault(new DirectoryObjectStore(root));
    await vault.init();
    digest = (await snapshottedImage(vault, 'team/app', 'prod', 'hold-me')).manifest.digest;
  });

  it('holds the image a tag points at, with who and why, and lists it', async () => {
    const held = await cliJson<{ digest: string; by: string; reason: string; changed: boolean }>(
      '--store',
      store,
      'hold',
      'team/app:prod',
      '--reason',
      'incident 4711',
      '--by',
      'alice',
    );
    expect(held).toMatchObject({ digest, by: 'alice', reason: 'incident 4711', changed: true });
    const again = await cliJson<{ changed: boolean }>(
      '--store',
      store,
      'hold',
      `team/app@${digest}`,
      '--reason',
      'x',
    );
    expect(again.changed).toBe(false);
    const list = await cli('--store', store, 'hold', '--list');
    expect(list.stdout).toContain(`team/app@${digest}\tteam/app:prod\talice\tincident 4711`);
  });

  it('refuses a hold without a reason and a release of what is not held, in one line with exit 2', async () => {
    const noReason = await cli('--store', store, 'hold', 'team/app:prod');
    expect(noReason.code).toBe(2);
    expect(noReason.stderr.trim().split('\n')).toHaveLength(1);
    expect(noReason.stderr).toContain('needs --reason');
    const unknown = await cli('--store', store, 'hold', 'team/app:nope', '--reason', 'r');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('team/app:nope has never been snapshotted');
  });

  it('releases, keeps both records (append-only), and refuses a second release', async () => {
    const released = await cliJson<{ action: string; digest: string }>(
      '--store',
      store,
      'release',
      'team/app:prod',
      '--reason',
      'audit closed',
    );
    expect(released).toMatchObject({ action: 'release', digest });
    expect((await cli('--store', store, 'hold', '--list')).stdout).toContain('no image is on hold');
    const all = await cli('--store', store, 'hold', '--list', '--all');
    expect(
      all.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[1]),
    ).toEqual(['hold', 'release']);
    const files = readdirSync(
      path.join(root, 'imagevault/holds/team/app/_digests', `sha256-${digest.slice(7)}`),
    );
    expect(files).toHaveLength(2);
    const twice = await cli('--store', store, 'release', 'team/app:prod', '--reason', 'again');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('not on hold');
  });
});
