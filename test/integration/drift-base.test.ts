/**
 * Base detection and build drift against a real registry: images built by hand (deterministic seeds), pushed with
 * skopeo, snapshotted through the Snapshotter with the base-detection hook. The seed incident: ruby:2.7 republished
 * with a new OS layer, the app rebuilt on it, and the push-time comparison names the layer and history lines.
 */
import { Command } from 'commander';
import type { Vault } from '../../lib/content';
import { baseReport, type BaseReport } from '../../lib/cli/commands/base';
import { registerBaseCommand } from '../../lib/cli/program';
import { snapshotBaseDetector, type CandidateBases } from '../../lib/drift/base';
import { baseRecordOf, compareWithPrevious } from '../../lib/drift/build-drift';
import { Reference } from '../../lib/oci';
import { Registries, Snapshotter } from '../../lib/services';
import { LayoutBuilder, pushLayout, type BuiltImage, type Layer } from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir, tempVault } from '../unit/helpers';

const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

describe('Base detection and build drift (real registry)', () => {
  let registry: string;
  let layout: LayoutBuilder;
  let vault: Vault;
  let registries: Registries;
  let candidates: CandidateBases;
  const l: Record<string, Layer> = {};
  const images: Record<string, BuiltImage> = {};

  const push = async (image: BuiltImage, target: string) =>
    pushLayout(layout.dir, image.name, `${registry}/${target}`);
  const snapshot = async (ref: string) => {
    const snap = new Snapshotter(vault, registries, {
      detectBase: snapshotBaseDetector(vault, registries, { candidates }),
    });
    const r = await snap.snapshot({ reference: Reference.parse(`${registry}/${ref}`) });
    expect(r.baseError).toBeUndefined();
    return r;
  };
  const chainOf = async (repository: string, digest: string, platform = 0) =>
    baseRecordOf(await vault.image(repository, digest))!.platforms[platform].chain;

  beforeAll(async () => {
    registry = startRegistry(`drift-${Date.now()}`);
    layout = new LayoutBuilder(tempDir('imagevault-drift-layout-'));
    vault = await tempVault();
    registries = new Registries();
    candidates = {};
    for (const seed of [
      'rootfs',
      'openssl-1.1',
      'openssl-3.0',
      'app',
      'internal',
      'chain-app',
      'w0',
      'w1',
      'w2',
    ])
      l[seed] = await layout.layer({ sizeBytes: 4096, seed: `drift-${seed}`, gzip: true });
    for (const seed of ['arm-rootfs', 'arm-openssl', 'arm-app'])
      l[seed] = await layout.layer({ sizeBytes: 4096, seed: `drift-${seed}`, gzip: true });
  });

  afterAll(async () => {
    await Promise.all([registry].map((r) => registries.get(r).close()));
  });

  describe('the seed incident: ruby:2.7 republished with a new OS layer', () => {
    const rubyHistory = (openssl: string) => [
      { created_by: 'ADD rootfs' },
      { created_by: `RUN apt-get install openssl=${openssl}` },
    ];
    const app = (base: BuiltImage, osLayer: Layer, openssl: string, name: string) =>
      layout.image({
        name,
        layers: [l.rootfs, osLayer, l.app],
        history: [...rubyHistory(openssl), { created_by: 'COPY . /app' }],
        annotations: { [BASE_NAME]: `${registry}/base/ruby:2.7`, [BASE_DIGEST]: base.digest },
      });

    it('records the annotated base, verified, at snapshot time', async () => {
      // GIVEN ruby:2.7 (2 layers) and app/web:prod built on it, both pushed
      images.ruby1 = await layout.image({
        name: 'ruby-1',
        layers: [l.rootfs, l['openssl-1.1']],
        history: rubyHistory('1.1'),
      });
      await push(images.ruby1, 'base/ruby:2.7');
      images.web1 = await app(images.ruby1, l['openssl-1.1'], '1.1', 'web-1');
      await push(images.web1, 'app/web:prod');
      // WHEN both are snapshotted
      await snapshot('base/ruby:2.7');
      const r = await snapshot('app/web:prod');
      // THEN the record names the base
      expect(baseRecordOf(r.record)!.platforms).toEqual([
        {
          platform: 'linux/amd64',
          manifestDigest: images.web1.digest,
          chain: [
            {
              reference: `${registry}/base/ruby:2.7`,
              repository: `${registry}/base/ruby`,
              manifestDigest: images.ruby1.digest,
              layers: 2,
              method: 'annotation',
              verified: true,
              evidence: 'manifest annotation',
              historyEntries: 2,
            },
          ],
        },
      ]);
      expect(await compareWithPrevious(vault, 'app/web', 'prod', r.record!)).toEqual([]);
    });

    it('alerts at the rebuild: layer position 1 changed, openssl 1.1 → 3.0 in the history', async () => {
      // GIVEN ruby:2.7 republished with a changed OS layer, and the app rebuilt on it
      images.ruby2 = await layout.image({
        name: 'ruby-2',
        layers: [l.rootfs, l['openssl-3.0']],
        history: rubyHistory('3.0'),
      });
      await push(images.ruby2, 'base/ruby:2.7');
      images.web2 = await app(images.ruby2, l['openssl-3.0'], '3.0', 'web-2');
      await push(images.web2, 'app/web:prod');
      // WHEN the new push is snapshotted and compared with the previous push of the tag
      const r = await snapshot('app/web:prod');
      const drift = await compareWithPrevious(vault, 'app/web', 'prod', r.record!);
      // THEN
      expect(drift).toHaveLength(1);
      expect(drift[0]).toMatchObject({
        kind: 'build-drift',
        repository: 'app/web',
        tag: 'prod',
        platform: 'linux/amd64',
        previous: { digest: images.web1.digest, base: { manifestDigest: images.ruby1.digest } },
        current: { digest: images.web2.digest, base: { manifestDigest: images.ruby2.digest } },
        layers: [
          {
            position: 1,
            change: 'changed',
            old: { digest: l['openssl-1.1'].digest, diffId: l['openssl-1.1'].diffId },
            new: { digest: l['openssl-3.0'].digest, diffId: l['openssl-3.0'].diffId },
          },
        ],
        ownLayers: [],
      });
      expect(drift[0].history.diff).toEqual([
        '  ADD rootfs',
        '- RUN apt-get install openssl=1.1',
        '+ RUN apt-get install openssl=3.0',
      ]);
    });

    it('imagevault base: the recorded chain, and whether the base tag moved since', async () => {
      // The old push was built on ruby-1; the tag now names ruby-2.
      const old = await baseReport(vault, registries, `app/web@${images.web1.digest}`);
      expect(old.source).toBe('vault');
      expect(old.platforms[0].chain[0].upstream).toEqual({
        digest: images.ruby2.digest,
        recorded: images.ruby1.digest,
        moved: true,
      });
      const now = await baseReport(vault, registries, 'app/web:prod');
      expect(now.platforms[0].chain[0].upstream).toMatchObject({ moved: false });
    });

    it('imagevault base as a command: human text and --json', async () => {
      const run = async (...args: string[]) => {
        let stdout = '';
        const spy = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
          stdout += c.toString();
          return true;
        });
        const json = args[0] === '--json';
        const program = new Command('imagevault').exitOverride();
        registerBaseCommand(program, async () => ({
          opts: () => ({ store: vault.url, json, insecure: false, concurrency: 4 }),
          registries: () => registries,
          vault: async () => vault,
        }));
        try {
          await program.parseAsync(['node', 'imagevault', ...args.filter((a) => a !== '--json')]);
        } finally {
          spy.mockRestore();
        }
        return stdout;
      };
      const text = await run('base', `app/web@${images.web1.digest}`);
      expect(text).toContain(`app/web@${images.web1.digest}`);
      expect(text).toContain('linux/amd64');
      expect(text).toContain(
        `on ${registry}/base/ruby:2.7 ${images.ruby1.digest.slice(0, 19)}…: 2 layers, annotation (manifest annotation), verified`,
      );
      expect(text).toContain('upstream MOVED');
      // Live, from the registry: the same answer, found now.
      const live = JSON.parse(await run('--json', 'base', `${registry}/app/web:prod`)) as BaseReport;
      expect(live).toMatchObject({ source: 'live', digest: images.web2.digest });
      expect(live.platforms[0].chain[0]).toMatchObject({
        manifestDigest: images.ruby2.digest,
        verified: true,
        upstream: { moved: false },
      });
    });
  });

  describe('other ways to find a base', () => {
    it('finds a configured candidate when nothing is annotated', async () => {
      images.api = await layout.image({ name: 'api', layers: [l.rootfs, l['openssl-3.0'], l.app] });
      await push(images.api, 'app/api:1');
      candidates = { 'app/': [`${registry}/base/ruby:2.7`] };
      const r = await snapshot('app/api:1');
      expect(baseRecordOf(r.record)!.platforms[0].chain).toEqual([
        expect.objectContaining({
          reference: `${registry}/base/ruby:2.7`,
          manifestDigest: images.ruby2.digest,
          method: 'candidate',
          verified: true,
          layers: 2,
        }),
      ]);
    });

    it('falls back to the layers shared with the previous push', async () => {
      images.worker1 = await layout.image({ name: 'worker-1', layers: [l.w0, l.w1] });
      await push(images.worker1, 'app/worker:1');
      const first = await snapshot('app/worker:1');
      expect(baseRecordOf(first.record)!.platforms[0].chain).toEqual([]);
      images.worker2 = await layout.image({ name: 'worker-2', layers: [l.w0, l.w2] });
      await push(images.worker2, 'app/worker:1');
      await snapshot('app/worker:1');
      expect(await chainOf('app/worker', images.worker2.digest)).toEqual([
        expect.objectContaining({
          reference: `app/worker@${images.worker1.digest}`,
          manifestDigest: images.worker1.digest,
          method: 'previous-push',
          verified: true,
          layers: 1,
        }),
      ]);
    });

    it('records a false annotation as not verified', async () => {
      images.liar = await layout.image({
        name: 'liar',
        layers: [l.w1, l.app],
        annotations: { [BASE_NAME]: `${registry}/base/ruby:2.7`, [BASE_DIGEST]: images.ruby2.digest },
      });
      await push(images.liar, 'app/liar:1');
      const r = await snapshot('app/liar:1');
      const [p] = baseRecordOf(r.record)!.platforms;
      expect(p.chain).toEqual([]);
      expect(p.rejected).toEqual([
        expect.objectContaining({
          reference: `${registry}/base/ruby:2.7`,
          manifestDigest: images.ruby2.digest,
          verified: false,
          method: 'annotation',
        }),
      ]);
    });

    it('follows a chain: app → internal base → ruby', async () => {
      const label = { [BASE_NAME]: `${registry}/base/ruby:2.7`, [BASE_DIGEST]: images.ruby2.digest };
      images.internal = await layout.image({
        name: 'internal',
        layers: [l.rootfs, l['openssl-3.0'], l.internal],
        labels: label,
      });
      await push(images.internal, 'base/internal:1');
      images.chained = await layout.image({
        name: 'chained',
        layers: [l.rootfs, l['openssl-3.0'], l.internal, l['chain-app']],
        labels: label, // inherited from the internal base, as docker does
        annotations: { [BASE_NAME]: `${registry}/base/internal:1`, [BASE_DIGEST]: images.internal.digest },
      });
      await push(images.chained, 'team/chained:1');
      await snapshot('team/chained:1');
      expect(
        (await chainOf('team/chained', images.chained.digest)).map((b) => [
          b.reference,
          b.layers,
          b.evidence,
          b.verified,
        ]),
      ).toEqual([
        [`${registry}/base/internal:1`, 3, 'manifest annotation', true],
        [`${registry}/base/ruby:2.7`, 2, 'config label', true],
      ]);
    });

    it('detects each platform of a multi-arch app on a multi-arch base', async () => {
      const rubyAmd = await layout.image({ layers: [l.rootfs, l['openssl-3.0']], platform: amd64 });
      const rubyArm = await layout.image({ layers: [l['arm-rootfs'], l['arm-openssl']], platform: arm64 });
      images.rubyMulti = await layout.index({ name: 'ruby-multi', manifests: [rubyAmd, rubyArm] });
      await push(images.rubyMulti, 'base/ruby-multi:2.7');
      const claim = {
        [BASE_NAME]: `${registry}/base/ruby-multi:2.7`,
        [BASE_DIGEST]: images.rubyMulti.digest,
      };
      const appAmd = await layout.image({
        layers: [l.rootfs, l['openssl-3.0'], l.app],
        platform: amd64,
        annotations: claim,
      });
      const appArm = await layout.image({
        layers: [l['arm-rootfs'], l['arm-openssl'], l['arm-app']],
        platform: arm64,
        annotations: claim,
      });
      images.multi = await layout.index({ name: 'multi', manifests: [appAmd, appArm] });
      await push(images.multi, 'app/multi:1');
      const r = await snapshot('app/multi:1');
      expect(
        baseRecordOf(r.record)!.platforms.map((p) => [
          p.platform,
          p.manifestDigest,
          p.chain[0]?.indexDigest,
          p.chain[0]?.manifestDigest,
        ]),
      ).toEqual([
        ['linux/amd64', appAmd.digest, images.rubyMulti.digest, rubyAmd.digest],
        ['linux/arm64', appArm.digest, images.rubyMulti.digest, rubyArm.digest],
      ]);
      // upstream for an index base compares the index digest
      const report = await baseReport(vault, registries, 'app/multi:1');
      expect(report.platforms.map((p) => p.chain[0].upstream)).toEqual([
        { digest: images.rubyMulti.digest, recorded: images.rubyMulti.digest, moved: false },
        { digest: images.rubyMulti.digest, recorded: images.rubyMulti.digest, moved: false },
      ]);
    });
  });
});
