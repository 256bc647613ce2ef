/**
 * The vault's own disk failing, and writers killed mid-write: each case names the promise it checks. Nothing is
 * ever stored under a digest it does not hash to, a failure names the vault and the file, a multi-image run goes on
 * to the next image, and what a killed run leaves behind is reported and cleared.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { Vault } from '../../lib/content';
import { S3ObjectStore } from '../../lib/content/s3';
import { LayoutBuilder, pushLayout, pushStandardFixtures, type BuiltImage } from '../fixtures';
import { testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

const ROOT = path.resolve(__dirname, '../..');
const MiB = 1024 * 1024;

describe('store faults: a full disk, killed writers, leftovers (real registry)', () => {
  let registry: string;
  let big: BuiltImage;
  let small: BuiltImage;

  beforeAll(async () => {
    registry = testbed().registry;
    const dir = tempDir();
    const layout = new LayoutBuilder(dir);
    big = await layout.image({ name: 'big', layers: [await layout.layer({ sizeBytes: 24 * MiB })] });
    small = await layout.image({ name: 'small', layers: [await layout.layer({ sizeBytes: 64 * 1024 })] });
    await pushLayout(dir, 'big', `${registry}/faults/big:1`);
    await pushLayout(dir, 'small', `${registry}/faults/small:1`);
  }, 120_000);

  describe('a full disk (a 16 MiB tmpfs as the vault)', () => {
    let mount: string;

    beforeAll(() => {
      mount = tempDir();
      // Root only, as CI runs; a run that cannot mount fails here rather than passing without the case.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
    });

    afterAll(() => execFileSync('umount', [mount]));

    it('names the vault and the file, goes on to the next image, and stores nothing partial', async () => {
      const store = `file://${mount}/vault`;
      const r = await cli(
        '--json',
        '--store',
        store,
        'snapshot',
        `${registry}/faults/big:1`,
        `${registry}/faults/small:1`,
      );
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout) as {
        snapshots: { reference: string }[];
        failures: { reference: string; error: string }[];
      };
      // The big image failed, naming the store, the blob and the reason; the small one after it was snapshotted.
      expect(out.failures).toEqual([
        {
          reference: `${registry}/faults/big:1`,
          error: expect.stringMatching(new RegExp(`${store}.*blobs/sha256/[0-9a-f]{64}.*ENOSPC`)),
        },
      ]);
      expect(out.snapshots.map((s) => s.reference)).toEqual([`${registry}/faults/small:1@${small.digest}`]);
      expect(r.stderr).toMatch(/^imagevault: .*faults\/big:1: FAILED: .*ENOSPC/m);
      // No temporary file left, nothing under the big layer's name, and the vault verifies.
      const blobs = readdirSync(path.join(mount, 'vault', 'blobs', 'sha256'));
      expect(blobs.filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      expect(blobs).not.toContain(big.layers[0].digest.slice('sha256:'.length));
      const verify = await cli('--store', store, 'verify');
      expect(verify.code).toBe(0);
    });
  });

  describe('concurrent writers', () => {
    it('four snapshot processes into one vault at once, sharing layers, all succeed and the vault verifies', async () => {
      const fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'concurrent' });
      const store = path.join(tempDir(), 'vault');
      const cliBin = path.join(ROOT, 'dist', 'cli', 'imagevault.js');
      // Each process takes two images, and every image is taken by two processes: the same blobs race.
      const runs = [
        [fx.shared[0].ref, fx.shared[1].ref],
        [fx.shared[1].ref, fx.multiLayer.ref],
        [fx.multiLayer.ref, fx.index.ref],
        [fx.index.ref, fx.shared[0].ref],
      ];
      const codes = await Promise.all(
        runs.map(
          (refs) =>
            new Promise<number | null>((resolve) => {
              const child = spawn(
                process.execPath,
                [cliBin, '--no-progress', '--store', store, 'snapshot', ...refs],
                {
                  stdio: 'ignore',
                },
              );
              child.once('exit', resolve);
            }),
        ),
      );
      expect(codes).toEqual([0, 0, 0, 0]);
      const verify = await cli('--json', '--store', store, 'verify');
      expect(verify.code).toBe(0);
      expect(JSON.parse(verify.stdout)).toMatchObject({ images: 4, missing: [], corrupt: [], leftovers: [] });
    });
  });

  describe('leftovers of interrupted writes', () => {
    it('verify reports them, --repair removes only those past the grace period, and nothing else changes', async () => {
      const store = path.join(tempDir(), 'vault');
      expect((await cli('--store', store, 'snapshot', `${registry}/faults/small:1`)).code).toBe(0);
      const blobs = path.join(store, 'blobs', 'sha256');
      const stale = path.join(blobs, '.tmp-0123456789abcdef');
      const fresh = path.join(blobs, '.tmp-fedcba9876543210');
      writeFileSync(stale, Buffer.alloc(3 * MiB));
      writeFileSync(fresh, Buffer.alloc(MiB));
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      utimesSync(stale, twoHoursAgo, twoHoursAgo);

      const report = await cli('--store', store, 'verify');
      expect(report.code).toBe(0);
      expect(report.stdout).toContain('LEFTOVER blobs/sha256/.tmp-0123456789abcdef (3.0 MiB)');
      expect(report.stdout).not.toContain('.tmp-fedcba9876543210');
      expect(report.stdout).toContain(
        '1 leftovers of interrupted writes (3.0 MiB): verify --repair removes them',
      );
      expect(existsSync(stale)).toBe(true);

      const repair = await cli('--store', store, 'verify', '--repair');
      expect(repair.stdout).toContain('removed 1 leftovers of interrupted writes (3.0 MiB)');
      expect(repair.stdout).toContain('OK: everything present and verified');
      expect([existsSync(stale), existsSync(fresh)]).toEqual([false, true]);
    });

    it('the next snapshot clears stale ones among the blobs', async () => {
      const store = path.join(tempDir(), 'vault');
      const blobs = path.join(store, 'blobs', 'sha256');
      mkdirSync(blobs, { recursive: true });
      const stale = path.join(blobs, '.tmp-aaaaaaaaaaaaaaaa');
      writeFileSync(stale, Buffer.alloc(MiB));
      const yesterday = new Date(Date.now() - 24 * 3600_000);
      utimesSync(stale, yesterday, yesterday);
      const r = await cli('--json', '--store', store, 'snapshot', `${registry}/faults/small:1`);
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { leftoversRemoved: { key: string }[] }).leftoversRemoved).toEqual([
        expect.objectContaining({ key: 'blobs/sha256/.tmp-aaaaaaaaaaaaaaaa', size: MiB }),
      ]);
      expect(existsSync(stale)).toBe(false);
    });

    it('a snapshot killed (SIGKILL) mid-blob stores nothing under a wrong name, and the rerun completes', async () => {
      const store = path.join(tempDir(), 'vault');
      const cliBin = path.join(ROOT, 'dist', 'cli', 'imagevault.js');
      const child = spawn(
        process.execPath,
        [cliBin, '--no-progress', '--store', store, 'snapshot', `${registry}/faults/big:1`],
        {
          stdio: 'ignore',
        },
      );
      // Kill it once a temporary blob file exists (bounded: 20 s).
      const blobs = path.join(store, 'blobs', 'sha256');
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if (existsSync(blobs) && readdirSync(blobs).some((f) => f.startsWith('.tmp-'))) break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));

      // Whatever is there under a digest name hashes to it: verify finds nothing corrupt.
      const verify = await cli('--json', '--store', store, 'verify');
      expect((JSON.parse(verify.stdout) as { corrupt: unknown[] }).corrupt).toEqual([]);
      const rerun = await cli('--json', '--store', store, 'snapshot', `${registry}/faults/big:1`);
      expect(rerun.code).toBe(0);
      expect((await cli('--store', store, 'verify')).code).toBe(0);
    });

    it('an S3 vault reports multipart uploads never completed, and aborts them on repair (radosgw)', async () => {
      const { client, bucket } = await testBucket(`leftover-${Date.now()}`);
      try {
        const store = new S3ObjectStore({ bucket, prefix: 'team', client });
        const vault = new Vault(store);
        await vault.init();
        const key = `team/blobs/sha256/${'ab'.repeat(32)}`;
        const upload = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: upload.UploadId,
            PartNumber: 1,
            Body: Buffer.alloc(1024),
          }),
        );
        // An upload is a leftover once it is older than the grace period: a day by default, none here.
        expect(await vault.leftovers({ remove: false })).toEqual([]);
        const later = new Date(Date.now() + 60_000);
        expect(await vault.leftovers({ remove: false, graceMs: 0, now: later })).toEqual([
          { key: `blobs/sha256/${'ab'.repeat(32)}`, since: expect.any(Date) },
        ]);
        await vault.leftovers({ remove: true, graceMs: 0, now: later });
        expect(await vault.leftovers({ remove: false, graceMs: 0, now: later })).toEqual([]);
      } finally {
        client.destroy();
      }
    });
  });
});
