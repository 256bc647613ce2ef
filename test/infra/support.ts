import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import cdkJson from '../../cdk.json';
import {
  addImageVaultStacks,
  ImageVault,
  readAppConfig,
  VaultReplica,
  type ImageVaultProps,
} from '../../lib/infra';

/**
 * An App with cdk.json's context (feature flags and imagevault defaults), as `cdk synth` has it: `new App()` alone
 * would not read cdk.json. The Lambda code is the prebundled dist/lambdas (`npm run build` first).
 */
export function newApp(context: Record<string, unknown> = {}): App {
  return new App({ context: { ...cdkJson.context, ...context } });
}

/** The app as bin/app.ts builds it, from context (and an environment without CDK_DEFAULT_*). */
export function appFromContext(context: Record<string, unknown> = {}) {
  const app = newApp(context);
  const stacks = addImageVaultStacks(
    app,
    readAppConfig((key) => app.node.tryGetContext(key), {}),
  );
  return { app, ...stacks };
}

export const PRIMARY = { account: '111122223333', region: 'eu-west-1' };
export const SECONDARY = { account: '111122223333', region: 'eu-central-1' };

/** One ImageVault in its own stack, with a replica stack in a second region unless `replica: false`. */
export function vaultStack(
  props: ImageVaultProps & { replicaProps?: ConstructorParameters<typeof VaultReplica>[2] } = {},
  replica = true,
) {
  const app = newApp();
  const replicaStack = replica
    ? new Stack(app, 'Replica', { env: SECONDARY, crossRegionReferences: true })
    : undefined;
  const vaultReplica = replicaStack && new VaultReplica(replicaStack, 'Replica', props.replicaProps);
  const stack = new Stack(app, 'Vault', { env: PRIMARY, crossRegionReferences: true });
  const { replicaProps: _ignored, ...vaultProps } = props;
  const vault = new ImageVault(stack, 'ImageVault', { replica: vaultReplica?.target, ...vaultProps });
  return { app, stack, vault, replicaStack, template: () => Template.fromStack(stack) };
}

/** The single resource of a type in a template, by a logical ID prefix (the construct path without slashes). */
export function resourceOf(template: Template, type: string, idPrefix: string): Record<string, unknown> {
  const found = Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(idPrefix));
  if (found.length !== 1) throw new Error(`${found.length} ${type} resources with logical ID ${idPrefix}*`);
  return found[0][1] as Record<string, unknown>;
}

/** All statements of the policies attached to a role (by the role's logical ID prefix). */
export function statementsOf(template: Template, roleIdPrefix: string): Array<Record<string, unknown>> {
  const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
    id.startsWith(`${roleIdPrefix}DefaultPolicy`),
  );
  return policies.flatMap(
    ([, p]) =>
      (p as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } }).Properties
        .PolicyDocument.Statement,
  );
}

/** The statements of a role's policies that allow `action` (alone or among others). */
export function statementsWith(
  template: Template,
  roleIdPrefix: string,
  action: string,
): Array<Record<string, unknown>> {
  return statementsOf(template, roleIdPrefix).filter((s) =>
    ([] as unknown[]).concat(s.Action).includes(action),
  );
}

/** Every action a role's policies allow, once each, sorted. */
export function actionsOf(template: Template, roleIdPrefix: string): string[] {
  const actions = statementsOf(template, roleIdPrefix).flatMap(
    (s) => (Array.isArray(s.Action) ? s.Action : [s.Action]) as string[],
  );
  return [...new Set(actions)].sort();
}
