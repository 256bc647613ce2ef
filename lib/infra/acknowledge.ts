import { Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, type IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag's wildcard-resource findings (AwsSolutions-IAM5) on a role (or any construct holding a
 * policy), one finding at a time, each with its reason. The finding ID spells the resource the way cdk-nag flattens
 * it from the template, which is only known once cross-stack references are resolved: so the acknowledgment is
 * recorded during validation, which runs after that and before cdk-nag looks.
 */
export function acknowledgeWildcards(role: IConstruct, resources: [string, string][]): void {
  role.node.addValidation({
    validate: () => {
      const stack = Stack.of(role);
      for (const [resource, reason] of resources) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${flatten(stack.resolve(resource))}]`,
          reason,
        });
      }
      return [];
    },
  });
}

/** cdk-nag's spelling of a resolved value (its flattenCfnReference): `<Logical.Attr>`, `<Ref>`, joins joined. */
export function flatten(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const o = (value ?? {}) as Record<string, unknown>;
  if (o['Fn::Join']) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(sep);
  }
  if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
  if (o['Fn::GetAtt']) {
    const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
  if (o.Ref) return `<${flatten(o.Ref)}>`;
  return JSON.stringify(value);
}

/**
 * A `grantRead` on a vault or replica gives its grantee `s3:GetObject` on every object: cdk-nag reports the wildcard
 * (AwsSolutions-IAM5) on the grantee's policy, in the app that uses the construct. It is acknowledged there with the
 * reason, so the grant adds no finding to that app; when the grantee is no construct (no policy is written), there is
 * nothing to acknowledge.
 */
export function acknowledgeGranteeWildcard(grantee: iam.IGrantable, bucket: s3.IBucket): void {
  acknowledgeGranteeWildcards(grantee, [
    [bucket.arnForObjects('*'), 'a restore reads any object of the vault: its keys are content addresses'],
  ]);
}

/** acknowledgeWildcards on a grantee's principal, when it is a construct (else no policy is written). */
export function acknowledgeGranteeWildcards(grantee: iam.IGrantable, resources: [string, string][]): void {
  const principal = grantee.grantPrincipal;
  if (Construct.isConstruct(principal)) acknowledgeWildcards(principal, resources);
}
