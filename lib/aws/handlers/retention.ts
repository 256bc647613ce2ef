import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { VaultInUse, type Vault } from '../../content';
import { collectGarbage, DEFAULT_GRACE_MS, type GcReport } from '../../services/gc';
import { applyRetention } from '../../services/retention';
import type { RetentionPolicy } from '../../services/retention-policy';

/*
 * The retention function's handler: on a schedule, `imagevault retention apply` with the deployed policy, then
 * `imagevault gc` — the sweep of the marks earlier runs left, then a new mark — within one invocation. gc is asked
 * to stop while enough of the invocation is left to end cleanly (lib/services/gc.ts `shouldStop`): what it could
 * not delete is a new mark, which the next run sweeps.
 */

/**
 * Time kept free at the end of an invocation: a stopped sweep still writes the rest of its mark and its done file,
 * and a delete in flight finishes (each is one S3 request, bounded by IMAGEVAULT_TIMEOUT only in the worst case).
 */
export const STOP_MARGIN_MS = 2 * 60 * 1000;

export interface RetentionHandlerDeps {
  readonly vault: Vault;
  readonly policy: RetentionPolicy;
  /** @default DEFAULT_GRACE_MS (24 hours) */
  readonly graceMs?: number;
  /** @default STOP_MARGIN_MS */
  readonly stopMarginMs?: number;
  /** @default a Powertools Logger */
  readonly logger?: Logger;
}

export interface RetentionSummary {
  /** Images the policy forgot now (each a forget record), and those left alone at the last moment. */
  forgotten: number;
  skipped: { image: string; reason: string }[];
  kept: number;
  /** What gc deleted, marked, and whether it stopped before its end (the next run goes on). */
  gc: {
    deleted: { blobs: number; bytes: number };
    marked?: { mark: string; blobs: number; bytes: number };
    waiting: GcReport['waiting'];
    retained: number;
    stopped: boolean;
  };
}

export type RetentionHandler = (
  event: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis' | 'functionName'>,
) => Promise<RetentionSummary>;

export function createRetentionHandler(deps: RetentionHandlerDeps): RetentionHandler {
  const logger = deps.logger ?? new Logger();
  const margin = deps.stopMarginMs ?? STOP_MARGIN_MS;
  return async (_event, context) => {
    const inUse = new VaultInUse(deps.vault.store);
    const applied = await applyRetention(deps.vault, deps.policy, {
      inUse,
      by: `imagevault retention function ${context?.functionName ?? ''}`.trim(),
    });
    for (const f of applied.plan.forget)
      logger.info('forget', {
        image: `${f.repository}@${f.descriptor.digest}`,
        rule: f.rule,
        reason: f.reason,
      });
    for (const s of applied.skipped) logger.info('left alone', s);
    const gc = await collectGarbage(deps.vault, {
      graceMs: deps.graceMs ?? DEFAULT_GRACE_MS,
      inUse,
      shouldStop: () => (context ? context.getRemainingTimeInMillis() < margin : false),
      onEvent: (e) => {
        if (e.phase !== 'sweep') logger.info(`gc ${e.phase}`, { ...e });
      },
    });
    const summary: RetentionSummary = {
      forgotten: applied.forgotten,
      skipped: applied.skipped,
      kept: applied.plan.kept.length,
      gc: {
        deleted: gc.swept.reduce(
          (n, s) => ({ blobs: n.blobs + s.deleted.blobs, bytes: n.bytes + s.deleted.bytes }),
          { blobs: 0, bytes: 0 },
        ),
        ...(gc.marked && {
          marked: { mark: gc.marked.mark, blobs: gc.marked.blobs, bytes: gc.marked.bytes },
        }),
        waiting: gc.waiting,
        retained: gc.swept.reduce((n, s) => n + s.retained.length, 0),
        stopped: gc.stopped === true,
      },
    };
    logger.info('retention run', { ...summary });
    return summary;
  };
}
