import { Command, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';
import type { Vault } from '../content';
import { openVault } from '../content/open';
import { Reference, validateRepository } from '../oci';
import { dockerConfigCredentials, type CredentialProvider } from '../registry';
import {
  Registries,
  Restorer,
  Snapshotter,
  exportOciLayout,
  verifyVault,
  type RepositoryControl,
  type SnapshotResult,
} from '../services';
import {
  BulkRestorer,
  DEFAULT_PARALLEL,
  type BulkOutcome,
  type BulkRestoreSummary,
} from '../services/bulk-restore';
import type { CopyEvent } from '../copy';
import { createBulkProgress, createProgress } from './progress';
import { parseVaultRef } from './vault-ref';

export { parseVaultRef };
import { registerBaseCommand } from './commands/base';
import type { CommandContext } from './commands/context';
import { registerDriftCommand } from './commands/drift';
import { registerProvenanceCommand } from './commands/provenance';
import { recordProvenance } from '../provenance';
import { snapshotBaseDetector } from '../drift/base';
import { compareWithPrevious, type BuildDrift } from '../drift/build-drift';

type DockerArchiveModule = typeof import('../services/docker-archive');
type EcrAuthModule = typeof import('../aws/ecr-auth');
type EcrRepositoriesModule = typeof import('../aws/ecr-repositories');

/**
 * A cheap first look at a host: only names containing `.dkr.ecr` can be ECR, and only for those is the ECR module
 * (and the AWS SDK, ~0.4 s to load) required; its isEcrRegistry then gives the exact answer.
 */
const mayBeEcr = (host: string) => host.toLowerCase().includes('.dkr.ecr');

function ecrAuth(): EcrAuthModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../aws/ecr-auth') as EcrAuthModule;
}

function isEcrHost(host: string): boolean {
  return mayBeEcr(host) && ecrAuth().isEcrRegistry(host) !== undefined;
}

/** docker's config.json for every registry, and GetAuthorizationToken (standard AWS chain) for ECR registries. */
function registryCredentials(): CredentialProvider {
  const docker = dockerConfigCredentials();
  let ecr: CredentialProvider | undefined;
  return (registry) => {
    if (!mayBeEcr(registry)) return docker(registry);
    ecr ??= ecrAuth().ecrCredentials({ fallback: docker });
    return ecr(registry);
  };
}

/** ECR's control plane (DescribeRepositories, CreateRepository) for an ECR destination; nothing for others. */
function repositoryControl(registry: string): RepositoryControl | undefined {
  if (!isEcrHost(registry)) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { EcrRepositories } = require('../aws/ecr-repositories') as EcrRepositoriesModule;
  return new EcrRepositories();
}

/** Bad input found inside a command (after commander's own parsing): exit code 2, the message as it is. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes, so scripts can tell a failure from a finding. */
export const ExitCode = { Ok: 0, Failed: 1, Usage: 2, Drift: 3, VerifyFailed: 4 } as const;

const DEFAULT_STORE = () => process.env.IMAGEVAULT_STORE ?? `file://${path.resolve('.imagevault/store')}`;

