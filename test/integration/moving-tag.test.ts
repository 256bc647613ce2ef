import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { openVault } from '../../lib/content/open';
import { MediaType } from '../../lib/oci';
import { RegistryClient } from '../../lib/registry';
import { Registries, Snapshotter } from '../../lib/services';
import { Reference } from '../../lib/oci';
import { LayoutBuilder, pushLayout } from '../../fixtures';
import { startFaultyProxy, type FaultyProxy } from '../testbed/faulty-proxy';
import { testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';

/*
 * Two CLI processes snapshot one moving tag at once. The built CLI runs as its own processes, as two cron jobs or two
 * operators would run it; the faulty proxy holds the first one's big layer until the second has finished, so the
 * order (resolved first, finished last) is certain, not a race the test hopes to win.
 */

const CLI = path.resolve(__dirname, '../../dist/cli/imagevault.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function imagevault(args: string[], home: string): { done: Promise<Run>; exited: () => boolean } {
  const child = spawn(process.execPath, [CLI, '--no-progress', ...args], {
    env: { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      resolve({ code, stdout, stderr });
    }),
  );
  return { done, exited: () => exited };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('concurrent snapshots of a moving tag', () => {
  const registry = testbed().registry;
  let proxy: FaultyProxy;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
    proxy = await startFaultyProxy(registry);
  });

  afterAll(() => proxy.close());

  it('records the image resolved last as the latest, whichever copy finishes first', async () => {
    // Prepare: app:current points at a big image; a small one waits under app:small
    const dir = tempDir();
    const b = new LayoutBuilder(dir);
    const bigLayer = await b.layer({ sizeBytes: 8 * 1024 * 1024 });
    const big = await b.image({ name: 'big', layers: [bigLayer] });
    const small = await b.image({ name: 'small', layers: [await b.layer({ sizeBytes: 4096 })] });
    await pushLayout(dir, 'big', `${registry}/moving/app:current`);
    await pushLayout(dir, 'small', `${registry}/moving/app:small`);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    proxy.inject({
      path: new RegExp(`/v2/moving/app/blobs/${bigLayer.digest}$`),
      method: 'GET',
      fault: { kind: 'gate', open: gate },
    });
    const vault = tempDir();
    const home = tempDir();
    const args = [
      '--store',
      `file://${vault}`,
      'snapshot',
      '--no-base',
      `${proxy.address}/moving/app:current`,
    ];

    // Act: the first process resolves the tag (big) and is held on the big layer
    const first = imagevault(args, home);
    await until('the first snapshot to ask for the big layer', () =>
      proxy.requests.some((r) => r.path.endsWith(bigLayer.digest)),
    );
    expect(first.exited()).toBe(false);
    // ... the tag moves to the small image, and a second process snapshots it and finishes
    const client = new RegistryClient(registry, { credentials: async () => undefined });
    try {
      await client
        .repository('moving/app')
        .tag({ mediaType: MediaType.OciManifest, digest: small.digest, size: small.size }, 'current');
    } finally {
      await client.close();
    }
    const second = await imagevault(args, home).done;
    expect(second).toMatchObject({ code: 0 });
    // ... and only then the first one finishes
    release();
    const firstRun = await first.done;
    expect(firstRun).toMatchObject({ code: 0 });

    // Assess: the history is in the order the tag moved, so the latest (what restore and --at pick) is the small one
    const v = await openVault(`file://${vault}`);
    const history = await v.history('moving/app', 'current');
    expect(history.map((h) => h.descriptor.digest)).toEqual([big.digest, small.digest]);
    expect(history[0].observedAt < history[1].observedAt).toBe(true);
    expect((await v.resolveTag('moving/app', 'current')).descriptor.digest).toBe(small.digest);
    expect(
      (await v.resolveTag('moving/app', 'current', new Date(history[1].observedAt))).descriptor.digest,
    ).toBe(small.digest);
  });

  it('compares a new observation with the one before it in time, not with one recorded by a later resolve', async () => {
    // Prepare: the history says A, then (observed later than this snapshot will resolve) B; the tag points at B now
    const dir = tempDir();
    const b = new LayoutBuilder(dir);
    const image = await b.image({ name: 'b', layers: [await b.layer({ sizeBytes: 4096 })] });
    await pushLayout(dir, 'b', `${registry}/moving/dedup:t`);
    const vault = await openVault(`file://${tempDir()}`);
    const B = { mediaType: image.mediaType, digest: image.digest, size: image.size };
    const A = { ...B, digest: `sha256:${'a'.repeat(64)}` };
    const source = { kind: 'cli' };
    await vault.recordTag({
      repository: 'moving/dedup',
      tag: 't',
      action: 'push',
      descriptor: A,
      observedAt: '2020-01-01T00:00:00.000Z',
      source,
    });
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await vault.recordTag({
      repository: 'moving/dedup',
      tag: 't',
      action: 'push',
      descriptor: B,
      observedAt: later,
      source,
    });
    const registries = new Registries({ credentials: async () => undefined });
    // Act
    const r = await new Snapshotter(vault, registries)
      .snapshot({ reference: Reference.parse(`${registry}/moving/dedup:t`) })
      .finally(() => registries.get(registry).close());
    // Assess: B since now is new information (the tag was not A then), so it is recorded
    expect(r.observation?.descriptor.digest).toBe(B.digest);
    const history = await vault.history('moving/dedup', 't');
    expect(history.map((h) => [h.descriptor.digest, h.observedAt === later])).toEqual([
      [A.digest, false],
      [B.digest, false],
      [B.digest, true],
    ]);
    expect((await vault.resolveTag('moving/dedup', 't', new Date(Date.now() + 1000))).descriptor.digest).toBe(
      B.digest,
    );
  });

  it('a tag going A → B → A under two overlapping snapshots ends with A as the latest, whichever finishes last', async () => {
    // Prepare: the vault has seen the tag at A; then it moves to B, whose layer the proxy holds
    const dir = tempDir();
    const b = new LayoutBuilder(dir);
    const layerB = await b.layer({ sizeBytes: 64 * 1024 });
    const A = await b.image({ name: 'a', layers: [await b.layer({ sizeBytes: 4096 })] });
    const B = await b.image({ name: 'b', layers: [layerB] });
    await pushLayout(dir, 'a', `${registry}/moving/aba:t`);
    await pushLayout(dir, 'b', `${registry}/moving/aba:b`);
    const vault = await openVault(`file://${tempDir()}`);
    const registries = new Registries({ credentials: async () => undefined, warn: () => undefined });
    const snap = new Snapshotter(vault, registries);
    const client = registries.get(registry).repository('moving/aba');
    const moveTo = (image: { digest: string; size: number }) =>
      client.tag({ mediaType: MediaType.OciManifest, digest: image.digest, size: image.size }, 't');
    const ref = Reference.parse(`${proxy.address}/moving/aba:t`);
    try {
      await snap.snapshot({ reference: Reference.parse(`${registry}/moving/aba:t`) });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      proxy.inject({
        path: new RegExp(`/v2/moving/aba/blobs/${layerB.digest}$`),
        method: 'GET',
        fault: { kind: 'gate', open: gate },
      });
      await moveTo(B);

      // Act: the first snapshot resolves B and is held on its layer ...
      const first = snap.snapshot({ reference: ref });
      await until("the first snapshot to ask for B's layer", () =>
        proxy.requests.some((r) => r.path.endsWith(layerB.digest)),
      );
      // ... the tag moves back to A, and a second snapshot resolves A and finishes (A is already in the vault)
      await moveTo(A);
      const second = await snap.snapshot({ reference: ref });
      // ... and only then the first one finishes, and records B as seen when it resolved
      release();
      const firstRun = await first;

      // Assess: B was recorded at its resolve time, and the tag is A after it: restore and --at pick A
      expect(firstRun.observation?.descriptor.digest).toBe(B.digest);
      expect(second.descriptor.digest).toBe(A.digest);
      const history = await vault.history('moving/aba', 't');
      expect(history.map((h) => h.descriptor.digest)).toEqual([A.digest, B.digest, A.digest]);
      expect((await vault.resolveTag('moving/aba', 't')).descriptor.digest).toBe(A.digest);
      await vault.writeLayoutIndex();
      const index = JSON.parse((await vault.store.getBytes('index.json'))!.toString()) as {
        manifests: { digest: string }[];
      };
      expect(index.manifests.map((m) => m.digest)).toEqual([A.digest]);
    } finally {
      await registries.get(registry).close();
      await registries.get(proxy.address).close();
    }
  });
});
