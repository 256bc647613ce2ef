import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import cdkJson from '../../cdk.json';

/**
 * The feature flags another team's app may have: none (a plain `new App()`, every flag at its default), what
 * aws-cdk-lib recommends for a new project (what `cdk init` writes into cdk.json), and this repository's cdk.json.
 */
export const FLAG_SETS: Record<string, Record<string, unknown>> = {
  'no feature flags': {},
  "aws-cdk-lib's recommended flags": CURRENTLY_RECOMMENDED_FLAGS,
  "this repository's cdk.json": cdkJson.context,
};

/** What synthesizing the consumer app gave. */
export interface ConsumerSynth {
  /** The stacks in the app's order, each with its region. */
  readonly stacks: Array<{ readonly name: string; readonly region: string }>;
  /** Stack name → its CloudFormation template. */
  readonly templates: Record<string, Record<string, unknown>>;
  /** The text of every warning annotation in the cloud assembly. */
  readonly warnings: string[];
  /** cdk-nag AwsSolutions over the app: each finding as `rule: construct paths`. */
  readonly nagViolations: string[];
}

/**
 * Synthesizes the consumer fixture (test/consumer/app.ts) as `cdk synth` runs it: the module evaluated afresh, its
 * `new App()` reading the context from CDK_CONTEXT_JSON, which is how the CDK CLI hands an app its cdk.json.
 * Evaluating it afresh gives it a module registry of its own, which aws-cdk-lib keeps using through its lazy
 * requires: so the synthesis and cdk-nag run inside that registry too, and only plain data comes out (cdk-nag
 * from the test's own registry would not recognize the app's resources and would find nothing).
 */
export function synthConsumer(context: Record<string, unknown>): ConsumerSynth {
  const saved = process.env.CDK_CONTEXT_JSON;
  process.env.CDK_CONTEXT_JSON = JSON.stringify(context);
  try {
    let result: ConsumerSynth | undefined;
    jest.isolateModules(() => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { app } = require('./app') as typeof import('./app');
      const { AwsSolutionsChecks } = require('cdk-nag') as typeof import('cdk-nag');
      /* eslint-enable @typescript-eslint/no-require-imports */
      const assembly = app.synth();
      const report = new AwsSolutionsChecks(app).validateScope(app);
      result = {
        stacks: assembly.stacks.map((s) => ({ name: s.stackName, region: s.environment.region })),
        templates: Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template])),
        warnings: assembly.stacks.flatMap((s) =>
          s.messages.filter((m) => m.level === 'warning').map((m) => String(m.entry.data)),
        ),
        nagViolations: report.violations.map(
          (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
        ),
      };
    });
    return result!;
  } finally {
    if (saved === undefined) delete process.env.CDK_CONTEXT_JSON;
    else process.env.CDK_CONTEXT_JSON = saved;
  }
}