interface GlobalOptions {
  store: string;
  json: boolean;
  insecure: boolean;
  concurrency: number;
  progress: boolean;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

function time(v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new InvalidArgumentError(`"${v}" is not a time (use ISO 8601, e.g. 2026-11-23T12:00:00Z)`);
  return d;
}

function out(opts: GlobalOptions, data: unknown, human: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

interface RestoreCommandOptions {
  to: string;
  at?: Date;
  dryRun: boolean;
  force: boolean;
  all: boolean;
  prefix?: string;
  parallel?: number;
}

function tagWords(action: 'set' | 'unchanged' | 'overwritten', dryRun: boolean): string {
  if (action === 'unchanged') return 'already there';
  if (action === 'set') return dryRun ? 'would be set' : 'set';
  return dryRun ? 'would be overwritten' : 'overwritten';
}

function bulkLine(image: string, destination: string, outcome: BulkOutcome, dryRun: boolean): string {
  if (outcome.status === 'failed') return `${image}: FAILED: ${outcome.error}`;
  if (outcome.status === 'skipped') return `${image} → ${destination}: already there`;
  const c = outcome.result.copy;
  return `${image} → ${destination}: ${dryRun ? 'would copy' : 'copied'} ${c.blobs.copied} blobs (${mib(c.bytes.copied)}), ${c.blobs.mounted} mounted, ${c.blobs.skipped} present`;
}

function bulkSummaryText(s: BulkRestoreSummary): string {
  const lines = [
    ...s.restored.map(
      (r) =>
        `${s.dryRun ? 'would restore' : 'restored'}\t${r.image}\t${r.destination}\t${r.digest}\ttag ${r.tag}`,
    ),
    ...s.skipped.map((r) => `skipped\t${r.image}\t${r.destination}\t${r.digest}\talready there`),
    ...s.deleted.map(
      (r) =>
        `deleted\t${r.image}\tdeleted at ${r.deletedAt}; restored the push of ${r.observedAt} (${r.digest})`,
    ),
    ...s.repositoriesCreated.map((r) => `${s.dryRun ? 'would create' : 'created'}\t${r}`),
    ...s.failed.map((f) => `FAILED\t${f.image}: ${f.error}`),
    `${s.dryRun ? 'dry run: would restore' : 'restored'} ${s.images.restored}, skipped ${s.images.skipped} (already there), failed ${s.images.failed}, of ${s.images.total} images into ${s.destination}: ` +
      `${s.blobs.copied} blobs copied (${mib(s.bytes.copied)}), ${s.blobs.mounted} shared layers mounted, ${s.blobs.skipped} present, ${s.seconds.toFixed(1)} s`,
  ];
  if (s.notYetPushed.length > 0) lines.push(`not yet pushed at ${s.at}: ${s.notYetPushed.join(' ')}`);
  return lines.join('\n');
}

export function buildProgram(): Command {
  const program = new Command('imagevault')
    .description('Snapshot container images bit-for-bit, restore them, export them, verify the vault.')
    .addOption(
      new Option('--store <url>', 'vault: file:///path or s3://bucket/prefix')
        .env('IMAGEVAULT_STORE')
        .default(DEFAULT_STORE()),
    )
    .option('--json', 'machine-readable output on stdout', false)
    .option('--insecure', 'allow plain HTTP and unverified TLS for non-loopback registries', false)
    .option('--concurrency <n>', 'blobs transferred at once', positiveInt, 4)
    .option('--no-progress', 'no progress display on stderr')
    .showHelpAfterError()
    .exitOverride();

  const ctx = () => {
    const opts = program.opts<GlobalOptions>();
    const registries = new Registries({ insecure: opts.insecure, credentials: registryCredentials() });
    const mode: 'bars' | 'lines' | 'none' =
      !opts.progress || opts.json ? 'none' : process.stderr.isTTY ? 'bars' : 'lines';
    return { opts, registries, mode, progress: createProgress(mode) };
  };
  const vaultOf = (opts: GlobalOptions): Promise<Vault> => openVault(opts.store);

  program
    .command('snapshot')
    .description(
      'copy images (REPO:TAG, REPO@DIGEST, or a repository prefix ending in / or *) into the vault',
    )
    .argument('<ref...>', 'registry/repository[:tag|@digest]')
    .option('--all-tags', 'every tag of each repository named', false)
    .option(
      '--candidate <ref>',
      'a base image to test by layer prefix when an image does not say what it is built on (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--no-base', 'skip base detection and the build-drift check')
    .action(async (refs: string[], cmd: { allTags: boolean; candidate: string[]; base: boolean }) => {
      const { opts, registries, progress } = ctx();
      const vault = await vaultOf(opts);
      // One snapshotter for the run; progress events go to the bar of the image being copied.
      const sinks = new Map<string, (e: CopyEvent) => void>();
      const snap = new Snapshotter(vault, registries, {
        concurrency: opts.concurrency,
        onEvent: (ref, e) => sinks.get(ref.toString())?.(e),
        ...(cmd.base && {
          detectBase: snapshotBaseDetector(vault, registries, { candidates: { '': cmd.candidate } }),
        }),
      });
      const drifts: BuildDrift[] = [];
      const targets: Reference[] = [];
      for (const r of refs) targets.push(...(await snap.expand(r, cmd.allTags)));
      if (targets.length === 0) throw new Error(`nothing to snapshot: ${refs.join(' ')} names no image`);
      const results: SnapshotResult[] = [];
      const failures: { reference: string; error: string }[] = [];
      for (const ref of targets) {
        const label = ref.toString();
        sinks.set(label, progress.image(label));
        try {
          const r = await snap.snapshot({ reference: ref });
          results.push(r);
          // The provenance record: appended when something about the image is new (first snapshot, a new tag).
          await recordProvenance(vault, r.repository, r.descriptor.digest, {
            registry: ref.registry,
            cloudTrail: isEcrHost(ref.registry),
            push: {
              time: r.observation?.observedAt ?? r.record?.firstSnapshotAt ?? new Date().toISOString(),
              tags: r.tag ? [r.tag] : [],
            },
          });
          // A tag that moved onto another digest of the same base is build drift: say so next to the snapshot.
          if (r.tag && r.observation && r.record) {
            drifts.push(...(await compareWithPrevious(vault, r.repository, r.tag, r.record)));
          }
          progress.done(
            label,
            `${label} → ${r.descriptor.digest.slice(0, 19)}…: ${r.copy.blobs.copied} blobs copied (${mib(r.copy.bytes.copied)}), ${r.copy.blobs.skipped} present, ${r.copy.referrers.length} referrers, ${r.copy.seconds.toFixed(1)} s`,
          );
        } catch (e) {
          failures.push({ reference: label, error: (e as Error).message });
          progress.done(label, `${label}: FAILED: ${(e as Error).message}`);
        }
      }
      await vault.writeLayoutIndex();
      progress.stop();
      out(opts, { store: vault.url, snapshots: results, failures, buildDrift: drifts }, () =>
        [
          ...results.map(
            (r) =>
              `${r.reference}\t${r.copy.blobs.copied} copied\t${r.copy.blobs.skipped} skipped\t${r.copy.bytes.copied} bytes\t${r.copy.seconds.toFixed(2)} s`,
          ),
          ...failures.map((f) => `FAILED ${f.reference}: ${f.error}`),
          ...drifts.map(
            (d) =>
              `BUILD DRIFT ${d.repository}:${d.tag} (${d.platform}): base ${d.current.base.reference ?? '?'} was ` +
              `${d.previous.base.manifestDigest.slice(0, 19)}…, now ${d.current.base.manifestDigest.slice(0, 19)}…; ` +
              `base layers changed at ${d.layers.map((c) => c.position).join(', ') || '(none)'}` +
              (d.history.diff.some((l) => l[0] !== ' ')
                ? `\n${d.history.diff
                    .filter((l) => l[0] !== ' ')
                    .map((l) => `    ${l}`)
                    .join('\n')}`
                : ''),
          ),
        ].join('\n'),
      );
      if (failures.length > 0) process.exitCode = ExitCode.Failed;
    });

  program
    .command('list')
    .description('repositories in the vault, or the tags and images of one')
    .argument('[repository]')
    .action(async (repository?: string) => {
      const { opts } = ctx();
      const vault = await vaultOf(opts);
      if (!repository) {
        const repos = await vault.repositories();
        out(
          opts,
          { store: vault.url, repositories: repos },
          () => repos.join('\n') || '(the vault is empty)',
        );
        return;
      }
      validateRepository(repository);
      const tags: { tag: string; digest: string; action: string; observedAt: string }[] = [];
      for (const tag of await vault.tags(repository)) {
        const last = (await vault.history(repository, tag)).pop();
        if (last)
          tags.push({
            tag,
            digest: last.descriptor.digest,
            action: last.action,
            observedAt: last.observedAt,
          });
      }
      const images = (await vault.images(repository)).map((i) => ({
        digest: i.descriptor.digest,
        mediaType: i.descriptor.mediaType,
        bytes: i.bytes,
        referrers: i.referrers.length,
        lastSnapshotAt: i.lastSnapshotAt,
      }));
      out(opts, { store: vault.url, repository, tags, images }, () =>
        [
          ...tags.map(
            (t) =>
              `${repository}:${t.tag}\t${t.digest}\t${t.observedAt}${t.action === 'delete' ? '\t(deleted)' : ''}`,
          ),
          ...images.map(
            (i) =>
              `${repository}@${i.digest}\t${mib(i.bytes)}\t${i.referrers} referrers\tsnapshot ${i.lastSnapshotAt}`,
          ),
        ].join('\n'),
      );
    });

  program
    .command('history')
    .description('every digest a tag has pointed to, oldest first')
    .argument('<repo:tag>')
    .action(async (spec: string) => {
      const { opts } = ctx();
      const ref = parseVaultRef(spec);
      if (!ref.tag) throw new UsageError(`history needs REPO:TAG, got "${spec}"`);
      const vault = await vaultOf(opts);
      const entries = await vault.history(ref.repository, ref.tag);
      out(opts, { repository: ref.repository, tag: ref.tag, history: entries }, () =>
        entries.length === 0
          ? `${ref.repository}:${ref.tag} has no history in ${vault.url}`
          : entries
              .map(
                (e) =>
                  `${e.observedAt}\t${e.action}\t${e.descriptor.digest}\t${e.source.kind}${e.source.detail ? ` ${e.source.detail}` : ''}`,
              )
              .join('\n'),
      );
    });

  program
    .command('restore')
    .description(
      'push an image from the vault into a registry, bit-for-bit, and verify it; with --all, every image of the vault',
    )
    .argument('[image]', 'REPO:TAG or REPO@DIGEST as snapshotted (not with --all)')
    .requiredOption('--to <ref>', 'destination registry/repository[:tag]; with --all, REGISTRY[/NAMESPACE]')
    .option('--at <time>', 'the image the tag pointed to at this time', time)
    .option('--dry-run', 'show what would be copied, push nothing', false)
    .option(
      '--force',
      'move a destination tag that points at another image (mutable repositories only)',
      false,
    )
    .option('--all', 'every repository:tag of the vault, into REGISTRY/<repository>:<tag>', false)
    .option('--prefix <path>', 'with --all: only repositories under this path (team, team/, or team/ap*)')
    .option(
      '--parallel <n>',
      `with --all: images restored at once (default ${DEFAULT_PARALLEL})`,
      positiveInt,
    )
    .action(async (spec: string | undefined, cmd: RestoreCommandOptions) => {
      if (cmd.all) {
        if (spec !== undefined) throw new UsageError(`restore --all takes no image, got "${spec}"`);
        await restoreAll(cmd);
        return;
      }
      if (spec === undefined)
        throw new UsageError('restore needs an image (REPO:TAG or REPO@DIGEST), or --all');
      for (const [flag, given] of [
        ['--prefix', cmd.prefix],
        ['--parallel', cmd.parallel],
      ] as const) {
        if (given !== undefined) throw new UsageError(`${flag} goes with --all`);
      }
      const { opts, registries, progress } = ctx();
      const src = parseVaultRef(spec);
      let to = Reference.parse(cmd.to);
      if (!to.tag && !to.digest && src.tag) to = to.withTag(src.tag);
      const vault = await vaultOf(opts);
      const label = `${spec} → ${to.toString()}`;
      const restorer = new Restorer(vault, registries, {
        concurrency: opts.concurrency,
        onEvent: progress.image(label),
        repositories: repositoryControl(to.registry),
      });
      let r;
      try {
        r = await restorer.restore({ ...src, at: cmd.at, to, dryRun: cmd.dryRun, force: cmd.force });
      } catch (e) {
        progress.stop();
        throw e;
      }
      progress.done(
        label,
        `${label}: ${r.dryRun ? 'would copy' : 'copied'} ${r.copy.blobs.copied} blobs (${mib(r.copy.bytes.copied)}), ${r.copy.blobs.skipped} present`,
      );
      progress.stop();
      const created = r.repository?.created
        ? `; ${r.dryRun ? 'would create' : 'created'} repository ${to.name}`
        : '';
      const tagged = r.tag ? `; tag ${r.tag.name} ${tagWords(r.tag.action, r.dryRun)}` : '';
      out(opts, r, () =>
        r.dryRun
          ? `dry run: ${r.source} (${r.descriptor.digest}) → ${to.toString()}: would copy ${r.copy.blobs.copied} blobs and ${r.copy.manifests.copied} manifests (${r.copy.bytes.copied} bytes); ${r.copy.blobs.skipped + r.copy.manifests.skipped} already there${tagged}${created}`
          : `restored ${r.source} → ${to.toString()} @ ${r.verifiedDigest} (verified): ${r.copy.blobs.copied} blobs copied, ${r.copy.blobs.skipped} present, ${r.copy.bytes.copied} bytes, ${r.copy.seconds.toFixed(2)} s${tagged}${created}`,
      );
    });

  /** restore --all: the whole vault (or a prefix) into one registry, in parallel, resumable. */
  const restoreAll = async (cmd: RestoreCommandOptions): Promise<void> => {
    const { opts, registries, mode } = ctx();
    const vault = await vaultOf(opts);
    const registry = cmd.to.split('/')[0];
    const progress = createBulkProgress(mode);
    const sinks = new Map<string, (e: CopyEvent) => void>();
    const restorer = new Restorer(vault, registries, {
      concurrency: opts.concurrency,
      repositories: repositoryControl(registry),
    });
    const bulk = new BulkRestorer(vault, restorer, {
      onEvent: (e) => {
        if (e.type === 'plan') progress.plan(e.images.length);
        else if (e.type === 'start') sinks.set(e.image.image, progress.image(e.image.image));
        else if (e.type === 'copy') sinks.get(e.image.image)?.(e.event);
        else {
          sinks.delete(e.image.image);
          progress.done(e.image.image, bulkLine(e.image.image, e.image.destination, e.outcome, cmd.dryRun));
        }
      },
    });
    let summary: BulkRestoreSummary;
    try {
      summary = await bulk.restore({
        to: cmd.to,
        prefix: cmd.prefix,
        at: cmd.at,
        parallel: cmd.parallel,
        dryRun: cmd.dryRun,
        force: cmd.force,
      });
    } finally {
      progress.stop();
    }
    out(opts, summary, () => bulkSummaryText(summary));
    if (summary.images.failed > 0) process.exitCode = ExitCode.Failed;
  };

  program
    .command('export')
    .description('write an image from the vault as an OCI layout or a docker-archive')
    .argument('<image>', 'REPO:TAG or REPO@DIGEST as snapshotted')
    .option('--at <time>', 'the image the tag pointed to at this time', time)
    .option('--oci-layout <dir>', 'OCI image layout directory (created or added to)')
    .option('--docker-archive <file>', 'docker-archive tar (docker load, skopeo docker-archive:)')
    .option('--name <name>', 'name in the OCI layout (ref.name) @default the tag, else the digest')
    .option('--platform <os/arch[/variant]>', 'for --docker-archive of a multi-platform image', 'linux/amd64')
    .action(
      async (
        spec: string,
        cmd: { at?: Date; ociLayout?: string; dockerArchive?: string; name?: string; platform: string },
      ) => {
        const { opts } = ctx();
        if (!!cmd.ociLayout === !!cmd.dockerArchive)
          throw new UsageError('give exactly one of --oci-layout DIR or --docker-archive FILE');
        const src = parseVaultRef(spec);
        const vault = await vaultOf(opts);
        const desc = await new Restorer(vault, new Registries()).resolve({ ...src, at: cmd.at });
        if (cmd.ociLayout) {
          const name = cmd.name ?? src.tag ?? desc.digest;
          const r = await exportOciLayout(vault, desc, path.resolve(cmd.ociLayout), name, {
            concurrency: opts.concurrency,
          });
          out(
            opts,
            r,
            () =>
              `exported ${spec} (${desc.digest}) to ${r.path} as "${name}": ${r.copy.blobs.copied} blobs written, ${r.copy.blobs.skipped} present`,
          );
        } else {
          const file = path.resolve(cmd.dockerArchive!);
          const repoTag = src.tag ? `${src.repository}:${src.tag}` : undefined;
          // Loaded on use: tar-stream is needed by this one command only, and start-up time counts for every other.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const archive = require('../services/docker-archive') as DockerArchiveModule;
          const r = await archive.exportDockerArchive(vault, desc, file, { repoTag, platform: cmd.platform });
          out(
            opts,
            r,
            () =>
              `exported ${spec} (${r.manifest.digest}, ${cmd.platform}) to ${file}: ${r.layers} layers, ${r.bytes} bytes`,
          );
        }
      },
    );

  program
    .command('verify')
    .description('re-hash the vault and walk every image: report missing or corrupt content')
    .argument('[repository]')
    .action(async (repository?: string) => {
      const { opts } = ctx();
      if (repository) validateRepository(repository);
      const vault = await vaultOf(opts);
      const r = await verifyVault(vault, { repository });
      out(opts, r, () =>
        [
          `${r.store}${repository ? ` (${repository})` : ''}: ${r.images} images, ${r.blobs.checked} blobs (${mib(r.blobs.bytes)}) re-hashed in ${r.seconds.toFixed(1)} s`,
          ...r.missing.map(
            (p) => `MISSING ${p.digest}${p.image ? ` (needed by ${p.image})` : ''}: ${p.reason}`,
          ),
          ...r.corrupt.map(
            (p) => `CORRUPT ${p.digest}${p.image ? ` (needed by ${p.image})` : ''}: ${p.reason}`,
          ),
          r.missing.length + r.corrupt.length === 0
            ? 'OK: everything present and verified'
            : `${r.missing.length} missing, ${r.corrupt.length} corrupt`,
        ].join('\n'),
      );
      if (r.missing.length + r.corrupt.length > 0) process.exitCode = ExitCode.VerifyFailed;
    });

  const context: CommandContext = {
    opts: () => program.opts<GlobalOptions>(),
    registries: () => ctx().registries,
    vault: () => vaultOf(program.opts<GlobalOptions>()),
  };
  registerBaseCommand(program, context);
  registerDriftCommand(program, context);
  registerProvenanceCommand(program, context);

  return program;
}

/** Runs the CLI; never throws: errors become a one-line message on stderr and an exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.Ok);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      // help and version are not failures; commander printed them already
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (
      err instanceof UsageError ||
      err.name === 'InvalidReferenceError' ||
      err.name === 'InvalidDigestError'
    ) {
      process.stderr.write(`imagevault: ${err.message}\n`);
      return ExitCode.Usage;
    }
    process.stderr.write(`imagevault: ${err.message}\n`);
    if (process.env.IMAGEVAULT_DEBUG) process.stderr.write(`${err.stack}\n`);
    return ExitCode.Failed;
  }
}
