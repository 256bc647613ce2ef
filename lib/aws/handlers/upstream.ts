import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import {
  createUpstreamCheck,
  ecrRegistryFromFunctionArn,
  type UpstreamCheckDeps,
  type UpstreamCheckSummary,
} from '../../services/upstream-check';

/*
 * The upstream function's handler: the scheduled check of lib/services/upstream-check, logging with Powertools and
 * naming in its alerts the ECR registry of the account and region the function runs in.
 */

export interface UpstreamCheckHandlerDeps extends UpstreamCheckDeps {
  /** @default a Powertools Logger */
  readonly logger?: Logger;
  /**
   * The ECR registry host the affected images are pushed to, for the alert's restore command.
   * @default derived from the invocation's function ARN (`<account>.dkr.ecr.<region>.amazonaws.com`)
   */
  readonly registry?: string;
}

export type UpstreamCheckHandler = (
  event: unknown,
  context?: Pick<Context, 'invokedFunctionArn'>,
) => Promise<UpstreamCheckSummary>;

export function createUpstreamCheckHandler(deps: UpstreamCheckHandlerDeps): UpstreamCheckHandler {
  const check = createUpstreamCheck({ ...deps, logger: deps.logger ?? new Logger() });
  return (_event, context) => check(deps.registry ?? ecrRegistryFromFunctionArn(context?.invokedFunctionArn));
}
