import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openVault } from '../../lib/content/open';
import type { Vault } from '../../lib/content/vault';
import { BASE_EXTENSION, type BaseRecord } from '../../lib/drift/types';
import { UpstreamWatcher, type UpstreamMoved, type UpstreamWatcherOptions } from '../../lib/drift/upstream';
import { UpstreamLog } from '../../lib/drift/upstream-state';
import { MediaType } from '../../lib/oci';
import { staticCredentials } from '../../lib/registry';
import { LayoutBuilder, type BuiltImage } from '../../fixtures';
import {
  pushWithCredentials,
  startCountingProxy,
  startTokenRegistry,
  type CountingProxy,
  type TokenRegistry,
} from '../testbed/token-registry';

/*
 * A local registry plays upstream (Docker Hub) WITH token auth: docker-registry + a JWT token server, and a counting
 * proxy in front, so every manifest request the watcher makes is seen and can be answered the way public
 * registries do (no digest header, 429, ratelimit-remaining).
 */

let dir: string;
let reg: TokenRegistry;
let proxy: CountingProxy;
let layout: LayoutBuilder;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'imagevault-drift-upstream-'));
  reg = await startTokenRegistry(path.join(dir, 'registry'));
  proxy = await startCountingProxy(reg.registry);
  layout = new LayoutBuilder(path.join(dir, 'layout'));
});

afterAll(async () => {
  await proxy?.close();
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.reset();
  proxy.behaviour.stripDigest = false;
  proxy.behaviour.tooManyRequests = 0;
  proxy.behaviour.rateLimitRemaining = undefined;
});

/** Builds and pushes a two-platform base `repo:tag`; `seeds` picks each platform's layer content. */
async function publishBase(
  repo: string,
  tag: string,
  seeds: { amd64: string; arm64: string },
): Promise<{ index: BuiltImage; amd64: BuiltImage; arm64: BuiltImage }> {
  const platformImage = async (arch: 'amd64' | 'arm64', seed: string) =>
    layout.image({
      name: `${repo}-${tag}-${arch}-${seed}`,
      layers: [await layout.layer({ sizeBytes: 2048, seed })],
      platform: { os: 'linux', architecture: arch },
      history: [{ created_by: `/bin/sh -c #(nop) ADD file:${seed} in /` }],
    });
  const amd64 = await platformImage('amd64', seeds.amd64);
  const arm64 = await platformImage('arm64', seeds.arm64);
  const name = `${repo}-${tag}-${seeds.amd64}-${seeds.arm64}`;
  const index = await layout.index({ name, manifests: [amd64, arm64] });
  await pushWithCredentials(layout.dir, name, `${reg.registry}/${repo}:${tag}`, reg);
  return { index, amd64, arm64 };
}

let vaults = 0;

/** A vault holding app:1.0, built (linux/amd64) on `base` as published under `reference`. */
async function vaultWithApp(
  reference: string,
  base: { index: BuiltImage; amd64: BuiltImage },
): Promise<Vault> {
  const vault = await openVault(path.join(dir, `vault-${++vaults}`));
  const appDigest = `sha256:${String(vaults).padStart(64, 'a')}`;
  const record: BaseRecord = {
    detectedAt: '2026-03-01T10:00:00.000Z',
    platforms: [
      {
        platform: 'linux/amd64',
        manifestDigest: appDigest,
        chain: [
          {
            reference,
            indexDigest: base.index.digest,
            manifestDigest: base.amd64.digest,
            layers: 1,
            method: 'annotation',
            verified: true,
          },
        ],
      },
    ],
  };
  const descriptor = { mediaType: MediaType.OciManifest, digest: appDigest, size: 512 };
  await vault.putImage({
    repository: 'app',
    descriptor,
    firstSnapshotAt: '2026-03-01T10:00:00.000Z',
    lastSnapshotAt: '2026-03-01T10:00:00.000Z',
    blobs: 3,
    bytes: 4096,
    referrers: [],
    extensions: { [BASE_EXTENSION]: record },
  });
  await vault.recordTag({
    repository: 'app',
    tag: '1.0',
    action: 'push',
    descriptor,
    observedAt: '2026-03-01T10:00:00.000Z',
    source: { kind: 'test' },
  });
  return vault;
}

