import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerBaseCommand, registerDriftCommand } from '../../lib/cli/program';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { S3ObjectStore } from '../../lib/content/s3';
import { Vault as VaultClass } from '../../lib/content/vault';
import { SnsAlertPublisher } from '../../lib/aws/sns-alerts';
import { Registries } from '../../lib/registry';
import { createUpstreamCheckHandler } from '../../lib/aws/handlers/upstream';
import { testBucket } from '../testbed/env';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openVault } from '../../lib/content/open';
import type { Vault } from '../../lib/content/vault';
import { NewerVersionsCheck, type NewerVersionsOptions } from '../../lib/drift/newer-versions';
import { BASE_EXTENSION, type BaseRecord } from '../../lib/drift/types';
import { UpstreamWatcher } from '../../lib/drift/upstream';
import { TagListCache, tagListKey } from '../../lib/drift/version-cache';
import { MediaType } from '../../lib/oci';
import { RegistryClient, staticCredentials } from '../../lib/registry';
import { LayoutBuilder, type BuiltImage } from '../../fixtures';
import {
  pushWithCredentials,
  startCountingProxy,
  startTokenRegistry,
  type CountingProxy,
  type TokenRegistry,
} from '../testbed/token-registry';

/*
 * Newer versions against the real registry playing Docker Hub: token auth, and the counting proxy in front, which
 * pages `tags/list` as Docker Hub and distribution 3 do and can answer 429 or `ratelimit-remaining: 0`. `ruby` has
 * 1,500+ tags: releases, variants, pre-releases, dates and builds; its newest major (3.3.6) offers linux/amd64 only.
 */

let dir: string;
let reg: TokenRegistry;
let proxy: CountingProxy;
let layout: LayoutBuilder;
let client: RegistryClient;
let bothPlatforms: BuiltImage;
let amd64Only: BuiltImage;
/** Every tag of library/ruby, as pushed. */
let rubyTags: string[];

const NODE_TAGS = [
  '20',
  '22',
  '20-alpine3.20',
  '20-alpine3.21',
  '20.18.1-alpine3.20',
  '22-alpine3.21',
  '22.11.0-alpine3.21',
];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'imagevault-drift-versions-'));
  reg = await startTokenRegistry(path.join(dir, 'registry'));
  proxy = await startCountingProxy(reg.registry);
  layout = new LayoutBuilder(path.join(dir, 'layout'));
  client = new RegistryClient(reg.registry, {
    credentials: staticCredentials({ [reg.registry]: { username: reg.username, password: reg.password } }),
  });
  const image = async (arch: 'amd64' | 'arm64') =>
    layout.image({
      name: `base-${arch}`,
      layers: [await layout.layer({ sizeBytes: 1024, seed: `base-${arch}` })],
      platform: { os: 'linux', architecture: arch },
    });
  const amd64 = await image('amd64');
  const arm64 = await image('arm64');
  bothPlatforms = await layout.index({ name: 'both', manifests: [amd64, arm64] });
  amd64Only = await layout.index({ name: 'amd64-only', manifests: [amd64] });
  for (const repo of ['library/ruby', 'library/node']) {
    await pushWithCredentials(layout.dir, 'both', `${reg.registry}/${repo}:seed-both`, reg);
    await pushWithCredentials(layout.dir, 'amd64-only', `${reg.registry}/${repo}:seed-amd64`, reg);
  }
  // 1,500 tags beside the ones that matter: old releases, nightly builds (no version) and dates (ignored).
  const filler = [
    ...Array.from({ length: 30 * 40 }, (_, i) => `0.${Math.floor(i / 40)}.${i % 40}`),
    ...Array.from({ length: 220 }, (_, i) => `nightly-${i}`),
    ...Array.from({ length: 80 }, (_, i) => `2024${String(100 + i).padStart(4, '0')}`),
  ];
  const onBoth = [
    '2.7',
    '2.7.6',
    '2.7.8',
    '2.7-slim',
    '2.7.8-slim',
    '3.4-slim',
    '3.4.1-slim',
    '3.4.0-rc1',
    '4.0.0-rc1',
  ];
  const onAmd64 = ['3.3', '3.3.6'];
  rubyTags = [...filler, ...onBoth, ...onAmd64];
  await tagAll('library/ruby', [...filler, ...onBoth], bothPlatforms);
  await tagAll('library/ruby', onAmd64, amd64Only);
  await tagAll('library/node', NODE_TAGS, bothPlatforms);
}, 180_000);

