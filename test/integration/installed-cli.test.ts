/**
 * The CLI as a user gets it: `npm pack`, `npm install -g` of the tarball into an empty prefix, and the installed
 * `imagevault` run as its own process — no checkout, no node_modules — against the real registry and radosgw.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { pushStandardFixtures, skopeoDigest, type PushedFixtures } from '../../fixtures';
import { s3ProcessEnv, startRegistry, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

/** Bytes under a directory, as `du` counts file sizes. */
function treeBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? treeBytes(p) : statSync(p).size;
  }
  return total;
}

describe('the installed CLI (npm pack, npm install -g into an empty prefix)', () => {
  let prefix: string;
  let bin: string;
  let fx: PushedFixtures;
  let home: string;

  /** Runs the installed bin in a clean environment: no checkout on the path, its own HOME (and so code cache). */
  async function imagevault(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(bin, args, {
        cwd: home,
        env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

  beforeAll(async () => {
    const work = tempDir();
    prefix = path.join(work, 'prefix');
    home = path.join(work, 'home');
    await run('mkdir', ['-p', prefix, home]);
    // npm pack runs prepack (the build), so the tarball is what `npm publish` would upload.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
    await run(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        path.join(work, packed.filename),
      ],
      {
        cwd: work,
      },
    );
    bin = path.join(prefix, 'bin', 'imagevault');
    fx = await pushStandardFixtures(testbed().registry, tempDir(), { repoPrefix: 'installed' });
  }, 120_000);

  it('installs no dependency: the package is its bundled files only, the CLI a few MiB', () => {
    const installed = path.join(prefix, 'lib', 'node_modules', pkg.name);
    expect(readdirSync(path.join(installed, 'dist', 'cli')).sort()).toEqual([
      'commands.js',
      'imagevault.js',
      'inventory-scanners.js',
    ]);
    // Nothing was installed beside it: no node_modules of its own, no other package in the prefix (the constructs'
    // peers, aws-cdk-lib and constructs, are optional).
    expect(() => statSync(path.join(installed, 'node_modules'))).toThrow();
    expect(readdirSync(path.join(prefix, 'lib', 'node_modules'))).toEqual([pkg.name]);
    // The CLI is its three files; the package also carries the constructs and their five prebundled Lambdas with
    // source maps (dist/lambdas, ~17 MiB), which the CLI never loads.
    expect(treeBytes(path.join(installed, 'dist', 'cli'))).toBeLessThan(10 * 1024 * 1024);
    expect(treeBytes(installed)).toBeLessThan(25 * 1024 * 1024);
  });

  it('answers --version from package.json and shows an example under each command', async () => {
    expect(await imagevault(['--version'])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    for (const command of [
      'snapshot',
      'list',
      'history',
      'restore',
      'export',
      'verify',
      'base',
      'drift',
      'provenance',
      'aws',
    ]) {
      const r = await imagevault(['help', command]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Examples:\\n  \\$ imagevault ${command}\\b`));
    }
  });

  it('snapshots into a directory vault and restores bit-for-bit into an empty registry', async () => {
    const store = `file://${path.join(tempDir(), 'vault')}`;
    const snap = await imagevault([
      '--store',
      store,
      '--no-progress',
      'snapshot',
      fx.multiLayer.ref,
      fx.index.ref,
    ]);
    expect(snap).toMatchObject({ code: 0, stderr: '' });

    const fresh = startRegistry(`installed-${Date.now()}`);
    for (const img of [fx.multiLayer, fx.index]) {
      const r = await imagevault([
        '--store',
        store,
        '--no-progress',
        'restore',
        `${img.repo}:1`,
        '--to',
        `${fresh}/${img.repo}`,
      ]);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(await skopeoDigest(`${fresh}/${img.repo}:1`)).toBe(img.digest);
    }
  });

  it('works with an S3 vault and prints nothing but its own output (no SDK notice on this Node)', async () => {
    const { client, bucket } = await testBucket(`installed-${Date.now()}`);
    client.destroy();
    const env = s3ProcessEnv();
    const store = `s3://${bucket}/team`;
    const snap = await imagevault(['--store', store, '--no-progress', 'snapshot', fx.docker.ref], env);
    expect(snap).toMatchObject({ code: 0, stderr: '' });
    const fresh = startRegistry(`installed-s3-${Date.now()}`);
    const r = await imagevault(
      [
        '--store',
        store,
        '--no-progress',
        'restore',
        `${fx.docker.repo}:1`,
        '--to',
        `${fresh}/${fx.docker.repo}`,
      ],
      env,
    );
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(await skopeoDigest(`${fresh}/${fx.docker.repo}:1`)).toBe(fx.docker.digest);
  });
});
