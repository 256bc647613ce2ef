import { checkStatement, statementsOf } from './actions';
import { allDeployments, type Deployment } from './deployment';
import { evaluatePath, failureMessage, servicePaths, short, WALKS, type PathResult } from './paths';

// The offline AWS contract harness (issue 11), template side: each deployment (this repository's app with every
// optional part on, and the consumer fixture under each of its flag sets) resolved to concrete ARNs in one test
// account; the calls AWS makes on our behalf, found by walking the template graph, evaluated against the deployed
// policies with an IAM policy evaluator; every action and resource of every policy checked against the IAM service
// reference; AWS limits. What it cannot see is listed in test/contract/README.md.

/**
 * Statements that name Resource "*" for an action that takes resource ARNs, each with the reason it must. An AWS
 * fact the evaluator does not verify: ECR authorizes a DescribeRepositories without repository names on "*".
 */
const WILDCARD_RESOURCES_NEEDED: Record<string, string> = {
  'ecr:describerepositories':
    'listing every repository of the registry (no names given) is authorized on "*"',
  'ecs:listtasks':
    'listing a cluster\'s tasks without a container instance is authorized on "*" (test/contract/README.md)',
};

const deployments: Deployment[] = allDeployments();
const paths = new Map(deployments.map((d) => [d.name, servicePaths(d)]));
const evaluated: PathResult[] = [];
const statements = new Map<string, { count: number; problems: string[] }>();

beforeAll(async () => {
  for (const d of deployments) {
    const located = statementsOf(d);
    const problems = (await Promise.all(located.map(checkStatement))).flat();
    statements.set(d.name, { count: located.length, problems });
  }
});

afterAll(() => {
  const calls = evaluated.reduce((n, r) => n + r.decisions.length, 0);
  const checked = [...statements.values()].reduce((n, s) => n + s.count, 0);
  const perWalk = Object.keys(WALKS)
    .map((w) => `${w}: ${evaluated.filter((r) => r.path.walk === w).length}`)
    .join(', ');
  console.log(
    `contract harness: ${deployments.length} deployments, ${evaluated.length} service paths with ${calls} calls evaluated, ${checked} policy statements checked against the IAM reference\npaths per walk: ${perWalk}`,
  );
});

describe('Walks of the template graph', () => {
  it.each(Object.keys(WALKS).map((w) => [w]))(
    "walk %s finds at least one edge in this repository's app with every optional part on",
    (walk) => {
      expect(paths.get(deployments[0].name)!.filter((p) => p.walk === walk).length).toBeGreaterThan(0);
    },
  );
});

describe.each(deployments.map((d) => [d.name, d] as const))('%s', (name, d) => {
  const walks = Object.keys(WALKS).filter((w) => paths.get(name)!.some((p) => p.walk === w));
  describe.each(walks.map((w) => [w]))('walk %s', (walk) => {
    const found = paths.get(name)!.filter((p) => p.walk === walk);
    it.each(found.map((p) => [p.name, p] as const))('%s', async (_name, path) => {
      const result = await evaluatePath(d, path);
      evaluated.push(result);
      expect(result.ok ? [] : [failureMessage(result)]).toEqual([]);
    });
  });

  it('every policy statement names actions of the IAM service reference, on resources of their types', () => {
    const problems = statements
      .get(name)!
      .problems.filter(
        (p) =>
          !Object.keys(WILDCARD_RESOURCES_NEEDED).some((a) =>
            p.endsWith(`for ${a}, which take resource ARNs`),
          ),
      );
    expect(problems).toEqual([]);
  });

  it('gives every queue that is an event source a visibility timeout of at least 6× its function timeout (AWS guidance)', () => {
    const mappings = d.resources.filter((r) => r.type === 'AWS::Lambda::EventSourceMapping');
    const checked = mappings.flatMap((m) => {
      const queue = d.byArn.get(String(m.properties.EventSourceArn));
      if (queue?.type !== 'AWS::SQS::Queue') return [];
      const fn = d.resources.find(
        (f) => f.type === 'AWS::Lambda::Function' && f.ref === String(m.properties.FunctionName),
      )!;
      const visibility = Number(queue.properties.VisibilityTimeout ?? 30);
      const timeout = Number(fn.properties.Timeout ?? 3);
      return [{ queue: short(queue), fn: short(fn), visibility, timeout, ok: visibility >= 6 * timeout }];
    });
    expect(checked.length).toBeGreaterThan(0);
    expect(checked.filter((c) => !c.ok)).toEqual([]);
  });
});