function watcher(vault: Vault, notified: UpstreamMoved[], extra: Partial<UpstreamWatcherOptions> = {}) {
  return new UpstreamWatcher({
    vault,
    credentials: staticCredentials({ [proxy.address]: { username: reg.username, password: reg.password } }),
    notify: async (m) => {
      notified.push(m);
    },
    retry: { maxAttempts: 3, baseDelayMs: 10 },
    ...extra,
  });
}

const requests = () => proxy.manifestRequests().map((r) => `${r.method} ${r.path} ${r.status}`);

describe('Class: UpstreamWatcher (token-auth registry as upstream)', () => {
  it('costs exactly one HEAD and no GET per check when the upstream is unchanged', async () => {
    // Prepare
    const base = await publishBase('library/alpine', '3.19', { amd64: 'alp-amd', arm64: 'alp-arm' });
    const reference = `${proxy.address}/library/alpine:3.19`;
    const vault = await vaultWithApp(reference, base);
    const notified: UpstreamMoved[] = [];
    const w = watcher(vault, notified);

    // Act
    const first = await w.check();
    const second = await w.check();

    // Assess
    expect(first.results).toEqual([
      { status: 'current', reference, digest: base.index.digest, otherPlatformsChanged: false },
    ]);
    expect(second.results).toEqual(first.results);
    expect(requests()).toEqual([
      'HEAD /v2/library/alpine/manifests/3.19 200',
      'HEAD /v2/library/alpine/manifests/3.19 200',
    ]);
    expect(first.requests).toEqual({ head: 1, get: 0 });
    expect(notified).toEqual([]);
    expect(reg.tokens.length).toBeGreaterThan(0); // real token auth, with the credential provider's user
    expect((await new UpstreamLog(vault.store).observations(reference)).map((o) => o.digest)).toEqual([
      base.index.digest,
    ]);
  });

  it('reports a moved tag, alerts once across two checks, and fetches the new index once', async () => {
    // Prepare
    const old = await publishBase('library/ruby', '2.7', { amd64: 'ruby-amd-1', arm64: 'ruby-arm-1' });
    const reference = `${proxy.address}/library/ruby:2.7`;
    const vault = await vaultWithApp(reference, old);
    const notified: UpstreamMoved[] = [];
    const w = watcher(vault, notified);
    await w.check();
    const republished = await publishBase('library/ruby', '2.7', {
      amd64: 'ruby-amd-2',
      arm64: 'ruby-arm-1',
    });
    proxy.reset();

    // Act
    const first = await w.check();
    const afterFirst = requests();
    proxy.reset();
    const second = await w.check();

    // Assess
    const moved = {
      reference,
      oldDigest: old.index.digest,
      newDigest: republished.index.digest,
      platforms: [
        { platform: 'linux/amd64', oldManifest: old.amd64.digest, newManifest: republished.amd64.digest },
      ],
      affected: [
        { repository: 'app', digest: expect.any(String), tags: ['1.0'], platforms: ['linux/amd64'] },
      ],
      detectedAt: expect.any(String),
    };
    // The first report of a transition carries the base's diff on the moved platform: layer 0 and its history line.
    const diff = [
      {
        platform: 'linux/amd64',
        layers: [
          {
            position: 0,
            change: 'changed',
            old: expect.objectContaining({ diffId: expect.any(String) }),
            new: expect.objectContaining({ diffId: expect.any(String) }),
          },
        ],
        history: [
          '- /bin/sh -c #(nop) ADD file:ruby-amd-1 in /',
          '+ /bin/sh -c #(nop) ADD file:ruby-amd-2 in /',
        ],
      },
    ];
    expect(first.results).toEqual([
      {
        status: 'moved',
        reference,
        digest: republished.index.digest,
        moves: [{ ...moved, diff, alert: 'sent' }],
      },
    ]);
    // One HEAD, the new index once; then, once per transition, each side's manifest and config for the diff.
    expect(afterFirst.slice(0, 2)).toEqual([
      'HEAD /v2/library/ruby/manifests/2.7 200',
      `GET /v2/library/ruby/manifests/${republished.index.digest} 200`,
    ]);
    // (requests() counts manifest requests; the two configs are fetched as blobs beside these.)
    expect([...afterFirst.slice(2)].sort()).toEqual(
      [
        `GET /v2/library/ruby/manifests/${old.amd64.digest} 200`,
        `GET /v2/library/ruby/manifests/${republished.amd64.digest} 200`,
      ].sort(),
    );
    // Still drift (the app is still on the old base), but no second alert and no second GET.
    expect(second.results).toEqual([
      {
        status: 'moved',
        reference,
        digest: republished.index.digest,
        moves: [{ ...moved, alert: 'already-sent' }],
      },
    ]);
    expect(requests()).toEqual(['HEAD /v2/library/ruby/manifests/2.7 200']);
    expect(notified).toHaveLength(1);
    expect(notified[0]).toEqual({ ...moved, diff });
    const state = new UpstreamLog(vault.store);
    expect((await state.transitions(reference)).map((t) => [t.oldDigest, t.newDigest])).toEqual([
      [old.index.digest, republished.index.digest],
    ]);
    expect((await state.observations(reference)).map((o) => o.digest)).toEqual([
      old.index.digest,
      republished.index.digest,
    ]);
  });

  it('without alerts (the CLI), keeps a computed diff: no GET while the drift persists, and counts what it asks', async () => {
    // Prepare
    const old = await publishBase('library/ruby', '3.1', { amd64: 'r31-amd-1', arm64: 'r31-arm-1' });
    const reference = `${proxy.address}/library/ruby:3.1`;
    const vault = await vaultWithApp(reference, old);
    const w = watcher(vault, [], { notify: undefined });
    await w.check();
    await publishBase('library/ruby', '3.1', { amd64: 'r31-amd-2', arm64: 'r31-arm-1' });
    proxy.reset();

    // Act
    const first = await w.check();
    const firstGets = proxy.requests.filter((r) => r.method === 'GET' && r.path !== '/v2/').length;
    proxy.reset();
    const second = await w.check();

    // Assess: the first check read the new index and both sides' manifest and config, and says so; the second
    // only asked the tag (one HEAD) and still reports the same diff.
    expect(first.requests).toEqual({ head: 1, get: firstGets });
    expect(firstGets).toBe(5);
    const diffOf = (r: typeof first) =>
      (r.results[0] as { moves: { diff?: unknown; alert: string }[] }).moves[0];
    expect(diffOf(first)).toMatchObject({
      alert: 'not-sent',
      diff: [expect.objectContaining({ platform: 'linux/amd64' })],
    });
    expect(diffOf(second).diff).toEqual(diffOf(first).diff);
    expect(requests()).toEqual(['HEAD /v2/library/ruby/manifests/3.1 200']);
    expect(second.requests).toEqual({ head: 1, get: 0 });
  });

  it('updates the state silently when only a platform we do not use changed', async () => {
    // Prepare
    const old = await publishBase('library/debian', '12', { amd64: 'deb-amd-1', arm64: 'deb-arm-1' });
    const reference = `${proxy.address}/library/debian:12`;
    const vault = await vaultWithApp(reference, old);
    const notified: UpstreamMoved[] = [];
    const w = watcher(vault, notified);
    const republished = await publishBase('library/debian', '12', { amd64: 'deb-amd-1', arm64: 'deb-arm-2' });
    proxy.reset();

    // Act
    const first = await w.check();
    const second = await w.check();

    // Assess
    expect(first.results).toEqual([
      { status: 'current', reference, digest: republished.index.digest, otherPlatformsChanged: true },
    ]);
    expect(second.results).toEqual(first.results);
    expect(notified).toEqual([]);
    expect(requests()).toEqual([
      'HEAD /v2/library/debian/manifests/12 200',
      `GET /v2/library/debian/manifests/${republished.index.digest} 200`,
      'HEAD /v2/library/debian/manifests/12 200', // the platforms are remembered: no second GET
    ]);
    const [obs] = await new UpstreamLog(vault.store).observations(reference);
    expect(obs.platforms).toEqual({
      'linux/amd64': old.amd64.digest,
      'linux/arm64': republished.arm64.digest,
    });
  });

  it('falls back to GET and hashes the manifest when Docker-Content-Digest is missing', async () => {
    // Prepare
    const base = await publishBase('library/node', '20', { amd64: 'node-amd', arm64: 'node-arm' });
    const reference = `${proxy.address}/library/node:20`;
    const vault = await vaultWithApp(reference, base);
    proxy.behaviour.stripDigest = true;

    // Act
    const report = await watcher(vault, []).check();

    // Assess
    expect(report.results).toEqual([
      { status: 'current', reference, digest: base.index.digest, otherPlatformsChanged: false },
    ]);
    expect(requests()).toEqual([
      'HEAD /v2/library/node/manifests/20 200',
      'GET /v2/library/node/manifests/20 200',
    ]);
    expect((await new UpstreamLog(vault.store).latest(reference))?.via).toBe('get');
  });

  it('waits for Retry-After on a 429 and then succeeds', async () => {
    // Prepare
    const base = await publishBase('library/python', '3.12', { amd64: 'py-amd', arm64: 'py-arm' });
    const reference = `${proxy.address}/library/python:3.12`;
    const vault = await vaultWithApp(reference, base);
    proxy.behaviour.tooManyRequests = 1;

    // Act
    const started = Date.now();
    const report = await watcher(vault, []).check();

    // Assess
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // Retry-After: 1
    expect(report.results[0]).toMatchObject({ status: 'current', digest: base.index.digest });
    expect(requests()).toEqual([
      'HEAD /v2/library/python/manifests/3.12 429',
      'HEAD /v2/library/python/manifests/3.12 200',
    ]);
  });

  it('defers the rest of the run when 429s outlast the backoff', async () => {
    // Prepare
    const base = await publishBase('library/golang', '1.22', { amd64: 'go-amd', arm64: 'go-arm' });
    const reference = `${proxy.address}/library/golang:1.22`;
    const vault = await vaultWithApp(reference, base);
    proxy.behaviour.tooManyRequests = 100;

    // Act
    const report = await watcher(vault, [], { retry: { maxAttempts: 2, baseDelayMs: 10 } }).check({
      references: [reference, `${proxy.address}/library/ruby:2.7`],
    });

    // Assess
    expect(report.results).toEqual([
      { status: 'deferred', reference, reason: expect.stringMatching(/429.*rate limited/) },
      {
        status: 'deferred',
        reference: `${proxy.address}/library/ruby:2.7`,
        reason: expect.stringMatching(/429.*rate limited/),
      },
    ]);
    expect(requests()).toEqual([
      'HEAD /v2/library/golang/manifests/1.22 429',
      'HEAD /v2/library/golang/manifests/1.22 429',
    ]);
  });

  it('stops asking a registry whose ratelimit-remaining reached 0 and defers its other references', async () => {
    // Prepare
    const a = await publishBase('library/haproxy', '2', { amd64: 'ha-amd', arm64: 'ha-arm' });
    const b = await publishBase('library/nginx', '1', { amd64: 'ng-amd', arm64: 'ng-arm' });
    const refA = `${proxy.address}/library/haproxy:2`;
    const refB = `${proxy.address}/library/nginx:1`;
    const vault = await vaultWithApp(refA, a);
    proxy.behaviour.rateLimitRemaining = '0;w=21600';

    // Act
    const report = await watcher(vault, []).check({ references: [refB, refA] });

    // Assess
    expect(report.results).toEqual([
      { status: 'current', reference: refA, digest: a.index.digest, otherPlatformsChanged: false },
      { status: 'deferred', reference: refB, reason: expect.stringContaining('ratelimit-remaining: 0') },
    ]);
    expect(requests()).toEqual(['HEAD /v2/library/haproxy/manifests/2 200']);
    void b;
  });

  it('fails a private upstream without credentials, naming the refusal', async () => {
    // Prepare
    const base = await publishBase('library/redis', '7', { amd64: 'redis-amd', arm64: 'redis-arm' });
    const reference = `${proxy.address}/library/redis:7`;
    const vault = await vaultWithApp(reference, base);

    // Act
    const report = await watcher(vault, [], { credentials: staticCredentials({}) }).check();

    // Assess
    expect(report.results).toEqual([{ status: 'failed', reference, error: expect.stringMatching(/401/) }]);
  });
});
