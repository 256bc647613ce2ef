import type { CopyEvent } from '../../copy';
import { Reference } from '../../oci';
import { Restorer } from '../../services';
import { BulkRestorer, type BulkOutcome, type BulkRestoreSummary } from '../../services/bulk-restore';
import { progressMode, progressOf, repositoryControl, type CommandContext } from '../context';
import { ExitCode, UsageError } from '../exit';
import { createBulkProgress } from '../progress';
import { parseVaultRef } from '../vault-ref';
import { mib, out } from './format';

export interface RestoreCommandOptions {
  to: string;
  at?: Date;
  dryRun: boolean;
  force: boolean;
  all: boolean;
  prefix?: string;
  parallel?: number;
}

/** `imagevault restore`: one image from the vault into a registry, bit-for-bit and verified; or, with --all, every one. */
export async function restoreCommand(
  ctx: CommandContext,
  spec: string | undefined,
  cmd: RestoreCommandOptions,
): Promise<void> {
  if (cmd.all) {
    if (spec !== undefined) throw new UsageError(`restore --all takes no image, got "${spec}"`);
    await restoreAll(ctx, cmd);
    return;
  }
  if (spec === undefined) throw new UsageError('restore needs an image (REPO:TAG or REPO@DIGEST), or --all');
  for (const [flag, given] of [
    ['--prefix', cmd.prefix],
    ['--parallel', cmd.parallel],
  ] as const) {
    if (given !== undefined) throw new UsageError(`${flag} goes with --all`);
  }
  const opts = ctx.opts();
  const progress = progressOf(opts);
  const src = parseVaultRef(spec);
  let to = Reference.parse(cmd.to);
  if (!to.tag && !to.digest && src.tag) to = to.withTag(src.tag);
  const vault = await ctx.vault();
  const label = `${spec} → ${to.toString()}`;
  const restorer = new Restorer(vault, ctx.registries(), {
    concurrency: opts.concurrency,
    onEvent: progress.image(label),
    repositories: await repositoryControl(to.registry),
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
  out(opts.json, r, () =>
    r.dryRun
      ? `dry run: ${r.source} (${r.descriptor.digest}) → ${to.toString()}: would copy ${r.copy.blobs.copied} blobs and ${r.copy.manifests.copied} manifests (${r.copy.bytes.copied} bytes); ${r.copy.blobs.skipped + r.copy.manifests.skipped} already there${tagged}${created}`
      : `restored ${r.source} → ${to.toString()} @ ${r.verifiedDigest} (verified): ${r.copy.blobs.copied} blobs copied, ${r.copy.blobs.skipped} present, ${r.copy.bytes.copied} bytes, ${r.copy.seconds.toFixed(2)} s${tagged}${created}`,
  );
}

/** restore --all: the whole vault (or a prefix) into one registry, in parallel, resumable. */
async function restoreAll(ctx: CommandContext, cmd: RestoreCommandOptions): Promise<void> {
  const opts = ctx.opts();
  const vault = await ctx.vault();
  const registry = cmd.to.split('/')[0];
  const progress = createBulkProgress(progressMode(opts));
  const sinks = new Map<string, (e: CopyEvent) => void>();
  const restorer = new Restorer(vault, ctx.registries(), {
    concurrency: opts.concurrency,
    repositories: await repositoryControl(registry),
  });
  const bulk = new BulkRestorer(vault, restorer, {
    onEvent: (e) => {
      if (e.type === 'plan') progress.plan(e.images.length);
      else if (e.type === 'start') sinks.set(e.image.image, progress.image(e.image.image));
      else if (e.type === 'copy') sinks.get(e.image.image)?.(e.event);
      else {
        sinks.delete(e.image.image);
        progress.done(
          e.image.image,
          bulkLine(e.image.image, e.image.destination, e.outcome, cmd.dryRun),
          e.outcome.status === 'failed',
        );
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
  out(opts.json, summary, () => bulkSummaryText(summary));
  if (summary.images.failed > 0) process.exitCode = ExitCode.Failed;
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
