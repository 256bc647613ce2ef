import { Inventory, type InUseEntry, type ScanRecord, type SourceState } from '../../content/inventory';
import { scanInventory, snapshotGapWith, type InventoryReport } from '../../services/inventory';
import { redactSecrets } from '../../registry/redact';
import { isEcrHost, progressMode, type CommandContext } from '../context';
import { ExitCode, UsageError } from '../exit';
import { out } from './format';

export interface InventoryCommandOptions {
  ecs?: boolean;
  lambda?: boolean;
  kubernetes?: boolean;
  context?: string;
  kubeconfig?: string;
  region?: string;
  profile?: string;
  /** False with --no-snapshot: gaps are reported, not snapshotted. */
  snapshot?: boolean;
  show?: boolean;
  json?: boolean;
}

/**
 * `imagevault inventory`: scan what runs (ECS, Lambda, Kubernetes), record it in the vault and snapshot what runs
 * but is not in the vault; with `--show`, what the vault knows from earlier scans, without scanning.
 */
export async function inventoryCommand(ctx: CommandContext, cmd: InventoryCommandOptions): Promise<void> {
  const opts = ctx.opts();
  const json = Boolean(cmd.json ?? opts.json);
  const vault = await ctx.vault();
  if (cmd.show) {
    const shown = await inventoryShow(new Inventory(vault.store));
    out(json, shown, () => formatShow(shown));
    return;
  }
  if (!cmd.ecs && !cmd.lambda && !cmd.kubernetes)
    throw new UsageError('name what to scan (--ecs, --lambda, --kubernetes), or --show what is known');
  // Loaded only now, from a bundle of its own: the SDK clients and the Kubernetes client.
  const { inventoryScanners } = await import('../inventory-scanners');
  const scanners = await inventoryScanners(cmd);
  const say =
    progressMode({ ...opts, json }) === 'none'
      ? undefined
      : (l: string) => process.stderr.write(`inventory: ${l}\n`);
  const report = await scanInventory({
    vault,
    scanners,
    ...(cmd.snapshot === false
      ? {}
      : {
          snapshot: snapshotGapWith(vault, ctx.registries(), {
            concurrency: opts.concurrency,
            cloudTrail: isEcrHost,
          }),
        }),
    progress: say,
  });
  for (const g of report.gaps) if (g.error) g.error = redactSecrets(g.error);
  out(json, report, () => formatScan(report));
  if (report.sources.some((s) => !s.ok) || report.gaps.some((g) => g.error))
    process.exitCode = ExitCode.Failed;
}

export interface InventoryShow {
  latestScan?: Pick<ScanRecord, 'startedAt' | 'finishedAt' | 'sources'> & { key: string; gaps: number };
  sources: SourceState[];
  images: InUseEntry[];
}

/** What the vault knows: the sources and the newest scan, and every workload each digest ran in. */
export async function inventoryShow(inventory: Inventory): Promise<InventoryShow> {
  const latest = await inventory.latestScan();
  const images = (await inventory.inUseSince(new Date(0))).sort(
    (a, b) => cmp(a.repository, b.repository) || cmp(a.digest, b.digest) || cmp(a.where, b.where),
  );
  return {
    ...(latest
      ? {
          latestScan: {
            key: latest.key,
            startedAt: latest.startedAt,
            finishedAt: latest.finishedAt,
            sources: latest.sources,
            gaps: latest.gaps.length,
          },
        }
      : {}),
    sources: await inventory.sources(),
    images,
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const short = (digest: string) => `${digest.slice(0, 19)}…`;

function formatScan(r: InventoryReport): string {
  const lines = r.sources.map((s) =>
    s.ok
      ? `${s.source}: ${s.sightings} running`
      : `${s.source}: FAILED: ${s.error}${s.sightings ? ` (${s.sightings} running seen)` : ''}`,
  );
  for (const x of r.running)
    lines.push(`${x.held ? 'HELD   ' : 'GAP    '} ${x.repository}@${short(x.digest)}  ${x.where.join(', ')}`);
  for (const g of r.gaps)
    lines.push(
      g.snapshotted
        ? `SNAPSHOTTED ${g.image}: was running and not in the vault; restorable now as ${g.repository}@${g.digest}`
        : `NOT SNAPSHOTTED ${g.image}: ${g.error ?? 'not in the vault (--no-snapshot)'}`,
    );
  for (const s of r.sources)
    for (const u of s.unresolved) lines.push(`UNPLACED ${u.where}: ${u.image || '(no image)'}: ${u.reason}`);
  const snapped = r.gaps.filter((g) => g.snapshotted).length;
  lines.push(
    `${r.running.length} digests running; ${r.gaps.length} not in the vault before this scan` +
      (r.gaps.length ? ` (${snapped} snapshotted, ${r.gaps.length - snapped} not)` : '') +
      `; recorded as ${r.key}`,
  );
  return lines.join('\n');
}

function formatShow(s: InventoryShow): string {
  if (!s.latestScan) return 'no inventory scan yet (imagevault inventory --ecs --lambda --kubernetes)';
  const lines = [
    `latest scan ${s.latestScan.finishedAt}: ${s.latestScan.sources.map((x) => `${x.source} ${x.ok ? 'ok' : 'FAILED'}`).join(', ')}`,
  ];
  for (const src of s.sources)
    if (src.lastOkAt !== src.lastScanAt)
      lines.push(
        `  ${src.source}: last scan ${src.lastScanAt} failed; last good scan ${src.lastOkAt ?? 'never'}`,
      );
  for (const e of s.images)
    lines.push(
      `${e.running ? 'RUNNING' : 'RAN    '} ${e.repository}@${short(e.digest)}  ${e.where}  first ${e.firstSeen}, last ${e.lastSeen}`,
    );
  return lines.join('\n');
}
