import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from './entries';

/**
 * The retention policy's own checks (lib/services/retention-policy.ts, the CLI's), run at synth on a policy given as
 * a prop or context. That module uses zod, which the constructs must not import: an app that installs the package
 * gets no dependencies. So it is prebundled with zod inside (scripts/build-constructs.ts) and loaded from there,
 * as the Lambdas' code is.
 */
export const POLICY_CHECK_BUNDLE = path.join('dist', 'constructs', 'retention-policy.bundle.js');

/** Every problem of a policy, each naming the field and its value; none for a good one. */
export function policyProblemsAtSynth(policy: unknown, root: string = projectRoot()): string[] {
  const file = path.join(root, POLICY_CHECK_BUNDLE);
  if (!existsSync(file))
    throw new Error(`imagevault: no retention policy checker at ${file}: run npm run build`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { policyProblems } = require(file) as { policyProblems: (raw: unknown) => string[] };
  return policyProblems(policy);
}
