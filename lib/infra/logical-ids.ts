import { AspectPriority, Aspects, CfnElement, Names, Stack, type IAspect } from 'aws-cdk-lib';
import { Construct, type IConstruct } from 'constructs';

/**
 * Keeps the logical IDs of resources that moved into parts of a construct at the IDs they had as its direct
 * children. CloudFormation knows a resource across deployments by its logical ID, which CDK derives from the
 * construct path: ImageVault was once a single construct, and a part's id in the path would give each of its
 * resources a new ID, so an existing deployment would replace them all (a queue with its messages, a log group with
 * its logs, an alarm with its history). Each resource under a part gets the ID of its path without the part; a
 * construct id that embeds another construct's unique ID (a Lambda permission names its function, an SQS event
 * source its queue) is translated the same way. test/infra/logical-ids.test.ts holds the IDs of a deployment.
 *
 * An aspect, so that it covers what is added after construction too (an app's subscription to the alert topic),
 * and of the lowest priority, so that it runs after aspects that add resources.
 */
export function keepFlatLogicalIds(scope: Construct, parts: readonly Construct[]): void {
  Aspects.of(scope).add(new FlatLogicalIds(new Set(parts)), { priority: AspectPriority.READONLY });
}

class FlatLogicalIds implements IAspect {
  constructor(private readonly parts: ReadonlySet<IConstruct>) {}

  visit(node: IConstruct): void {
    if (!CfnElement.isCfnElement(node) || !node.node.scopes.some((s) => this.parts.has(s))) return;
    const stack = Stack.of(node);
    const scopes = node.node.scopes;
    const withPart = uniqueId(scopes.slice(scopes.indexOf(stack) + 1).map((s) => s.node.id));
    const flat = uniqueId(this.flatPath(scopes.slice(scopes.indexOf(stack) + 1)));
    // CDK may already have overridden the ID with the path's ID and a suffix (a Lambda version appends the hash of
    // its function): keep the suffix. Any other override was someone's choice, and stays.
    const current = stack.resolve(node.logicalId) as string;
    if (current.startsWith(withPart)) node.overrideLogicalId(flat + current.slice(withPart.length));
  }

  /** The ids of `scopes` without the parts, with every embedded unique ID of a construct in a part translated. */
  private flatPath(scopes: readonly IConstruct[]): string[] {
    const moved = [...this.parts].flatMap((p) => p.node.findAll());
    return scopes
      .filter((s) => !this.parts.has(s))
      .map((s) => {
        let id = s.node.id;
        for (const c of moved) {
          const embedded = Names.nodeUniqueId(c.node);
          if (id.includes(embedded))
            id = id.replace(embedded, uniqueId(this.flatPath(c.node.scopes.slice(1))));
        }
        return id;
      });
  }
}

/**
 * CDK's unique ID of a construct path, as a stack allocates logical IDs (a human part and a hash of the path), asked
 * of CDK itself through a detached construct at that path.
 */
function uniqueId(path: readonly string[]): string {
  let scope = new Construct(undefined as unknown as Construct, '');
  for (const id of path) scope = new Construct(scope, id);
  return Names.uniqueId(scope);
}
