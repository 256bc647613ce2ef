/**
 * The lost-registry story, end to end against real peers: images pushed by skopeo into a real registry are
 * snapshotted by the CLI, the registry is lost, and restore gives back the same bytes — checked by skopeo.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  pushStandardFixtures,
  skopeoInspectRaw,
  type PushedFixtures,
  type PushedImage,
} from '../../fixtures';
import { startRegistry, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';
import { openVault } from '../../lib/content/open';
import { Reference } from '../../lib/oci';
import { Registries, Restorer } from '../../lib/services';

const skopeo = (...args: string[]) => execFileSync('skopeo', args, { encoding: 'utf8' });

describe('snapshot → lose the registry → restore (directory store)', () => {
  let source: string;
  let fx: PushedFixtures;
  let store: string;
  let images: PushedImage[];

  beforeAll(async () => {
    source = testbed().registry;
    fx = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'rt' });
    store = `file://${tempDir('imagevault-vault-')}`;
    images = [fx.multiLayer, fx.index, fx.shared[0], fx.shared[1], fx.docker, fx.plainTar, fx.withEmptyLayer];
  });

  it('snapshots every fixture and stores each shared layer once', async () => {
    const r = await cliJson<{
      snapshots: { reference: string; copy: { blobs: { copied: number; skipped: number } } }[];
    }>('--store', store, 'snapshot', ...images.map((i) => i.ref));
    expect(r.snapshots).toHaveLength(images.length);
    const distinct = new Set(images.flatMap((i) => i.blobs).concat(fx.signature.blobs));
    const stored = readdirSync(path.join(new URL(store).pathname, 'blobs', 'sha256'));
    expect(new Set(stored)).toEqual(new Set([...distinct].map((d) => d.slice('sha256:'.length))));
  });

  it('copies zero blob bytes when run again', async () => {
    const r = await cliJson<{
      snapshots: { copy: { bytes: { copied: number }; blobs: { copied: number } } }[];
    }>('--store', store, 'snapshot', ...images.map((i) => i.ref));
    for (const s of r.snapshots) {
      expect(s.copy.blobs.copied).toBe(0);
      expect(s.copy.bytes.copied).toBe(0);
    }
  });

  it('keeps the signature as a referrer of its image', async () => {
    const r = await cliJson<{ images: { digest: string; referrers: number }[] }>(
      '--store',
      store,
      'list',
      fx.multiLayer.repo,
    );
    expect(r.images).toEqual([expect.objectContaining({ digest: fx.multiLayer.digest, referrers: 1 })]);
  });

  it('is an OCI layout skopeo reads', () => {
    const dir = new URL(store).pathname;
    const raw = skopeo('inspect', '--raw', `oci:${dir}:${fx.multiLayer.repo}:1`);
    expect(Buffer.from(raw)).toEqual(fx.multiLayer.manifestBytes);
  });

  describe('after the registry is lost', () => {
    let fresh: string;
    beforeAll(() => {
      fresh = startRegistry(`fresh-${Date.now()}`);
    });

    it('restores every image with byte-identical manifests and identical digests', async () => {
      for (const img of images) {
        const r = await cliJson<{ verifiedDigest: string }>(
          '--store',
          store,
          'restore',
          `${img.repo}:1`,
          '--to',
          `${fresh}/${img.repo}:1`,
        );
        expect(r.verifiedDigest).toBe(img.digest);
        const raw = await skopeoInspectRaw(`${fresh}/${img.repo}:1`);
        expect(raw).toEqual(img.manifestBytes);
      }
    });

    it('restores the signature and the referrers fallback tag', async () => {
      const raw = await skopeoInspectRaw(`${fresh}/${fx.multiLayer.repo}@${fx.signature.digest}`);
      expect(raw).toEqual(fx.signature.manifestBytes);
      const index = JSON.parse(
        (await skopeoInspectRaw(`${fresh}/${fx.multiLayer.repo}:${fx.referrersTag}`)).toString(),
      );
      expect(index.manifests.map((m: { digest: string }) => m.digest)).toContain(fx.signature.digest);
    });

    it('gives back images skopeo can copy in full', () => {
      const out = tempDir();
      skopeo(
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${fresh}/${fx.index.repo}:1`,
        `oci:${out}:x`,
      );
      const blobs = readdirSync(path.join(out, 'blobs', 'sha256'));
      for (const d of fx.index.blobs) expect(blobs).toContain(d.slice(7));
    });

    it('mounts layers shared with an image restored earlier in the run instead of sending them again', async () => {
      const target = startRegistry(`mount-${Date.now()}`);
      const vault = await openVault(store);
      const restorer = new Restorer(vault, new Registries());
      const [a, b] = fx.shared;
      const first = await restorer.restore({
        repository: a.repo,
        tag: '1',
        to: Reference.parse(`${target}/${a.repo}:1`),
      });
      const second = await restorer.restore({
        repository: b.repo,
        tag: '1',
        to: Reference.parse(`${target}/${b.repo}:1`),
      });
      expect(first.copy.blobs.mounted).toBe(0);
      expect(second.copy.blobs.mounted).toBe(2);
      expect(second.verifiedDigest).toBe(b.digest);
      expect(await skopeoInspectRaw(`${target}/${b.repo}:1`)).toEqual(b.manifestBytes);
    });

    it('dry run says what it would copy and pushes nothing', async () => {
      const other = startRegistry(`dry-${Date.now()}`);
      const r = await cliJson<{ dryRun: boolean; copy: { blobs: { copied: number } } }>(
        '--store',
        store,
        'restore',
        `${fx.docker.repo}:1`,
        '--to',
        `${other}/${fx.docker.repo}:1`,
        '--dry-run',
      );
      expect(r.dryRun).toBe(true);
      expect(r.copy.blobs.copied).toBe(fx.docker.blobs.length - 1);
      expect(() =>
        skopeo('inspect', '--raw', '--tls-verify=false', `docker://${other}/${fx.docker.repo}:1`),
      ).toThrow();
    });
  });

  it('exports an OCI layout that skopeo copies', async () => {
    const dir = tempDir();
    await cliJson('--store', store, 'export', `${fx.index.repo}:1`, '--oci-layout', dir);
    const raw = skopeo('inspect', '--raw', `oci:${dir}:1`);
    expect(Buffer.from(raw)).toEqual(fx.index.manifestBytes);
    skopeo('copy', '--all', `oci:${dir}:1`, `oci:${tempDir()}:copy`);
  });

  it('history shows every digest a tag pointed to, in order', async () => {
    const three = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'hist', seed: 'h1' });
    const digests = [three.multiLayer.digest];
    await cliJson('--store', store, 'snapshot', `${source}/hist/multi:1`);
    for (const seed of ['h2', 'h3']) {
      const again = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'hist', seed });
      digests.push(again.multiLayer.digest);
      await cliJson('--store', store, 'snapshot', `${source}/hist/multi:1`);
    }
    const h = await cliJson<{ history: { descriptor: { digest: string } }[] }>(
      '--store',
      store,
      'history',
      'hist/multi:1',
    );
    expect(h.history.map((e) => e.descriptor.digest)).toEqual(digests);
    expect(new Set(digests).size).toBe(3);
    // …and a restore at a point in time between the 1st and 2nd gives the first
    const times = (
      await cliJson<{ history: { observedAt: string }[] }>('--store', store, 'history', 'hist/multi:1')
    ).history.map((e) => e.observedAt);
    const between = new Date((Date.parse(times[0]) + Date.parse(times[1])) / 2).toISOString();
    const target = startRegistry(`pit-${Date.now()}`);
    const r = await cliJson<{ verifiedDigest: string }>(
      '--store',
      store,
      'restore',
      'hist/multi:1',
      '--at',
      between,
      '--to',
      `${target}/hist/multi:1`,
    );
    expect(r.verifiedDigest).toBe(digests[0]);
  });

  it('verify passes on a sound vault, then fails naming a corrupted blob; restore of it fails too', async () => {
    const ok = await cli('--store', store, 'verify');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/OK: everything present and verified/);
    const layer = fx.docker.layers[0].digest;
    const file = path.join(new URL(store).pathname, 'blobs', 'sha256', layer.slice(7));
    const bytes = readFileSync(file);
    bytes[100] ^= 0xff;
    writeFileSync(file, bytes);
    const bad = await cli('--store', store, 'verify');
    expect(bad.code).toBe(4);
    expect(bad.stdout).toContain(`CORRUPT ${layer}`);
    const target = startRegistry(`corrupt-${Date.now()}`);
    const r = await cli(
      '--store',
      store,
      'restore',
      `${fx.docker.repo}:1`,
      '--to',
      `${target}/${fx.docker.repo}:1`,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(layer);
    expect(r.stderr).toMatch(/corrupt/);
  });
});
