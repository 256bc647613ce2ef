/**
 * The vault's own disk failing, and writers killed mid-write: each case names the promise it checks. Nothing is
 * ever stored under a digest it does not hash to, a failure names the vault and the file, a multi-image run goes on
 * to the next image, and what a killed run leaves behind is reported and cleared.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Vault } from '../../lib/content';
import { openVault } from '../../lib/content/open';
import { S3ObjectStore } from '../../lib/content/s3';
import {
  fetchManifest,
  LayoutBuilder,
  pushLayout,
  pushStandardFixtures,
  type BuiltImage,
} from '../../fixtures';
import { startFaultyProxy, type FaultyProxy } from '../testbed/faulty-proxy';
import { s3ProcessEnv, s3env, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

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

  /*
   * kill -9 at each phase of a snapshot (and of a restore), then the promises after it: nothing corrupt and nothing
   * under a digest it does not hash to (verify re-hashes every blob), no image named that the vault does not wholly
   * hold (nothing missing), what the kill left is only leftovers that verify --repair removes, the rerun completes,
   * and a restore gives back the same digest. Each kill waits on a hook, not a clock: the faulty proxy holds the
   * request that starts the next phase (a blob's body, a GET, a PUT into S3) and the test kills once it is held.
   */
  describe('killed (SIGKILL) at each phase, then rerun', () => {
    const CLI = path.join(ROOT, 'dist', 'cli', 'imagevault.js');
    let image: BuiltImage;
    /** config, then the layers, in the order a one-at-a-time copy takes them. */
    let layers: string[];
    let proxy: FaultyProxy;
    let restored = 0;

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
      const dir = tempDir();
      const b = new LayoutBuilder(dir);
      const ls = [
        await b.layer({ sizeBytes: 2 * MiB }),
        await b.layer({ sizeBytes: 2 * MiB }),
        await b.layer({ sizeBytes: 16 * 1024 }),
      ];
      image = await b.image({ name: 'phases', layers: ls });
      layers = ls.map((l) => l.digest);
      await pushLayout(dir, 'phases', `${registry}/faults/phases:1`);
    }, 60_000);

    beforeEach(async () => {
      // A fresh proxy per case, closed right after the kill: a request it still holds then never reaches its target.
      proxy = await startFaultyProxy(registry, { maxHoldMs: 20_000 });
    });

    afterEach(() => proxy.close());

    const blobs = (store: string) => path.join(store, 'blobs', 'sha256');
    /** The blob has its name in the vault (written, synced and renamed). */
    const named = (store: string, digest: string) =>
      existsSync(path.join(blobs(store), digest.slice('sha256:'.length)));
    const blobPath = (digest: string) => new RegExp(`/v2/faults/phases/blobs/${digest}$`);
    const seen = (p: FaultyProxy, method: string, re: RegExp) =>
      p.requests.some((r) => r.method === method && re.test(r.path));

    /** Runs the built CLI as its own process and kills it with SIGKILL once `ready` holds (bounded: 20 s). */
    async function killWhen(
      args: string[],
      ready: () => boolean | Promise<boolean>,
      env: NodeJS.ProcessEnv = {},
    ) {
      const child = spawn(process.execPath, [CLI, '--no-progress', ...args], {
        stdio: 'ignore',
        env: { ...process.env, ...env },
      });
      const exit = new Promise<NodeJS.Signals | null>((resolve) =>
        child.once('exit', (_c, signal) => resolve(signal)),
      );
      const deadline = Date.now() + 20_000;
      while (!(await ready())) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`the hook for the kill never held: imagevault ${args.join(' ')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      child.kill('SIGKILL');
      // Killed, not finished on its own: otherwise the case checked nothing.
      expect(await exit).toBe('SIGKILL');
      await proxy.close();
    }

    /** Every file under blobs/ named by a digest hashes to it, and none is a digest the image does not have. */
    function expectOnlyRightBlobs(store: string): string[] {
      const names = existsSync(blobs(store)) ? readdirSync(blobs(store)) : [];
      const stored = names.filter((f) => !f.startsWith('.tmp-'));
      for (const f of stored) {
        const hash = createHash('sha256');
        hash.update(execFileSync('cat', [path.join(blobs(store), f)], { maxBuffer: 64 * MiB }));
        expect(`${f}: ${hash.digest('hex')}`).toBe(`${f}: ${f}`);
      }
      return stored.map((f) => `sha256:${f}`);
    }

    /** After a kill: verify clean but for leftovers, which (once past the grace period) verify --repair removes. */
    async function expectSurvived(store: string): Promise<void> {
      const first = await cliJson<{ missing: unknown[]; corrupt: unknown[] }>('--store', store, 'verify');
      expect([first.missing, first.corrupt]).toEqual([[], []]);
      if (!store.startsWith('s3://')) {
        const temps = (existsSync(blobs(store)) ? readdirSync(blobs(store)) : []).filter((f) =>
          f.startsWith('.tmp-'),
        );
        const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
        for (const t of temps) utimesSync(path.join(blobs(store), t), twoHoursAgo, twoHoursAgo);
        const report = await cliJson<{ leftovers: { key: string }[] }>('--store', store, 'verify');
        expect(report.leftovers.map((l) => l.key).sort()).toEqual(
          temps.map((t) => `blobs/sha256/${t}`).sort(),
        );
        const repair = await cliJson<{ leftovers: unknown[] }>('--store', store, 'verify', '--repair');
        expect(repair.leftovers).toHaveLength(temps.length);
        expect(readdirSync(blobs(store)).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      }
    }

    /** The rerun completes, the vault verifies whole, and a restore gives back the same digest. */
    async function expectRerun(store: string): Promise<void> {
      const rerun = await cli('--store', store, 'snapshot', '--no-base', `${registry}/faults/phases:1`);
      expect(rerun).toMatchObject({ code: 0 });
      const verify = await cliJson<{
        images: number;
        missing: unknown[];
        corrupt: unknown[];
        leftovers: unknown[];
      }>('--store', store, 'verify');
      expect(verify).toMatchObject({ images: 1, missing: [], corrupt: [], leftovers: [] });
      const repo = `faults/phases-restored-${++restored}`;
      expect(
        (await cli('--store', store, 'restore', 'faults/phases:1', '--to', `${registry}/${repo}:1`)).code,
      ).toBe(0);
      const bytes = (await fetchManifest(registry, repo, '1'))!.bytes;
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(image.digest);
    }

    it('mid-blob (its body held after 1 MiB): a temporary file only, and the rerun completes', async () => {
      const store = tempDir();
      proxy.inject({ path: blobPath(layers[1]), method: 'GET', fault: { kind: 'hang', afterBytes: MiB } });
      // Held once its first MiB is on disk, under whatever name the store writes it (config and layers[0] are whole).
      const partWritten = () =>
        existsSync(blobs(store)) &&
        readdirSync(blobs(store)).some(
          (f) =>
            ![image.config.digest, layers[0]].includes(`sha256:${f}`) &&
            statSync(path.join(blobs(store), f)).size >= 512 * 1024,
        );
      await killWhen(
        ['--store', store, '--concurrency', '1', 'snapshot', '--no-base', `${proxy.address}/faults/phases:1`],
        () => proxy.counts.hang === 1 && partWritten(),
      );
      expect(expectOnlyRightBlobs(store)).not.toContain(layers[1]);
      await expectSurvived(store);
      await expectRerun(store);
    });

    it('between blobs (the next GET held): the finished blobs stay, the rest is fetched by the rerun', async () => {
      const store = tempDir();
      proxy.inject({
        path: blobPath(layers[2]),
        method: 'GET',
        fault: { kind: 'gate', open: new Promise(() => {}) },
      });
      // The next transfer starts once the previous blob is read, while that blob is still synced and named: killed
      // once it has its name, so it is a finished blob.
      await killWhen(
        ['--store', store, '--concurrency', '1', 'snapshot', '--no-base', `${proxy.address}/faults/phases:1`],
        () => seen(proxy, 'GET', blobPath(layers[2])) && named(store, layers[1]),
      );
      const stored = expectOnlyRightBlobs(store);
      expect(stored).toContain(layers[1]);
      expect(stored).not.toContain(layers[2]);
      expect(stored).not.toContain(image.digest);
      await expectSurvived(store);
      await expectRerun(store);
    });

    it('after the blobs and the manifest, before the record, history and index (the referrers GET held)', async () => {
      const store = tempDir();
      const referrers = new RegExp(`/v2/faults/phases/referrers/${image.digest}$`);
      proxy.inject({ path: referrers, method: 'GET', fault: { kind: 'gate', open: new Promise(() => {}) } });
      // The referrers are asked for while the blobs transfer; the copy ends only when they answer, so once the
      // manifest is stored as well, the process is past the graph and before its records.
      await killWhen(
        ['--store', store, 'snapshot', '--no-base', `${proxy.address}/faults/phases:1`],
        () => seen(proxy, 'GET', referrers) && named(store, image.digest),
      );
      // The whole graph is in, but no image is named: nothing in the history, nothing in index.json.
      expect(expectOnlyRightBlobs(store).sort()).toEqual(
        [image.config.digest, ...layers, image.digest].sort(),
      );
      const vault = await openVault(`file://${store}`);
      expect(await vault.tags('faults/phases')).toEqual([]);
      expect(JSON.parse((await vault.store.getBytes('index.json'))!.toString()).manifests).toEqual([]);
      await expectSurvived(store);
      await expectRerun(store);
    });

    it('a restore killed before its manifest (the PUT held) completes when rerun, with the same digest', async () => {
      const store = tempDir();
      expect((await cli('--store', store, 'snapshot', '--no-base', `${registry}/faults/phases:1`)).code).toBe(
        0,
      );
      const put = /\/v2\/faults\/phases-killed\/manifests\/1$/;
      proxy.inject({ path: put, method: 'PUT', fault: { kind: 'gate', open: new Promise(() => {}) } });
      await killWhen(
        ['--store', store, 'restore', 'faults/phases:1', '--to', `${proxy.address}/faults/phases-killed:1`],
        () => seen(proxy, 'PUT', put),
      );
      expect(await fetchManifest(registry, 'faults/phases-killed', '1')).toBeUndefined();
      const rerun = await cli(
        '--store',
        store,
        'restore',
        'faults/phases:1',
        '--to',
        `${registry}/faults/phases-killed:1`,
      );
      expect(rerun.code).toBe(0);
      const bytes = (await fetchManifest(registry, 'faults/phases-killed', '1'))!.bytes;
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(image.digest);
    });

    describe('an S3 vault (radosgw behind a second faulty proxy)', () => {
      const saved = { ...process.env };
      let bucket: string;
      let client: import('@aws-sdk/client-s3').S3Client;
      let s3proxy: FaultyProxy;

      beforeAll(async () => {
        Object.assign(process.env, s3ProcessEnv());
        bucket = `killed-${Date.now()}`;
        ({ client } = await testBucket(bucket));
      });

      afterAll(() => {
        process.env = saved;
        client.destroy();
      });

      beforeEach(async () => {
        s3proxy = await startFaultyProxy(new URL(s3env().endpoint).host, { maxHoldMs: 20_000 });
      });

      afterEach(() => s3proxy.close());

      const viaProxy = () => ({ AWS_ENDPOINT_URL_S3: `http://${s3proxy.address}` });

      it('while the tag history is written (its PUT held): the image is whole, the rerun records the tag', async () => {
        const store = `s3://${bucket}/history`;
        const put = new RegExp(`^/${bucket}/history/imagevault/repositories/faults/phases/_tags/`);
        s3proxy.inject({ path: put, method: 'PUT', fault: { kind: 'gate', open: new Promise(() => {}) } });
        await killWhen(
          ['--store', store, 'snapshot', '--no-base', `${registry}/faults/phases:1`],
          () => seen(s3proxy, 'PUT', put),
          viaProxy(),
        );
        await s3proxy.close();
        const vault = await openVault(store);
        expect(await vault.image('faults/phases', image.digest)).toBeDefined();
        expect(await vault.history('faults/phases', '1')).toEqual([]);
        await expectSurvived(store);
        await expectRerun(store);
        expect((await vault.history('faults/phases', '1')).map((h) => h.descriptor.digest)).toEqual([
          image.digest,
        ]);
      });

      it('mid-multipart upload (the source held after 20 MiB): an unfinished upload that repair aborts', async () => {
        const store = `s3://${bucket}/multipart`;
        proxy.inject({
          path: new RegExp(`/v2/faults/big/blobs/${big.layers[0].digest}$`),
          method: 'GET',
          fault: { kind: 'hang', afterBytes: 20 * MiB },
        });
        const uploads = async () =>
          (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'multipart/' })))
            .Uploads ?? [];
        await killWhen(
          ['--store', store, 'snapshot', '--no-base', `${proxy.address}/faults/big:1`],
          async () => proxy.counts.hang === 1 && (await uploads()).length > 0,
        );
        const vault = await openVault(store);
        expect(await vault.layout.exists(big.layers[0])).toBe(false);
        expect((await cliJson<{ corrupt: unknown[] }>('--store', store, 'verify')).corrupt).toEqual([]);
        // An upload is a leftover once a day old (S3 keeps its own start time): asked as of a day later here.
        const later = new Date(Date.now() + 25 * 3600_000);
        const left = await vault.leftovers({ remove: true, now: later });
        expect(left.map((l) => l.key)).toEqual([`blobs/sha256/${big.layers[0].digest.slice(7)}`]);
        expect(await uploads()).toEqual([]);
        const rerun = await cli('--store', store, 'snapshot', '--no-base', `${registry}/faults/big:1`);
        expect(rerun.code).toBe(0);
        expect(await cliJson('--store', store, 'verify')).toMatchObject({
          missing: [],
          corrupt: [],
          leftovers: [],
        });
      });
    });
  });
});