afterAll(async () => {
  await client?.close();
  await proxy?.close();
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.reset();
  proxy.behaviour.tagPageLimit = 1000;
  proxy.behaviour.tagListTooManyRequests = 0;
  proxy.behaviour.tagListRateLimitRemaining = undefined;
  proxy.behaviour.rateLimitRemaining = undefined;
  proxy.behaviour.tooManyRequests = 0;
});

/** Points each tag at `image`, eight PUTs at a time. */
async function tagAll(repo: string, tags: string[], image: BuiltImage): Promise<void> {
  const r = client.repository(repo);
  for (let i = 0; i < tags.length; i += 8)
    await Promise.all(
      tags.slice(i, i + 8).map((t) => r.pushManifest(t, image.manifestBytes, image.mediaType)),
    );
}

let vaults = 0;

/** A vault whose images `repository:1.0` are built (on `platform`) on the base tag `reference`. */
async function vaultWith(
  apps: { repository: string; reference: string; platform: string }[],
  into?: Vault,
): Promise<Vault> {
  ++vaults;
  const vault = into ?? (await openVault(path.join(dir, `vault-${vaults}`)));
  for (const [i, app] of apps.entries()) {
    const digest = `sha256:${String(vaults * 100 + i).padStart(64, 'c')}`;
    const record: BaseRecord = {
      detectedAt: '2026-03-01T10:00:00.000Z',
      platforms: [
        {
          platform: app.platform,
          manifestDigest: digest,
          chain: [
            {
              reference: app.reference,
              indexDigest: bothPlatforms.digest,
              manifestDigest: bothPlatforms.manifests![app.platform.endsWith('arm64') ? 1 : 0].digest,
              layers: 1,
              method: 'annotation',
              verified: true,
            },
          ],
        },
      ],
    };
    const descriptor = { mediaType: MediaType.OciManifest, digest, size: 512 };
    await vault.putImage({
      repository: app.repository,
      descriptor,
      firstSnapshotAt: '2026-03-01T10:00:00.000Z',
      lastSnapshotAt: '2026-03-01T10:00:00.000Z',
      blobs: 3,
      bytes: 4096,
      referrers: [],
      extensions: { [BASE_EXTENSION]: record },
    });
    await vault.recordTag({
      repository: app.repository,
      tag: '1.0',
      action: 'push',
      descriptor,
      observedAt: '2026-03-01T10:00:00.000Z',
      source: { kind: 'test' },
    });
  }
  return vault;
}

const credentials = () =>
  staticCredentials({ [proxy.address]: { username: reg.username, password: reg.password } });

/** A check at a settable time, asking the proxy. */
function checker(vault: Vault, clock: { now: Date }, extra: Partial<NewerVersionsOptions> = {}) {
  return new NewerVersionsCheck({
    vault,
    credentials: credentials(),
    retry: { maxAttempts: 3, baseDelayMs: 10 },
    now: () => clock.now,
    ...extra,
  });
}

const tagPages = () => proxy.requests.filter((r) => r.path.endsWith('/tags/list'));
const manifestGets = () => proxy.manifestRequests().filter((r) => r.method === 'GET');
const HOUR = 3_600_000;

