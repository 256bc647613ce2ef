import {
  claimFromAnnotations,
  claimFromProvenance,
  detectBase,
  parseDockerPurl,
} from '../../../lib/drift/base';
import { MAX_BLOB_BYTES, VaultFirstSource } from '../../../lib/drift/source';
import { blobKey } from '../../../lib/content';
import { Digest, Reference } from '../../../lib/oci';
import { LayoutBuilder, type BuiltImage, type Layer } from '../../../fixtures';
import { descOf, tempDir, tempVault } from '../helpers';
import { LayoutSource, buildkitIndex, provenanceStatement } from './layout-source';

const REG = 'registry.test';
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const hex = (d: string) => Digest.parse(d).hex;

describe('Module: drift/base', () => {
  let layout: LayoutBuilder;
  let source: LayoutSource;
  let l: Record<string, Layer>;
  let ruby: BuiltImage;
  let rubyArm: BuiltImage;

  const layer = (seed: string) => layout.layer({ sizeBytes: 64, seed });
  const history = (...steps: string[]) => steps.map((created_by) => ({ created_by }));

  beforeEach(async () => {
    layout = new LayoutBuilder(tempDir('imagevault-drift-'));
    source = new LayoutSource(layout);
    l = {};
    for (const s of ['rootfs', 'openssl', 'internal', 'app', 'other', 'arm-rootfs', 'arm-app'])
      l[s] = await layer(s);
    ruby = await layout.image({
      layers: [l.rootfs, l.openssl],
      history: history('ADD rootfs', 'RUN apt-get install openssl=1.1'),
    });
    rubyArm = await layout.image({
      layers: [l['arm-rootfs']],
      platform: { os: 'linux', architecture: 'arm64' },
    });
    source.tag(`${REG}/base/ruby:2.7`, ruby);
  });

  describe('Function: detectBase', () => {
    it('takes a verified OCI annotation, with the base’s layer count and history entries', async () => {
      // Prepare
      const app = await layout.image({
        layers: [l.rootfs, l.openssl, l.app],
        history: history('ADD rootfs', 'RUN apt-get install openssl=1.1', 'COPY app'),
        annotations: { [BASE_NAME]: `${REG}/base/ruby:2.7`, [BASE_DIGEST]: ruby.digest },
      });
      // Act
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${app.digest}`));
      // Assess
      expect(r.platforms).toEqual([
        {
          platform: 'linux/amd64',
          manifestDigest: app.digest,
          chain: [
            {
              reference: `${REG}/base/ruby:2.7`,
              repository: `${REG}/base/ruby`,
              manifestDigest: ruby.digest,
              layers: 2,
              method: 'annotation',
              verified: true,
              evidence: 'manifest annotation',
              historyEntries: 2,
            },
          ],
        },
      ]);
    });

    it('records a false annotation as not verified and keeps looking (candidates)', async () => {
      const other = await layout.image({ layers: [l.other] });
      source.tag(`${REG}/base/other:1`, other);
      const app = await layout.image({
        layers: [l.rootfs, l.openssl, l.app],
        annotations: { [BASE_NAME]: `${REG}/base/other:1` },
      });
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${app.digest}`), {
        candidates: { 'app/': [`${REG}/base/ruby:2.7`], 'other/': [`${REG}/base/other:1`] },
      });
      const [p] = r.platforms;
      expect(p.rejected).toEqual([
        expect.objectContaining({
          reference: `${REG}/base/other:1`,
          manifestDigest: other.digest,
          method: 'annotation',
          verified: false,
          reason: expect.stringMatching(/not a strict prefix/),
        }),
      ]);
      expect(p.chain).toEqual([
        expect.objectContaining({ reference: `${REG}/base/ruby:2.7`, method: 'candidate', verified: true }),
      ]);
    });

    it('rejects a claim whose base cannot be read, with the reason', async () => {
      const app = await layout.image({
        layers: [l.rootfs, l.app],
        annotations: { [BASE_NAME]: `${REG}/base/gone:1` },
      });
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${app.digest}`));
      expect(r.platforms[0].chain).toEqual([]);
      expect(r.platforms[0].rejected?.[0]).toMatchObject({
        verified: false,
        reason: expect.stringMatching(/cannot read the base: .*MANIFEST_UNKNOWN/),
      });
    });

    it('reads a BuildKit provenance attestation, skipping the dockerfile frontend, and picks the platform', async () => {
      // Prepare: ruby is a two-platform index, named by tag in the purl and by index digest in the material
      const rubyIndex = await layout.index({
        manifests: [{ ...ruby, platform: { os: 'linux', architecture: 'amd64' } }, rubyArm],
      });
      source.tag(`${REG}/base/ruby:2.7`, rubyIndex);
      const app = await layout.image({ layers: [l.rootfs, l.openssl, l.app] });
      const statement = provenanceStatement(app, {
        materials: [
          { uri: 'pkg:docker/docker/dockerfile@1.7', digest: { sha256: 'a'.repeat(64) } },
          {
            uri: `pkg:docker/${REG}/base/ruby@2.7?platform=linux%2Famd64`,
            digest: { sha256: hex(rubyIndex.digest) },
          },
        ],
      });
      const index = buildkitIndex(layout, [{ image: app, statement }]);
      // Act
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${index.digest}`));
      // Assess: the attestation manifest is not a platform of its own
      expect(r.platforms).toHaveLength(1);
      expect(r.platforms[0].chain).toEqual([
        expect.objectContaining({
          reference: `${REG}/base/ruby:2.7`,
          indexDigest: rubyIndex.digest,
          manifestDigest: ruby.digest,
          method: 'provenance',
          evidence: 'slsa v0.2',
          verified: true,
          layers: 2,
        }),
      ]);
    });

    it('takes the config label unless a nearer candidate shows it was inherited', async () => {
      // internal is built FROM ruby with the label; app FROM internal inherits the label (docker copies labels)
      const label = { [BASE_NAME]: `${REG}/base/ruby:2.7`, [BASE_DIGEST]: ruby.digest };
      const internal = await layout.image({ layers: [l.rootfs, l.openssl, l.internal], labels: label });
      source.tag(`${REG}/base/internal:1`, internal);
      const app = await layout.image({ layers: [l.rootfs, l.openssl, l.internal, l.app], labels: label });
      const ref = Reference.parse(`${REG}/app/web@${app.digest}`);

      const alone = await detectBase(source, ref);
      expect(alone.platforms[0].chain.map((b) => [b.reference, b.evidence])).toEqual([
        [`${REG}/base/ruby:2.7`, 'config label'],
      ]);

      const r = await detectBase(source, ref, { candidates: { app: [`${REG}/base/internal:1`] } });
      const [p] = r.platforms;
      expect(p.chain.map((b) => [b.reference, b.method, b.evidence, b.layers])).toEqual([
        [`${REG}/base/internal:1`, 'candidate', `candidate ${REG}/base/internal:1`, 3],
        [`${REG}/base/ruby:2.7`, 'annotation', 'config label', 2],
      ]);
      expect(p.rejected).toEqual([
        expect.objectContaining({
          evidence: 'config label',
          verified: false,
          reason: expect.stringMatching(/inherited/),
        }),
      ]);
    });

    it('does not take a label the claimed base carries itself', async () => {
      const self = { [BASE_NAME]: `${REG}/base/ruby:2.7` };
      const selfish = await layout.image({ layers: [l.rootfs, l.openssl], labels: self });
      source.tag(`${REG}/base/ruby:2.7`, selfish);
      const app = await layout.image({ layers: [l.rootfs, l.openssl, l.app], labels: self });
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${app.digest}`));
      expect(r.platforms[0].chain).toEqual([]);
      expect(r.platforms[0].rejected?.[0].reason).toMatch(/claimed base carries the same claim/);
    });

    it('falls back to the common prefix with the previous push', async () => {
      const v1 = await layout.image({ layers: [l.rootfs, l.openssl, l.other] });
      const v2 = await layout.image({ layers: [l.rootfs, l.openssl, l.app] });
      const previous = Reference.parse(`${REG}/app/web@${v1.digest}`);
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${v2.digest}`), { previous });
      expect(r.platforms[0].chain).toEqual([
        expect.objectContaining({
          reference: `app/web@${v1.digest}`,
          manifestDigest: v1.digest,
          layers: 2,
          method: 'previous-push',
          verified: true,
        }),
      ]);
    });

    it('follows the chain to its end, and stops at maxDepth', async () => {
      // a → b → c, each naming the next by annotation. (A cycle cannot verify: a base has fewer layers.)
      const c = await layout.image({ layers: [l.rootfs] });
      const b = await layout.image({
        layers: [l.rootfs, l.openssl],
        annotations: { [BASE_NAME]: `${REG}/c:1` },
      });
      source.tag(`${REG}/c:1`, c);
      source.tag(`${REG}/b:1`, b);
      const a = await layout.image({
        layers: [l.rootfs, l.openssl, l.app],
        annotations: { [BASE_NAME]: `${REG}/b:1` },
      });
      const ref = Reference.parse(`${REG}/a@${a.digest}`);
      expect((await detectBase(source, ref)).platforms[0].chain.map((x) => x.reference)).toEqual([
        `${REG}/b:1`,
        `${REG}/c:1`,
      ]);
      expect((await detectBase(source, ref, { maxDepth: 1 })).platforms[0].chain).toHaveLength(1);
    });

    it('asks for each candidate once across platforms, and nothing of the image twice', async () => {
      const amd = await layout.image({ layers: [l.rootfs, l.openssl, l.app] });
      const arm = await layout.image({
        layers: [l['arm-rootfs'], l['arm-app']],
        platform: { os: 'linux', architecture: 'arm64' },
      });
      const rubyIndex = await layout.index({
        manifests: [{ ...ruby, platform: { os: 'linux', architecture: 'amd64' } }, rubyArm],
      });
      source.tag(`${REG}/base/ruby:2.7`, rubyIndex);
      const app = await layout.index({
        manifests: [{ ...amd, platform: { os: 'linux', architecture: 'amd64' } }, arm],
      });
      const r = await detectBase(source, Reference.parse(`${REG}/app/web@${app.digest}`), {
        candidates: { '': [`${REG}/base/ruby:2.7`] },
      });
      expect(r.platforms.map((p) => [p.platform, p.chain[0]?.manifestDigest])).toEqual([
        ['linux/amd64', ruby.digest],
        ['linux/arm64', rubyArm.digest],
      ]);
      expect(source.requests.filter((q) => q.startsWith('resolve'))).toEqual([
        `resolve ${REG}/base/ruby:2.7`,
      ]);
      expect(new Set(source.requests).size).toBe(source.requests.length);
    });
  });

  describe('Function: claimFromProvenance', () => {
    it('reads SLSA v1 resolvedDependencies', () => {
      const claim = claimFromProvenance({
        predicateType: 'https://slsa.dev/provenance/v1',
        predicate: {
          buildDefinition: {
            resolvedDependencies: [
              { uri: 'pkg:docker/ruby@2.7?platform=linux%2Farm64%2Fv8', digest: { sha256: 'b'.repeat(64) } },
            ],
          },
        },
      });
      expect(claim).toEqual({
        name: 'docker.io/library/ruby:2.7',
        digest: `sha256:${'b'.repeat(64)}`,
        platform: 'linux/arm64/v8',
        method: 'provenance',
        evidence: 'slsa v1',
      });
    });
    it('ignores the frontend and non-docker materials, and says nothing without a base', () => {
      expect(
        claimFromProvenance({
          predicateType: 'https://slsa.dev/provenance/v0.2',
          predicate: {
            materials: [
              { uri: 'pkg:docker/docker/dockerfile@1' },
              { uri: 'https://github.com/x/y.git#main' },
            ],
          },
        }),
      ).toBeUndefined();
      expect(claimFromProvenance(null)).toBeUndefined();
    });
  });

  describe('Function: parseDockerPurl', () => {
    it('normalises names and decodes registries with ports', () => {
      expect(parseDockerPurl('pkg:docker/127.0.0.1%3A5000/base/ruby@2.7')?.reference.toString()).toBe(
        '127.0.0.1:5000/base/ruby:2.7',
      );
      expect(parseDockerPurl('pkg:npm/x@1')).toBeUndefined();
    });
  });

  describe('Function: claimFromAnnotations', () => {
    it('needs base.name; base.digest is optional', () => {
      expect(claimFromAnnotations({ [BASE_DIGEST]: 'sha256:x' }, 'e')).toBeUndefined();
      expect(claimFromAnnotations({ [BASE_NAME]: 'ruby:2.7' }, 'e')).toEqual({
        name: 'ruby:2.7',
        method: 'annotation',
        evidence: 'e',
      });
    });
  });
});

describe('Class: VaultFirstSource (memory bound)', () => {
  it('refuses a blob above the limit instead of reading it whole, and still reads one at the limit', async () => {
    // Prepare: a "config" one byte over the limit, and one exactly at it.
    const vault = await tempVault();
    const over = Buffer.alloc(MAX_BLOB_BYTES + 1, 1);
    const at = Buffer.alloc(MAX_BLOB_BYTES, 2);
    const [overDesc, atDesc] = [
      descOf('application/vnd.oci.image.config.v1+json', over),
      descOf('application/vnd.oci.image.config.v1+json', at),
    ];
    await vault.layout.store.putBytes(blobKey(overDesc.digest), over);
    await vault.layout.store.putBytes(blobKey(atDesc.digest), at);
    const source = new VaultFirstSource(vault);
    const ref = Reference.parse('registry.example/app:1');

    // Act / Assess
    await expect(source.blob(ref, overDesc)).rejects.toThrow(
      `${vault.url}: blob ${overDesc.digest} is larger than the 16 MiB that base detection reads into memory`,
    );
    expect((await source.blob(ref, atDesc)).length).toBe(MAX_BLOB_BYTES);
  });
});
