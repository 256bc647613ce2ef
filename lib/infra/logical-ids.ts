import { AspectPriority, Aspects, CfnElement, CfnResource, Names, Stack, type IAspect } from 'aws-cdk-lib';
import { Construct, type IConstruct } from 'constructs';

/**
 * Keeps the logical IDs of resources that moved into parts of a construct at the IDs they had as its direct
 * children. CloudFormation knows a resource across deployments by its logical ID, which CDK derives from the
 * construct path: ImageVault was once a single construct, and a part's id in the path would give each of its
 * resources a new ID, so an existing deployment would replace them all (a queue with its messages, a log group with
 * its logs, an alarm with its history). Each resource under a part gets the ID of its path without the part; a
 * construct id that embeds another construct's unique ID (a Lambda permission names its function, an SQS event
 * source its queue) is translated the same way, and so is a policy statement's Sid that embeds one (EventBridge
 * names the rule in a dead-letter queue's policy). test/infra/logical-ids.test.ts holds the IDs of a deployment.
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
    const path = node.node.scopes.slice(node.node.scopes.indexOf(stack) + 1);
    const withPart = uniqueId(path.map((s) => s.node.id));
    // CDK may already have overridden the ID with the path's ID and a suffix (a Lambda version appends the hash of
    // its function): keep the suffix. Any other override was someone's choice, and stays.
    const current = stack.resolve(node.logicalId) as string;
    if (current.startsWith(withPart)) {
      node.overrideLogicalId(uniqueId(this.flatPath(path)) + current.slice(withPart.length));
    }
    if (node instanceof CfnResource) this.keepSids(node);
  }

  /** Translates the statement IDs of a resource policy (queue, topic, bucket) that name a construct in a part. */
  private keepSids(resource: CfnResource): void {
    const document = (resource as CfnResource & { policyDocument?: unknown }).policyDocument;
    if (document === undefined) return;
    const resolved = resource.stack.resolve(document) as { Statement?: Array<{ Sid?: string }> } | undefined;
    (resolved?.Statement ?? []).forEach(({ Sid }, i) => {
      const flat = Sid && this.translate(Sid);
      if (flat && flat !== Sid) resource.addPropertyOverride(`PolicyDocument.Statement.${i}.Sid`, flat);
    });
  }

  /** The ids of `scopes` without the parts, each translated. */
  private flatPath(scopes: readonly IConstruct[]): string[] {
    return scopes.filter((s) => !this.parts.has(s)).map((s) => this.translate(s.node.id));
  }

  /** `text` with every embedded unique ID of a construct in a part replaced by the one it had without the part. */
  private translate(text: string): string {
    let translated = text;
    for (const c of [...this.parts].flatMap((p) => p.node.findAll())) {
      const embedded = Names.nodeUniqueId(c.node);
      if (translated.includes(embedded)) {
        translated = translated.replace(embedded, uniqueId(this.flatPath(c.node.scopes.slice(1))));
      }
    }
    return translated;
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