describe('Class: NewerVersionsCheck (token-auth registry as upstream)', () => {
  it('lists 1,500 tags across pages and names the newer versions, keeping the variant and our platforms', async () => {
    // Prepare
    const ruby = `${proxy.address}/library/ruby`;
    const vault = await vaultWith([
      { repository: 'app', reference: `${ruby}:2.7`, platform: 'linux/arm64' },
      { repository: 'slim-app', reference: `${ruby}:2.7-slim`, platform: 'linux/amd64' },
      {
        repository: 'node-app',
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        platform: 'linux/amd64',
      },
    ]);
    const clock = { now: new Date('2026-03-02T06:00:00.000Z') };

    // Act
    const report = await checker(vault, clock).check();

    // Assess: pre-releases, dates, builds and the slim line are not ruby:2.7's; 3.3.6 lacks linux/arm64
    expect(rubyTags.length).toBeGreaterThanOrEqual(1500);
    const listedAt = clock.now.toISOString();
    expect(report.results).toEqual([
      {
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        status: 'checked',
        current: '20.18.1',
        newer: [
          {
            kind: 'major',
            tag: '22.11.0-alpine3.21',
            version: '22.11.0',
            line: '22-alpine3.21',
            platforms: {
              digest: bothPlatforms.digest,
              offered: ['linux/amd64', 'linux/arm64'],
              missing: [],
              checkedAt: listedAt,
            },
          },
          {
            kind: 'variant',
            tag: '20-alpine3.21',
            version: '20',
            platforms: expect.objectContaining({ missing: [] }),
          },
        ],
        platforms: ['linux/amd64'],
        repositories: ['node-app'],
        listedAt,
        tags: NODE_TAGS.length + 2,
      },
      {
        reference: `${ruby}:2.7`,
        status: 'checked',
        current: '2.7.8',
        newer: [
          {
            kind: 'major',
            tag: '3.3.6',
            version: '3.3.6',
            line: '3.3',
            platforms: {
              digest: amd64Only.digest,
              offered: ['linux/amd64'],
              missing: ['linux/arm64'],
              checkedAt: listedAt,
            },
          },
        ],
        platforms: ['linux/arm64'],
        repositories: ['app'],
        listedAt,
        tags: rubyTags.length + 2,
      },
      {
        reference: `${ruby}:2.7-slim`,
        status: 'checked',
        current: '2.7.8',
        newer: [
          {
            kind: 'major',
            tag: '3.4.1-slim',
            version: '3.4.1',
            line: '3.4-slim',
            platforms: expect.objectContaining({ offered: ['linux/amd64', 'linux/arm64'], missing: [] }),
          },
        ],
        platforms: ['linux/amd64'],
        repositories: ['slim-app'],
        listedAt,
        tags: rubyTags.length + 2,
      },
    ]);
    // ruby: two pages of at most 1000 (following Link), node one; one index GET per candidate reported
    expect(tagPages().map((r) => `${r.path} ${r.status}`)).toEqual([
      '/v2/library/node/tags/list 200',
      '/v2/library/ruby/tags/list 200',
      '/v2/library/ruby/tags/list 200',
    ]);
    expect(
      manifestGets()
        .map((r) => r.path)
        .sort(),
    ).toEqual(
      [
        '/v2/library/node/manifests/22.11.0-alpine3.21',
        '/v2/library/node/manifests/20-alpine3.21',
        '/v2/library/ruby/manifests/3.3.6',
        '/v2/library/ruby/manifests/3.4.1-slim',
      ].sort(),
    );
    expect(report.requests).toEqual({ tagPages: 3, get: 4 });
    expect(reg.tokens.length).toBeGreaterThan(0);
    const kept = await new TagListCache(vault.store).get(ruby);
    expect(kept).toMatchObject({ repository: ruby, listedAt, pages: 2 });
    expect(kept!.tags.sort()).toEqual([...rubyTags, 'seed-both', 'seed-amd64'].sort());
    expect(tagListKey(ruby)).toBe(`imagevault/upstream/${proxy.address}/library/ruby/_versions.json`);
  });

  it('follows every Link when the registry pages by 100', async () => {
    // Prepare
    proxy.behaviour.tagPageLimit = 100;
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:2.7.6`, platform: 'linux/amd64' },
    ]);

    // Act
    const report = await checker(vault, { now: new Date() }).check();

    // Assess
    expect(tagPages()).toHaveLength(Math.ceil((rubyTags.length + 2) / 100));
    expect(report.results[0].newer.map((n) => `${n.tag} (${n.kind})`)).toEqual([
      '2.7.8 (patch)',
      '3.3.6 (major)',
    ]);
  });

  it('asks upstream nothing inside the interval: the hourly run costs one HEAD per tag in use', async () => {
    // Prepare
    const ruby = `${proxy.address}/library/ruby`;
    const vault = await vaultWith([
      { repository: 'app', reference: `${ruby}:2.7`, platform: 'linux/arm64' },
      { repository: 'slim-app', reference: `${ruby}:2.7-slim`, platform: 'linux/amd64' },
    ]);
    const clock = { now: new Date('2026-03-02T06:00:00.000Z') };
    const first = await checker(vault, clock).check();
    const watcher = new UpstreamWatcher({
      vault,
      credentials: credentials(),
      retry: { maxAttempts: 3, baseDelayMs: 10 },
    });
    await watcher.check();
    proxy.reset();

    // Act: an hour later, the scheduled run: the upstream watcher, then the newer-versions check
    clock.now = new Date(clock.now.getTime() + HOUR);
    await watcher.check();
    const second = await checker(vault, clock).check();

    // Assess
    expect(proxy.requests.filter((r) => r.path !== '/v2/').map((r) => `${r.method} ${r.path}`)).toEqual([
      'HEAD /v2/library/ruby/manifests/2.7',
      'HEAD /v2/library/ruby/manifests/2.7-slim',
    ]);
    expect(second.requests).toEqual({ tagPages: 0, get: 0 });
    expect(second.results).toEqual(first.results);
  });

  it('lists again, and reads the candidates again, once the interval has passed', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:2.7`, platform: 'linux/arm64' },
    ]);
    const rules = { '': { intervalHours: 6 } };
    const clock = { now: new Date('2026-03-02T06:00:00.000Z') };
    await checker(vault, clock, { rules }).check();
    proxy.reset();

    // Act
    clock.now = new Date(clock.now.getTime() + 5 * HOUR);
    const inside = await checker(vault, clock, { rules }).check();
    clock.now = new Date(clock.now.getTime() + 2 * HOUR);
    const after = await checker(vault, clock, { rules }).check();

    // Assess
    expect(inside.requests).toEqual({ tagPages: 0, get: 0 });
    expect(after.requests).toEqual({ tagPages: 2, get: 1 });
    expect(after.results[0].listedAt).toBe(clock.now.toISOString());
  });

  it('reports pre-releases only when a rule asks, and leaves out ignored tags', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'team-a/app', reference: `${proxy.address}/library/ruby:2.7.6`, platform: 'linux/amd64' },
    ]);

    // Act
    const pre = await checker(
      vault,
      { now: new Date() },
      { rules: { 'team-a/': { prereleases: true } } },
    ).check();
    const ignored = await checker(
      vault,
      { now: new Date() },
      {
        rules: { 'team-a/': { ignore: ['3.*'] } },
        persist: false,
      },
    ).check();
    const off = await checker(
      vault,
      { now: new Date() },
      { rules: { 'team-a/': { upstreams: [] } } },
    ).check();

    // Assess
    expect(pre.results[0].newer.map((n) => `${n.tag} (${n.kind})`)).toEqual([
      '2.7.8 (patch)',
      '4.0.0-rc1 (major)',
    ]);
    expect(ignored.results[0].newer.map((n) => `${n.tag} (${n.kind})`)).toEqual(['2.7.8 (patch)']);
    expect(off.results).toEqual([
      expect.objectContaining({
        reference: `${proxy.address}/library/ruby:2.7.6`,
        status: 'not-watched',
        newer: [],
      }),
    ]);
  });

  it('lists nothing for a base tag that is no version (latest)', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:latest`, platform: 'linux/amd64' },
    ]);

    // Act
    const report = await checker(vault, { now: new Date() }).check();

    // Assess
    expect(report.results).toEqual([
      expect.objectContaining({
        reference: `${proxy.address}/library/ruby:latest`,
        status: 'unversioned',
        newer: [],
      }),
    ]);
    expect(proxy.requests).toEqual([]);
  });

  it('waits for Retry-After on a 429 from tags/list and then succeeds', async () => {
    // Prepare
    const vault = await vaultWith([
      {
        repository: 'app',
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        platform: 'linux/amd64',
      },
    ]);
    proxy.behaviour.tagListTooManyRequests = 1;

    // Act
    const started = Date.now();
    const report = await checker(vault, { now: new Date() }).check();

    // Assess
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(report.results[0].status).toBe('checked');
    expect(tagPages().map((r) => r.status)).toEqual([429, 200]);
  });

  it('defers the registry when 429s outlast the backoff, reporting from the last listing', async () => {
    // Prepare: a listing a day old, then upstream rate-limits every listing
    const ruby = `${proxy.address}/library/ruby`;
    const vault = await vaultWith([
      { repository: 'app', reference: `${ruby}:2.7`, platform: 'linux/arm64' },
      {
        repository: 'node-app',
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        platform: 'linux/amd64',
      },
    ]);
    const clock = { now: new Date('2026-03-02T06:00:00.000Z') };
    const before = await checker(vault, clock).check({ references: [`${ruby}:2.7`] });
    proxy.reset();
    proxy.behaviour.tagListTooManyRequests = 100;
    clock.now = new Date(clock.now.getTime() + 25 * HOUR);

    // Act
    const report = await checker(vault, clock, { retry: { maxAttempts: 2, baseDelayMs: 10 } }).check();

    // Assess: node (first in order) is asked twice and rate-limited; ruby is not asked, and answers from its listing
    expect(tagPages().map((r) => `${r.path} ${r.status}`)).toEqual([
      '/v2/library/node/tags/list 429',
      '/v2/library/node/tags/list 429',
    ]);
    expect(manifestGets()).toEqual([]);
    expect(report.results).toEqual([
      expect.objectContaining({
        status: 'deferred',
        reason: expect.stringMatching(/429.*rate limited/),
        newer: [],
      }),
      {
        ...before.results[0],
        status: 'deferred',
        reason: expect.stringMatching(/429.*rate limited/),
      },
    ]);
  });

  it('stops asking a registry whose ratelimit-remaining reached 0, after the listing that said so', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:2.7`, platform: 'linux/arm64' },
      {
        repository: 'node-app',
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        platform: 'linux/amd64',
      },
    ]);
    proxy.behaviour.tagListRateLimitRemaining = '0;w=21600';

    // Act
    const report = await checker(vault, { now: new Date() }).check();

    // Assess: node's listing is used; its candidates' platforms and ruby wait for the next run
    expect(tagPages().map((r) => r.path)).toEqual(['/v2/library/node/tags/list']);
    expect(manifestGets()).toEqual([]);
    expect(report.results.map((r) => [r.status, r.newer.map((n) => n.platformsUnknown ?? 'known')])).toEqual([
      [
        'checked',
        [
          expect.stringContaining('ratelimit-remaining: 0'),
          expect.stringContaining('ratelimit-remaining: 0'),
        ],
      ],
      ['deferred', []],
    ]);
    expect(report.results[1].reason).toMatch(/ratelimit-remaining: 0/);
  });

  it('fails a private upstream without credentials, naming the refusal', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:2.7`, platform: 'linux/arm64' },
    ]);

    // Act
    const report = await checker(vault, { now: new Date() }, { credentials: staticCredentials({}) }).check();

    // Assess
    expect(report.results).toEqual([
      expect.objectContaining({ status: 'failed', reason: expect.stringMatching(/401/), newer: [] }),
    ]);
  });
});

describe('CLI: imagevault drift check and imagevault base name newer versions', () => {
  let saved: string | undefined;
  beforeAll(() => {
    // The CLI reads credentials as docker does.
    saved = process.env.DOCKER_CONFIG;
    const config = path.join(dir, 'docker-config');
    mkdirSync(config, { recursive: true });
    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: { [proxy.address]: { auth } } }));
    process.env.DOCKER_CONFIG = config;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
  });
  afterEach(() => (process.exitCode = undefined));

  async function run(
    vault: Vault,
    json: boolean,
    ...args: string[]
  ): Promise<{ stdout: string; code: number }> {
    let stdout = '';
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
      stdout += c.toString();
      return true;
    });
    const program = new Command('imagevault').exitOverride();
    const ctx = async () => ({
      opts: () => ({ store: vault.url, json, insecure: false, concurrency: 1 }),
      registries: () => new Registries(),
      vault: async () => vault,
    });
    registerDriftCommand(program, ctx);
    registerBaseCommand(program, ctx);
    try {
      await program.parseAsync(['node', 'imagevault', ...args]);
    } finally {
      spy.mockRestore();
    }
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return { stdout, code };
  }

  it('drift check shows the newer versions and what they lack; --json carries them; --fail-on gates', async () => {
    // Prepare
    const ruby = `${proxy.address}/library/ruby`;
    const vault = await vaultWith([
      { repository: 'app', reference: `${ruby}:2.7.6`, platform: 'linux/arm64' },
      {
        repository: 'node-app',
        reference: `${proxy.address}/library/node:20-alpine3.20`,
        platform: 'linux/amd64',
      },
    ]);

    // Act
    const text = await run(vault, false, 'drift', 'check');
    const json = await run(vault, true, 'drift', 'check');
    const major = await run(vault, false, 'drift', 'check', '--fail-on', 'newer-major');
    const patch = await run(
      vault,
      false,
      'drift',
      'check',
      '--fail-on',
      'newer-patch',
      '--reference',
      `${ruby}:2.7.6`,
    );
    const ignored = await run(
      vault,
      false,
      'drift',
      'check',
      '--fail-on',
      'newer-major',
      '--reference',
      `${ruby}:2.7.6`,
      '--ignore-tag',
      '3.*',
    );

    // Assess
    expect(text.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        `NEWER\t${ruby}:2.7.6\tnewer: 2.7.8 (patch), 3.3.6 (major); 3.3.6 lacks linux/arm64`,
        `NEWER\t${proxy.address}/library/node:20-alpine3.20 (now 20.18.1)\tnewer: 22.11.0-alpine3.21 (major, tag 22-alpine3.21), 20-alpine3.21 (variant)`,
        expect.stringMatching(
          /^2 base tags compared with upstream versions: 2 with a newer release; 3 tag list pages, 4 GET$/,
        ),
      ]),
    );
    expect(text.code).toBe(0);
    const report = JSON.parse(json.stdout) as {
      newer: { results: { reference: string; newer: unknown[] }[] };
    };
    expect(report.newer.results.find((r) => r.reference === `${ruby}:2.7.6`)?.newer).toEqual([
      expect.objectContaining({ kind: 'patch', tag: '2.7.8' }),
      expect.objectContaining({
        kind: 'major',
        tag: '3.3.6',
        platforms: expect.objectContaining({ missing: ['linux/arm64'] }),
      }),
    ]);
    expect(json.stdout).toContain('"requests"');
    expect(major.code).toBe(5);
    expect(patch.code).toBe(5);
    expect(ignored.code).toBe(0); // only 2.7.8, a patch, is left
  });

  it('base REF shows the newer versions of its base, for its platform', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:2.7`, platform: 'linux/arm64' },
    ]);

    // Act
    const text = await run(vault, false, 'base', 'app:1.0');
    const json = await run(vault, true, 'base', 'app:1.0');

    // Assess
    expect(text.stdout).toContain(
      `newer: 3.3.6 (major, tag 3.3); 3.3.6 lacks linux/arm64 (${proxy.address}/library/ruby:2.7 is 2.7.8 now)`,
    );
    const report = JSON.parse(json.stdout) as { platforms: { chain: { newer?: unknown }[] }[] };
    expect(report.platforms[0].chain[0].newer).toMatchObject({
      status: 'checked',
      current: '2.7.8',
      newer: [{ kind: 'major', tag: '3.3.6', platforms: { missing: ['linux/arm64'] } }],
    });
    // base reads the vault only: it keeps no tag list
    expect(await new TagListCache(vault.store).get(`${proxy.address}/library/ruby`)).toBeUndefined();
  });
});

