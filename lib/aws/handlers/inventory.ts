import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import type { Vault } from '../../content';
import { reconcileEvent, type EventQueue, type RepositoryFilter } from '../../events';
import { scanInventory, type InventoryReport, type InventoryScanner } from '../../services/inventory';

/*
 * The inventory function's handler: on a schedule, the in-use scan of lib/services/inventory over ECS, Lambda and
 * EKS, recorded in the vault. A running digest the vault lacks is not copied here (a scan must stay quick and small):
 * when it is in this account's ECR in this region it goes onto the snapshot queue, as reconcile sends what it finds
 * missing, and the snapshot function copies it; any other gap is logged for a person to snapshot with the CLI.
 */

export interface InventoryHandlerDeps {
  readonly vault: Vault;
  /** The sources, made per invocation (an EKS token is signed per scan). */
  readonly scanners: () => InventoryScanner[];
  /** The snapshot queue. */
  readonly queue: EventQueue;
  /** The region the function runs in: its ECR is the registry gaps are enqueued from. */
  readonly region: string;
  /** The protected repositories: the snapshot function copies only those. */
  readonly repositories: RepositoryFilter;
  /** @default a Powertools Logger */
  readonly logger?: Logger;
  readonly now?: () => Date;
}

export interface InventorySummary {
  /** The scan record's key in the vault. */
  key: string;
  sources: { source: string; ok: boolean; sightings: number; error?: string }[];
  running: number;
  /** Running digests the vault lacked, by `repository@digest`: enqueued for a snapshot, or why not. */
  gaps: { image: string; where: string[]; queued: boolean; reason?: string }[];
}

export type InventoryHandler = (
  event: unknown,
  context?: Pick<Context, 'invokedFunctionArn'>,
) => Promise<InventorySummary>;

/** `arn:aws:lambda:<region>:<account>:function:<name>` → its account. */
const accountOf = (arn: string | undefined) => arn?.split(':')[4];

export function createInventoryHandler(deps: InventoryHandlerDeps): InventoryHandler {
  const logger = deps.logger ?? new Logger();
  const now = deps.now ?? (() => new Date());
  return async (_event, context) => {
    const account = accountOf(context?.invokedFunctionArn);
    const report = await scanInventory({
      vault: deps.vault,
      scanners: deps.scanners(),
      now,
      progress: (line) => logger.info(line),
    });
    const ownEcr = account && `${account}.dkr.ecr.${deps.region}.amazonaws.com`;
    const gaps: InventorySummary['gaps'] = [];
    const events = [];
    for (const g of report.gaps) {
      const registry = g.image.split('/')[0];
      const image = `${g.repository}@${g.digest}`;
      if (account && registry === ownEcr && deps.repositories.matches(g.repository)) {
        events.push(
          reconcileEvent({
            account,
            region: deps.region,
            repository: g.repository,
            digest: g.digest,
            time: now(),
          }),
        );
        gaps.push({ image, where: g.where, queued: true });
      } else {
        const where =
          registry === ownEcr
            ? `in a repository the vault does not protect (${deps.repositories.toString()})`
            : `not in this account's ECR in ${deps.region}`;
        const reason = `${g.image} is ${where}: snapshot it with imagevault snapshot ${g.image}`;
        gaps.push({ image, where: g.where, queued: false, reason });
      }
    }
    if (events.length > 0) await deps.queue.send(events);
    for (const g of gaps)
      logger.warn('inventory gap', {
        image: g.image,
        where: g.where,
        ...(g.queued ? { action: 'enqueued for a snapshot' } : { reason: g.reason }),
      });
    const summary = summarize(report, gaps);
    logger.info('inventory scanned', { ...summary, gaps: gaps.length });
    // A source that could not be scanned fails the invocation (the errors alarm), after the scan is recorded.
    const failed = report.sources.filter((s) => !s.ok);
    if (failed.length > 0)
      throw new Error(`inventory: ${failed.map((s) => `${s.source}: ${s.error ?? 'failed'}`).join('; ')}`);
    return summary;
  };
}

function summarize(report: InventoryReport, gaps: InventorySummary['gaps']): InventorySummary {
  return {
    key: report.key,
    sources: report.sources.map(({ source, ok, sightings, error }) => ({
      source,
      ok,
      sightings,
      ...(error ? { error } : {}),
    })),
    running: report.running.length,
    gaps,
  };
}
