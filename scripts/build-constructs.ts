/**
 * Builds what other teams' CDK apps use from the package (`imagevault/constructs`):
 *
 *   dist/lambdas/<name>/index.js(.map)  each Lambda handler bundled with esbuild, as NodejsFunction bundled them:
 *                                       minified, CommonJS for Node 24, a source map without the sources, and the
 *                                       AWS SDK versions of our lock file inside (not the runtime's)
 *   dist/constructs/                    lib/infra compiled by tsc (tsconfig.constructs.json), with declarations, and
 *                                       retention-policy.bundle.js: the retention policy's checks with zod inside
 *
 * The constructs take their Lambda code from dist/lambdas (lib/infra/entries.ts), from the sources or installed.
 *
 *   npx tsx scripts/build-constructs.ts
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { HANDLER_NAMES, handlerBundleDir } from '../lib/infra/entries';
import { POLICY_CHECK_BUNDLE } from '../lib/infra/retention-policy-check';

const root = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  rmSync(path.join(root, 'dist', 'lambdas'), { recursive: true, force: true });
  rmSync(path.join(root, 'dist', 'constructs'), { recursive: true, force: true });
  await Promise.all(
    HANDLER_NAMES.map((name) =>
      build({
        entryPoints: [`lambdas/${name}.ts`],
        outfile: path.join(handlerBundleDir(name), 'index.js'),
        bundle: true,
        platform: 'node',
        // The Lambda runtime (NODEJS_24_X in lib/infra/image-vault.ts).
        target: 'node24',
        format: 'cjs',
        minify: true,
        // Stack traces map to the TypeScript sources (NODE_OPTIONS=--enable-source-maps) without shipping them.
        sourcemap: true,
        sourcesContent: false,
        logLevel: 'warning',
        absWorkingDir: root,
      }),
    ),
  );
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.constructs.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  // The retention policy's checks for the constructs, with zod inside (lib/infra/retention-policy-check.ts).
  await build({
    entryPoints: ['lib/services/retention-policy.ts'],
    outfile: POLICY_CHECK_BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    logLevel: 'warning',
    absWorkingDir: root,
  });
  const size = (name: string) => statSync(path.join(root, handlerBundleDir(name as never), 'index.js')).size;
  const total = HANDLER_NAMES.reduce((sum, n) => sum + size(n), 0);
  console.log(
    `dist/lambdas: ${HANDLER_NAMES.length} bundles, ${(total / 1048576).toFixed(1)} MiB; dist/constructs: compiled`,
  );
}

main().catch((e: Error) => {
  console.error(`build-constructs: ${e.message}`);
  process.exit(1);
});
