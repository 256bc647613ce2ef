import { VaultInUse } from '../../content';
import { collectGarbage, DEFAULT_GRACE_MS, GcError, type GcEvent, type GcReport } from '../../services/gc';
import { parseDuration } from '../../services/retention-policy';
import type { CommandContext } from '../context';
import { progressMode } from '../context';
import { UsageError } from '../exit';
import { mib, out } from './format';

export interface GcCommandOptions {
  dryRun: boolean;
  grace?: string;
}

/** `imagevault gc [--dry-run] [--grace 24h]`: sweep what earlier runs marked, then mark what no kept image needs. */
export async function gcCommand(ctx: CommandContext, cmd: GcCommandOptions): Promise<void> {
  const opts = ctx.opts();
  const graceMs =
    cmd.grace === undefined ? DEFAULT_GRACE_MS : cmd.grace === '0' ? 0 : parseDuration(cmd.grace);
  if (graceMs === undefined)
    throw new UsageError(`--grace "${cmd.grace}" is not a duration (e.g. 24h, 2d, 0)`);
  const vault = await ctx.vault();
  const progress = progressMode(opts) !== 'none';
  let report: GcReport;
  try {
    report = await collectGarbage(vault, {
      graceMs,
      dryRun: cmd.dryRun,
      inUse: new VaultInUse(vault.store),
      onEvent: progress ? (e) => process.stderr.write(`imagevault gc: ${describe(e)}\n`) : undefined,
    });
  } catch (e) {
    throw e instanceof GcError ? new UsageError(e.message) : e;
  }
  out(opts.json, report, () => formatGc(report));
}

function describe(e: GcEvent): string {
  switch (e.phase) {
    case 'roots':
      return `${e.images} kept images walked`;
    case 'mark':
      return `mark ${e.mark}: ${e.candidates} blobs (${mib(e.bytes)})`;
    case 'sweep':
      return `sweeping mark ${e.mark}: ${e.done + 1}/${e.total} ${e.digest}`;
    case 'waiting':
      return `mark ${e.mark} waits for ${e.writers} snapshots that began before it (at latest until ${e.until})`;
  }
}

export function formatGc(r: GcReport): string {
  const would = r.dryRun ? 'would ' : '';
  const hours = r.graceMs / 3_600_000;
  const lines = [
    `gc of ${r.store}${r.dryRun ? ' (dry run: nothing written or deleted)' : ''}, grace ${hours} h`,
    `kept: ${r.kept.images} images need ${r.kept.blobs} blobs`,
  ];
  for (const s of r.swept) {
    lines.push(
      `mark ${s.mark}${s.resumed ? ' (an interrupted sweep, finished now)' : ''}: ${would}delete ${s.deleted.blobs} blobs (${mib(s.deleted.bytes)}); ${s.keptAgain} needed again or rescued by a snapshot, kept`,
    );
    if (s.versioned)
      lines.push(
        '  versioned bucket: each delete is a delete marker; the bytes stay as noncurrent versions until the bucket lifecycle expires them',
      );
    if (s.retained.length > 0) {
      const bytes = s.retained.reduce((n, x) => n + x.size, 0);
      lines.push(
        `  Object Lock retains ${s.retained.length} of them (${mib(bytes)}), stored and billed until their retention ends:`,
      );
      for (const x of s.retained) lines.push(`    retained ${x.digest} ${x.mode} until ${x.until}`);
    }
  }
  for (const w of r.waiting)
    lines.push(
      `mark ${w.mark} waits for ${w.writers} snapshots that began before it (at latest until ${w.until}); run gc again then`,
    );
  if (r.marked)
    lines.push(
      `${would}mark ${r.marked.blobs} blobs (${mib(r.marked.bytes)}) no kept image needs, older than the grace: ` +
        'a later gc deletes those still unneeded, once every snapshot running now has ended',
    );
  else if (r.waiting.length === 0) lines.push('nothing to mark');
  if (r.tidied > 0) lines.push(`removed ${r.tidied} protocol files of ended snapshots and finished sweeps`);
  return lines.join('\n');
}
