/**
 * Restore into ECR, with ECR's two planes split: the control plane (DescribeRepositories, CreateRepository) is
 * mocked with aws-sdk-client-mock, the data plane is a real registry from the test bed standing in for ECR, and
 * skopeo is the independent oracle for what the registry ends up serving.
 */
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  ECRServiceException,
  RepositoryNotFoundException,
} from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrRepositories } from '../../lib/aws/ecr-repositories';
import type { Vault } from '../../lib/content';
import { openVault } from '../../lib/content/open';
import { Reference } from '../../lib/oci';
import { Repository } from '../../lib/registry';
import { Registries, Restorer, TagConflictError } from '../../lib/services';
import { BulkRestorer } from '../../lib/services/bulk-restore';
import {
  pushManifest,
  pushStandardFixtures,
  skopeoDigest,
  skopeoInspectRaw,
  type PushedFixtures,
} from '../../fixtures';
import { startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const ecr = mockClient(ECRClient);

const notFound = () => new RepositoryNotFoundException({ message: 'does not exist', $metadata: {} });

/** The mocked control plane's view: which repositories exist, and with which tag mutability. */
function controlPlane(repos: Record<string, 'MUTABLE' | 'IMMUTABLE'>): void {
  ecr.reset();
  ecr.on(DescribeRepositoriesCommand).callsFake((input: { repositoryNames: string[] }) => {
    const name = input.repositoryNames[0];
    if (!(name in repos)) throw notFound();
    return { repositories: [{ repositoryName: name, imageTagMutability: repos[name] }] };
  });
  ecr
    .on(CreateRepositoryCommand)
    .callsFake((input: { repositoryName: string; imageTagMutability: string }) => {
      repos[input.repositoryName] = input.imageTagMutability as 'MUTABLE';
      return {
        repository: { repositoryName: input.repositoryName, imageTagMutability: input.imageTagMutability },
      };
    });
}

const created = () => ecr.commandCalls(CreateRepositoryCommand).map((c) => c.args[0].input.repositoryName);

describe('restore into ECR (control plane mocked, data plane a real registry)', () => {
  let fx: PushedFixtures;
  let store: string;
  let vault: Vault;
  /** The registry standing in for <account>.dkr.ecr.<region>.amazonaws.com. */
  let ecrHost: string;
  let restorer: Restorer;
  const tagPuts = jest.spyOn(Repository.prototype, 'pushManifest');

  beforeAll(async () => {
    const source = startRegistry(`ecr-src-${Date.now()}`);
    fx = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'recr' });
    store = `file://${tempDir('imagevault-ecr-')}`;
    await cliJson('--store', store, 'snapshot', '--all-tags', `${source}/recr/`);
    vault = await openVault(store);
    ecrHost = startRegistry(`ecr-dst-${Date.now()}`);
  });

  beforeEach(() => {
    tagPuts.mockClear();
    // A fresh one per test: EcrRepositories remembers what it found for the rest of its run.
    const repositories = new EcrRepositories({
      locate: (host) => (host === ecrHost ? { account: ACCOUNT, region: REGION } : undefined),
    });
    restorer = new Restorer(vault, new Registries(), { repositories });
  });
  afterAll(() => tagPuts.mockRestore());

  const to = (repoTag: string) => Reference.parse(`${ecrHost}/${repoTag}`);

  it('creates the missing repository, then pushes the image under its tag (one manifest PUT)', async () => {
    controlPlane({});
    const r = await restorer.restore({ repository: fx.multiLayer.repo, tag: '1', to: to('app:1.4') });
    expect(created()).toEqual(['app']);
    expect(ecr.commandCalls(CreateRepositoryCommand)[0].args[0].input).toEqual({
      registryId: ACCOUNT,
      repositoryName: 'app',
      imageTagMutability: 'MUTABLE',
    });
    expect(r.repository).toMatchObject({ created: true, immutableTags: false });
    expect(r.tag).toEqual({ name: '1.4', action: 'set' });
    expect(r.verifiedDigest).toBe(fx.multiLayer.digest);
    expect(await skopeoInspectRaw(`${ecrHost}/app:1.4`)).toEqual(fx.multiLayer.manifestBytes);
    expect(tagPuts.mock.calls.map((c) => c[0])).toEqual(['1.4']);
  });

  it('on an immutable repository whose tag already names the image: no tag PUT, success', async () => {
    controlPlane({ app: 'IMMUTABLE' });
    const r = await restorer.restore({ repository: fx.multiLayer.repo, tag: '1', to: to('app:1.4') });
    expect(created()).toEqual([]);
    expect(r.repository).toMatchObject({ created: false, immutableTags: true });
    expect(r.tag).toEqual({ name: '1.4', action: 'unchanged' });
    expect(r.verifiedDigest).toBe(fx.multiLayer.digest);
    expect(tagPuts).not.toHaveBeenCalled();
  });

  it('on an immutable repository whose tag names another image: stops, pushes nothing, --force or not', async () => {
    controlPlane({ app: 'IMMUTABLE' });
    for (const force of [false, true]) {
      const p = restorer.restore({ repository: fx.docker.repo, tag: '1', to: to('app:1.4'), force });
      await expect(p).rejects.toBeInstanceOf(TagConflictError);
      await expect(p).rejects.toThrow(
        `app:1.4 in ${ecrHost} is immutable and points to ${fx.multiLayer.digest}; the vault's is ${fx.docker.digest}` +
          ` — restore under another tag with --to ${ecrHost}/app:TAG or by digest with --to ${ecrHost}/app@${fx.docker.digest}`,
      );
    }
    expect(tagPuts).not.toHaveBeenCalled();
    expect(await skopeoDigest(`${ecrHost}/app:1.4`)).toBe(fx.multiLayer.digest);
    // The conflict is found before the graph is copied: the other image's manifest is not there either.
    await expect(skopeoInspectRaw(`${ecrHost}/app@${fx.docker.digest}`)).rejects.toThrow(/manifest unknown/);
  });

  it('restores under another tag, or by digest, into the immutable repository', async () => {
    controlPlane({ app: 'IMMUTABLE' });
    const byTag = await restorer.restore({ repository: fx.docker.repo, tag: '1', to: to('app:docker-1') });
    expect(byTag.tag).toEqual({ name: 'docker-1', action: 'set' });
    const byDigest = await restorer.restore({
      repository: fx.plainTar.repo,
      tag: '1',
      to: to(`app@${fx.plainTar.digest}`),
    });
    expect(byDigest.tag).toBeUndefined();
    expect(byDigest.verifiedDigest).toBe(fx.plainTar.digest);
    expect(tagPuts.mock.calls.map((c) => c[0])).toEqual(['docker-1']);
    expect(await skopeoInspectRaw(`${ecrHost}/app@${fx.plainTar.digest}`)).toEqual(fx.plainTar.manifestBytes);
  });

  it('refuses a destination digest that is not the image', async () => {
    controlPlane({ app: 'MUTABLE' });
    await expect(
      restorer.restore({ repository: fx.plainTar.repo, tag: '1', to: to(`app@${fx.docker.digest}`) }),
    ).rejects.toThrow(`the destination names ${fx.docker.digest}, but the image is ${fx.plainTar.digest}`);
  });

  it('on a mutable repository: stops without --force, overwrites with it', async () => {
    controlPlane({ app: 'MUTABLE' });
    await expect(
      restorer.restore({ repository: fx.docker.repo, tag: '1', to: to('app:1.4') }),
    ).rejects.toThrow(
      `app:1.4 in ${ecrHost} points to ${fx.multiLayer.digest}; the vault's is ${fx.docker.digest} — overwrite it with --force`,
    );
    expect(await skopeoDigest(`${ecrHost}/app:1.4`)).toBe(fx.multiLayer.digest);
    const r = await restorer.restore({
      repository: fx.docker.repo,
      tag: '1',
      to: to('app:1.4'),
      force: true,
    });
    expect(r.tag).toEqual({ name: '1.4', action: 'overwritten', previous: fx.multiLayer.digest });
    expect(await skopeoInspectRaw(`${ecrHost}/app:1.4`)).toEqual(fx.docker.manifestBytes);
  });

  it('a tag that moves elsewhere while the graph copies stops the restore, and the image is there by digest', async () => {
    controlPlane({ app: 'MUTABLE' });
    // Prepare: the other image is in the repository already, so its manifest can be put under the tag mid-copy
    await restorer.restore({ repository: fx.docker.repo, tag: '1', to: to('app:other') });
    // The tag is read twice: before the copy (absent), and again before it is set, which is when it has moved.
    const resolve = Repository.prototype.resolve;
    let reads = 0;
    const spy = jest.spyOn(Repository.prototype, 'resolve').mockImplementation(async function (
      this: Repository,
      reference: string,
    ) {
      if (reference === 'race' && ++reads === 2)
        await pushManifest(ecrHost, 'app', 'race', fx.docker.mediaType, fx.docker.manifestBytes);
      return resolve.call(this, reference);
    });
    try {
      const moving = restorer.restore({ repository: fx.withEmptyLayer.repo, tag: '1', to: to('app:race') });
      // Act / Assess
      await expect(moving).rejects.toThrow(
        `app:race in ${ecrHost} points to ${fx.docker.digest}; the vault's is ${fx.withEmptyLayer.digest}`,
      );
      expect(await skopeoDigest(`${ecrHost}/app:race`)).toBe(fx.docker.digest);
      expect(await skopeoInspectRaw(`${ecrHost}/app@${fx.withEmptyLayer.digest}`)).toEqual(
        fx.withEmptyLayer.manifestBytes,
      );
      expect(reads).toBe(2);
    } finally {
      // A failure here must not leave every later test's tag reads racing.
      spy.mockRestore();
    }
  });

  it('a dry run describes the repository and creates nothing', async () => {
    controlPlane({});
    const r = await restorer.restore({
      repository: fx.index.repo,
      tag: '1',
      to: to('dry/index:1'),
      dryRun: true,
    });
    expect(r.dryRun).toBe(true);
    expect(r.repository).toMatchObject({ created: true });
    expect(r.tag).toEqual({ name: '1', action: 'set' });
    expect(ecr.commandCalls(DescribeRepositoriesCommand)).toHaveLength(1);
    expect(created()).toEqual([]);
    await expect(skopeoInspectRaw(`${ecrHost}/dry/index:1`)).rejects.toThrow();
  });

  it('stops naming the action and the repository when CreateRepository is denied, and pushes nothing', async () => {
    ecr.reset();
    ecr.on(DescribeRepositoriesCommand).rejects(notFound());
    ecr.on(CreateRepositoryCommand).rejects(
      new ECRServiceException({
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'User: arn:aws:sts::123456789012:assumed-role/oncall/x is not authorized',
      }),
    );
    await expect(
      restorer.restore({ repository: fx.index.repo, tag: '1', to: to('denied/index:1') }),
    ).rejects.toThrow(
      `ecr:CreateRepository on arn:aws:ecr:${REGION}:${ACCOUNT}:repository/denied/index was denied`,
    );
    await expect(skopeoInspectRaw(`${ecrHost}/denied/index@${fx.index.digest}`)).rejects.toThrow();
  });

  it('bulk restore creates every repository once and restores each image into it', async () => {
    controlPlane({});
    const host = startRegistry(`ecr-bulk-${Date.now()}`);
    const repositories = new EcrRepositories({
      locate: (h) => (h === host ? { account: ACCOUNT, region: REGION } : undefined),
    });
    const bulk = new BulkRestorer(vault, new Restorer(vault, new Registries(), { repositories }));
    const s = await bulk.restore({ to: host, prefix: 'recr' });
    expect(s.failed).toEqual([]);
    const repos = [
      fx.docker,
      fx.index,
      fx.multiLayer,
      fx.plainTar,
      fx.shared[0],
      fx.shared[1],
      fx.withEmptyLayer,
    ]
      .map((i) => i.repo)
      .sort();
    expect(created().sort()).toEqual(repos);
    expect(s.repositoriesCreated).toEqual(repos.map((r) => `${host}/${r}`));
    for (const img of [fx.multiLayer, fx.index, fx.shared[1]]) {
      expect(await skopeoInspectRaw(`${host}/${img.repo}:1`)).toEqual(img.manifestBytes);
    }
  });
});

