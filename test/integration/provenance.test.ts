/**
 * Provenance against a real registry: the standard fixtures (multiLayer carries a cosign-style signature referrer)
 * pushed with skopeo, snapshotted through the Snapshotter, recorded, then queried through the command.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { cli, cliJson } from './cli-helpers';
import type { ProvenanceListRow, ProvenanceShowReport } from '../../lib/cli/commands/provenance';
import { registerProvenanceCommand } from '../../lib/cli/program';
import { DirectoryObjectStore, type Vault } from '../../lib/content';
import { Reference } from '../../lib/oci';
import { logKey, recordProvenance } from '../../lib/provenance';
import { Registries, Snapshotter, snapshotImage } from '../../lib/services';
import { COSIGN_SIGNATURE_TYPE, pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir, tempVault } from '../unit/helpers';

describe('imagevault provenance (real registry)', () => {
  let registry: string;
  let vault: Vault;
  let registries: Registries;
  let fx: PushedFixtures;

  const run = async (...args: string[]) => {
    let stdout = '';
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
      stdout += c.toString();
      return true;
    });
    const program = new Command('imagevault').exitOverride();
    registerProvenanceCommand(program, async () => ({
      opts: () => ({ store: vault.url, json: false, insecure: false, concurrency: 4 }),
      registries: () => registries,
      vault: async () => vault,
    }));
    process.exitCode = undefined;
    try {
      await program.parseAsync(['node', 'imagevault', ...args]);
      return { stdout, code: Number(process.exitCode ?? 0) };
    } finally {
      process.exitCode = undefined;
      spy.mockRestore();
    }
  };

  beforeAll(async () => {
    registry = startRegistry(`provenance-${Date.now()}`);
    vault = await tempVault();
    registries = new Registries();
    fx = await pushStandardFixtures(registry, tempDir('imagevault-prov-layout-'), { repoPrefix: 'prov' });
    const snap = new Snapshotter(vault, registries);
    for (const img of [fx.multiLayer, fx.index]) {
      const r = await snap.snapshot({ reference: Reference.parse(img.ref) });
      const rec = await recordProvenance(vault, r.repository, r.descriptor.digest, { registry });
      expect(rec.appended).toBe(true);
    }
  });

  afterAll(async () => {
    await registries.get(registry).close();
  });

  it('is idempotent: recording an unchanged image again appends nothing', async () => {
    const again = await recordProvenance(vault, fx.multiLayer.repo, fx.multiLayer.digest, { registry });
    expect(again).toMatchObject({ appended: false, entry: { seq: 1 } });
  });

  it('appends nothing for a re-snapshot that only refreshes the verification time', async () => {
    await new Snapshotter(vault, registries).snapshot({ reference: Reference.parse(fx.multiLayer.ref) });
    const again = await recordProvenance(vault, fx.multiLayer.repo, fx.multiLayer.digest, { registry });
    expect(again).toMatchObject({ appended: false, entry: { seq: 1 } });
  });

  it('appends nothing for a re-snapshot whose base detection found the same base again', async () => {
    // Prepare: a vault of its own, so the other tests still see an image whose base detection never ran
    const own = await tempVault();
    const deps = { vault: own, registries, bases: {} };
    const reference = Reference.parse(fx.multiLayer.ref);
    const first = await snapshotImage(deps, { reference });

    // Act
    const again = await snapshotImage(deps, { reference });

    // Assess
    expect(first.provenance).toMatchObject({ appended: true, entry: { seq: 1 } });
    expect(again.provenance).toMatchObject({ appended: false, entry: { seq: 1 } });
  });

  it('is written by `imagevault snapshot` and read by `imagevault provenance show` (the CLI as shipped)', async () => {
    const store = `file://${tempDir('imagevault-prov-cli-')}`;
    expect((await cli('--store', store, 'snapshot', fx.docker.ref)).code).toBe(0);
    const shown = await cliJson<{
      recorded: boolean;
      statement: ProvenanceShowReport['statement'];
    }>('--store', store, 'provenance', 'show', `${fx.docker.repo}:1`);
    expect(shown.recorded).toBe(true);
    expect(JSON.stringify(shown.statement.subject)).toContain(fx.docker.digest.slice(7));
    // Not ECR: no CloudTrail event will ever come, so the pusher is unknown at once, not pending for a day
    expect(shown.statement.predicate.push).toMatchObject({
      identityStatus: 'unknown',
      reason: `${registry} is not ECR: no CloudTrail PutImage event names who pushed (the registry's own logs might)`,
    });
    expect((await cli('--store', store, 'provenance', 'verify')).code).toBe(0);
  });

  it('show: signed with the cosign signature, base unknown, pusher pending, and where the copy is', async () => {
    const { stdout } = await run('provenance', 'show', `${fx.multiLayer.repo}:1`);
    expect(stdout).toContain(`${fx.multiLayer.repo}@${fx.multiLayer.digest}`);
    expect(stdout).toContain(`signed:    yes: cosign signature ${fx.signature.digest.slice(0, 19)}…`);
    expect(stdout).toMatch(/pushed by: pending: waiting for the CloudTrail ecr:PutImage event/);
    expect(stdout).toContain('source:    https://example.invalid/multi');
    expect(stdout).toContain('commit:    unknown (no org.opencontainers.image.revision');
    expect(stdout).toContain('base:      unknown: base detection did not run');
    expect(stdout).toContain('built by:  unknown: no SLSA provenance attestation in the image');
    expect(stdout).toContain('scanned:   unknown:');
    expect(stdout).toContain(`copy:      ${vault.url} blobs/sha256/${fx.multiLayer.digest.slice(7)}`);
    expect(stdout).toContain('(this store keeps no versions)');
    expect(stdout).toContain(
      'replica:   not-replicated: this store has no replication (a directory or an unversioned bucket)',
    );

    const json = JSON.parse(
      (await run('provenance', 'show', '--json', `${fx.multiLayer.repo}@${fx.multiLayer.digest}`)).stdout,
    ) as ProvenanceShowReport;
    expect(json).toMatchObject({ recorded: true, entry: { seq: 1 }, identity: { status: 'pending' } });
    expect(json.statement.subject).toEqual([
      { name: `${registry}/${fx.multiLayer.repo}`, digest: { sha256: fx.multiLayer.digest.slice(7) } },
    ]);
    expect(json.statement.predicate.referrers).toEqual([
      expect.objectContaining({
        digest: fx.signature.digest,
        artifactType: COSIGN_SIGNATURE_TYPE,
        kind: 'signature',
      }),
    ]);
    expect(json.statement.predicate.image.platforms).toEqual(['linux/amd64']);
    expect(json.statement.predicate.image.labels).toMatchObject({
      'org.opencontainers.image.title': 'multi',
    });
  });

  it('list: --unsigned, --repo and --since filter', async () => {
    const list = async (...args: string[]) =>
      (
        JSON.parse((await run('provenance', 'list', '--json', ...args)).stdout) as {
          images: ProvenanceListRow[];
        }
      ).images;
    expect((await list()).map((r) => r.repository).sort()).toEqual(
      [fx.index.repo, fx.multiLayer.repo].sort(),
    );
    expect((await list('--unsigned')).map((r) => r.repository)).toEqual([fx.index.repo]);
    expect((await list('--repo', fx.multiLayer.repo)).map((r) => r.signed)).toEqual([true]);
    expect(await list('--since', '2999-01-01T00:00:00Z')).toEqual([]);
    expect(await list('--pushed-by', 'arn:aws:iam::')).toEqual([]);
    expect((await run('provenance', 'list', '--unsigned')).stdout).toContain('UNSIGNED');
  });

  it('verify: exit 0 on an intact chain, 4 naming the entry once one is edited', async () => {
    const ok = await run('provenance', 'verify');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      new RegExp(
        `${fx.multiLayer.repo}: 1 entries, chain intact, versions not checked: this store keeps none; head [0-9a-f]{64}`,
      ),
    );
    // Tamper with the directory vault's file directly
    const key = logKey(fx.multiLayer.repo, 1);
    const file = path.join((vault.store as DirectoryObjectStore).root, ...key.split('/'));
    const entry = JSON.parse(readFileSync(file, 'utf8')) as {
      statement: { predicate: { push: { tags: string[] } } };
    };
    entry.statement.predicate.push.tags = ['forged'];
    writeFileSync(file, JSON.stringify(entry, null, 2));
    const bad = await run('provenance', 'verify', fx.multiLayer.repo);
    expect(bad.code).toBe(4);
    expect(bad.stdout).toContain('CHAIN BROKEN');
    expect(bad.stdout).toContain(`edited: ${key}`);
  });
});
