import { ECSClient } from '@aws-sdk/client-ecs';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { EcsInventoryScanner } from '../aws/ecs-inventory';
import { LambdaInventoryScanner } from '../aws/lambda-inventory';
import { kubernetesScanner } from '../kubernetes/pods';
import type { InventoryScanner } from '../services/inventory';

/*
 * The inventory's sources as the CLI builds them: AWS clients from the standard chain (or --profile), the
 * Kubernetes client from a kubeconfig. The CLI bundles this module apart (dist/cli/inventory-scanners.js,
 * scripts/build-cli.ts): the ECS, Lambda and Kubernetes clients load only when `imagevault inventory` scans.
 */

export interface ScannerChoice {
  ecs?: boolean;
  lambda?: boolean;
  kubernetes?: boolean;
  /** AWS region. @default AWS_REGION, else the profile's */
  region?: string;
  /** AWS shared-config profile. @default AWS_PROFILE, else `default` */
  profile?: string;
  kubeconfig?: string;
  context?: string;
}

/** Thrown when no AWS region is given or configured: every AWS source needs one. */
export class NoRegionError extends Error {
  constructor() {
    super('no AWS region: give --region or set AWS_REGION (or a region in the profile)');
    this.name = 'NoRegionError';
  }
}

export async function inventoryScanners(choice: ScannerChoice): Promise<InventoryScanner[]> {
  const scanners: InventoryScanner[] = [];
  const config = {
    ...(choice.region ? { region: choice.region } : {}),
    ...(choice.profile ? { profile: choice.profile } : {}),
  };
  const regionOf = async (client: ECSClient | LambdaClient) => {
    // An empty AWS_REGION counts as none: the SDK would take it and fail every request later.
    const region = await client.config.region().catch(() => undefined);
    if (!region) throw new NoRegionError();
    return region;
  };
  if (choice.ecs) {
    const client = new ECSClient(config);
    scanners.push(new EcsInventoryScanner(client, await regionOf(client)));
  }
  if (choice.lambda) {
    const client = new LambdaClient(config);
    scanners.push(new LambdaInventoryScanner(client, await regionOf(client)));
  }
  if (choice.kubernetes)
    scanners.push(kubernetesScanner({ kubeconfig: choice.kubeconfig, context: choice.context }));
  return scanners;
}