describe('the tag rule through the CLI, on any registry', () => {
  let fx: PushedFixtures;
  let store: string;
  let dest: string;

  beforeAll(async () => {
    const source = startRegistry(`tagrule-src-${Date.now()}`);
    fx = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'rule' });
    store = `file://${tempDir('imagevault-rule-')}`;
    await cliJson('--store', store, 'snapshot', fx.multiLayer.ref, fx.docker.ref);
    dest = startRegistry(`tagrule-dst-${Date.now()}`);
  });

  it('sets an absent tag, leaves an equal one, stops on a different one, overwrites with --force', async () => {
    const first = await cliJson<{ tag: { action: string } }>(
      '--store',
      store,
      'restore',
      `${fx.multiLayer.repo}:1`,
      '--to',
      `${dest}/app:1.4`,
    );
    expect(first.tag.action).toBe('set');
    const again = await cli(
      '--store',
      store,
      'restore',
      `${fx.multiLayer.repo}:1`,
      '--to',
      `${dest}/app:1.4`,
    );
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/tag 1\.4 already there/);

    const conflict = await cli('--store', store, 'restore', `${fx.docker.repo}:1`, '--to', `${dest}/app:1.4`);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain(
      `imagevault: restore ${fx.docker.repo}:1: app:1.4 in ${dest} points to ${fx.multiLayer.digest}; the vault's is ${fx.docker.digest} — overwrite it with --force`,
    );
    expect(await skopeoDigest(`${dest}/app:1.4`)).toBe(fx.multiLayer.digest);

    const forced = await cliJson<{ tag: { action: string; previous: string }; verifiedDigest: string }>(
      '--store',
      store,
      'restore',
      `${fx.docker.repo}:1`,
      '--to',
      `${dest}/app:1.4`,
      '--force',
    );
    expect(forced.tag).toEqual({ name: '1.4', action: 'overwritten', previous: fx.multiLayer.digest });
    expect(forced.verifiedDigest).toBe(fx.docker.digest);
    expect(await skopeoInspectRaw(`${dest}/app:1.4`)).toEqual(fx.docker.manifestBytes);
  });

  it.each([
    [['restore', '--to', 'x.io'], /restore needs an image/],
    [['restore', 'app:1', '--all', '--to', 'x.io'], /restore --all takes no image/],
    [['restore', 'app:1', '--to', 'x.io/app:1', '--prefix', 'team'], /--prefix goes with --all/],
    [['restore', '--all', '--to', 'x.io', '--parallel', '0'], /positive whole number/],
  ])('exits 2 on bad input: %j', async (args, message) => {
    const r = await cli('--store', store, ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
