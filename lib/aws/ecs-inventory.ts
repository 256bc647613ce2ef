import {
  DescribeTasksCommand,
  ECSClient,
  paginateListClusters,
  paginateListTasks,
  type Task,
} from '@aws-sdk/client-ecs';
import type { InventoryScanner, RunningImage, SourceScan } from '../services/inventory';

/** DescribeTasks takes at most 100 task ARNs per call (the ECS API reference). */
const DESCRIBE_TASKS_MAX = 100;

const awsError = (e: unknown) => `${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;

/**
 * What runs on ECS in one region: every cluster's tasks that are meant to run (desired status RUNNING, which
 * includes tasks still starting: they pull the image too), each container's image by `imageDigest`, and where:
 * cluster, service (the task's `group` is `service:NAME`) or task family, task ARN.
 */
export class EcsInventoryScanner implements InventoryScanner {
  readonly source: string;

  constructor(
    private readonly client: ECSClient,
    readonly region: string,
  ) {
    this.source = `ecs:${region}`;
  }

  async scan(): Promise<SourceScan> {
    const running: RunningImage[] = [];
    const errors: string[] = [];
    const clusters: string[] = [];
    try {
      for await (const page of paginateListClusters({ client: this.client }, {}))
        clusters.push(...(page.clusterArns ?? []));
    } catch (e) {
      throw new Error(`ecs:ListClusters in ${this.region}: ${awsError(e)}`, { cause: e });
    }
    // One cluster that cannot be read (a permission scoped by cluster) is said, and the others are still scanned.
    for (const cluster of clusters) {
      try {
        for (const task of await this.tasks(cluster, errors)) running.push(...this.images(task));
      } catch (e) {
        errors.push(`${cluster}: ${awsError(e)}`);
      }
    }
    return { running, errors };
  }

  private async tasks(cluster: string, errors: string[]): Promise<Task[]> {
    const arns: string[] = [];
    for await (const page of paginateListTasks(
      { client: this.client },
      { cluster, desiredStatus: 'RUNNING' },
    ))
      arns.push(...(page.taskArns ?? []));
    const tasks: Task[] = [];
    for (let i = 0; i < arns.length; i += DESCRIBE_TASKS_MAX) {
      const out = await this.client.send(
        new DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + DESCRIBE_TASKS_MAX) }),
      );
      tasks.push(...(out.tasks ?? []));
      // A task that stopped between the two calls is MISSING: nothing runs there any more.
      for (const f of out.failures ?? [])
        if (f.reason !== 'MISSING')
          errors.push(`${f.arn ?? cluster}: ${f.reason}${f.detail ? ` (${f.detail})` : ''}`);
    }
    return tasks;
  }

  private images(task: Task): RunningImage[] {
    const clusterArn = task.clusterArn ?? '';
    const group = task.group ?? `family:${familyOf(task.taskDefinitionArn)}`;
    const base = {
      kind: 'ecs' as const,
      region: this.region,
      clusterArn,
      cluster: clusterArn.slice(clusterArn.lastIndexOf('/') + 1),
      group,
      ...(group.startsWith('service:') ? { service: group.slice('service:'.length) } : {}),
      instances: task.taskArn ? [task.taskArn] : [],
    };
    return (task.containers ?? []).map((c) => ({
      image: c.image ?? '',
      // Absent until the container's image is resolved (a task still provisioning).
      ...(c.imageDigest ? { digest: c.imageDigest } : {}),
      placement: { ...base, containers: c.name ? [c.name] : [] },
    }));
  }
}

/** `arn:aws:ecs:…:task-definition/web:42` → `web`. */
function familyOf(arn: string | undefined): string {
  const name = arn?.slice(arn.lastIndexOf('/') + 1) ?? 'unknown';
  return name.replace(/:\d+$/, '');
}