describe('Lambda: the upstream run sends a newer-versions digest weekly (S3 vault, SNS mocked)', () => {
  const sns = mockClient(SNSClient);
  const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:imagevault-alerts';
  const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:imagevault-upstream';

  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  });

  it('one digest a week, none on the hourly runs between, which ask upstream one HEAD per tag', async () => {
    // Prepare
    const { client: s3, bucket } = await testBucket(`iv-versions-${Date.now()}`);
    const vault = new VaultClass(new S3ObjectStore({ bucket, prefix: 'prod', client: s3 }));
    await vault.init();
    const ruby = `${proxy.address}/library/ruby`;
    await vaultWith(
      [
        { repository: 'app', reference: `${ruby}:2.7`, platform: 'linux/arm64' },
        { repository: 'team-a/api', reference: `${ruby}:2.7`, platform: 'linux/arm64' },
        {
          repository: 'node-app',
          reference: `${proxy.address}/library/node:20-alpine3.20`,
          platform: 'linux/amd64',
        },
      ],
      vault,
    );
    const clock = { now: new Date('2026-03-02T06:00:00.000Z') };
    const handler = createUpstreamCheckHandler({
      vault,
      publisher: new SnsAlertPublisher(new SNSClient({ region: 'eu-west-1' }), TOPIC),
      store: `s3://${bucket}/prod`,
      credentials: credentials(),
      retry: { maxAttempts: 3, baseDelayMs: 10 },
      now: () => clock.now,
    });
    const published = () => sns.commandCalls(PublishCommand).map((c) => c.args[0].input);

    // Act: the first run, an hourly run, and the run a week later
    const first = await handler({}, { invokedFunctionArn: FUNCTION_ARN });
    proxy.reset();
    clock.now = new Date(clock.now.getTime() + HOUR);
    const hourly = await handler({}, { invokedFunctionArn: FUNCTION_ARN });
    const hourlyRequests = proxy.requests
      .filter((r) => r.path !== '/v2/')
      .map((r) => `${r.method} ${r.path}`);
    clock.now = new Date(clock.now.getTime() + 7 * 24 * HOUR);
    const weekly = await handler({}, { invokedFunctionArn: FUNCTION_ARN });

    // Assess
    expect(first.versions).toEqual({
      compared: 2,
      withNewer: 2,
      deferred: 0,
      failed: 0,
      digest: 'sent',
      requests: { tagPages: 3, get: 3 },
    });
    expect(hourly.versions).toMatchObject({ digest: 'not-due', requests: { tagPages: 0, get: 0 } });
    expect(hourlyRequests.sort()).toEqual([
      'HEAD /v2/library/node/manifests/20-alpine3.20',
      'HEAD /v2/library/ruby/manifests/2.7',
    ]);
    expect(weekly.versions).toMatchObject({ digest: 'sent', requests: { tagPages: 3, get: 3 } });
    const messages = published();
    expect(messages).toHaveLength(2);
    const [msg] = messages;
    expect(msg.MessageAttributes?.kind).toEqual({ DataType: 'String', StringValue: 'newer-versions' });
    expect(msg.Subject).toBe('[imagevault] newer base versions: 2 base tags behind (2 major)');
    expect(msg.Message).toContain(`${ruby}:2.7 (now 2.7.8), used by app, team-a/api`);
    expect(msg.Message).toContain('  newer: 3.3.6 (major, tag 3.3); 3.3.6 lacks linux/arm64');
    expect(msg.Message).toContain(
      '  newer: 22.11.0-alpine3.21 (major, tag 22-alpine3.21), 20-alpine3.21 (variant)',
    );
    expect(messages[1].Message).toContain('Last digest:   2026-03-02T06:00:00.000Z');
  });

  it('sends no digest when no base in use has a newer version, and none when the watch is off', async () => {
    // Prepare
    const vault = await vaultWith([
      { repository: 'app', reference: `${proxy.address}/library/ruby:3.3.6`, platform: 'linux/amd64' },
    ]);
    const make = (extra: object) =>
      createUpstreamCheckHandler({
        vault,
        publisher: new SnsAlertPublisher(new SNSClient({ region: 'eu-west-1' }), TOPIC),
        store: 'file:///vault',
        credentials: credentials(),
        ...extra,
      });

    // Act
    const current = await make({})({}, { invokedFunctionArn: FUNCTION_ARN });
    proxy.reset();
    const off = await make({ versionRules: {} })({}, { invokedFunctionArn: FUNCTION_ARN });

    // Assess
    expect(current.versions).toMatchObject({ compared: 1, withNewer: 0, digest: 'nothing-newer' });
    expect(off.versions).toMatchObject({ digest: 'off', requests: { tagPages: 0, get: 0 } });
    expect(tagPages()).toEqual([]);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });
});
