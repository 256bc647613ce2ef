import * as path from 'node:path';
import type { BuildOptions } from 'esbuild';

const root = path.resolve(__dirname, '..');

/** How the CLI's bundles are built (scripts/build-cli.ts), and anything timed beside them (the bench's ceilings). */
export const CLI_BUNDLE_OPTIONS: BuildOptions = {
  bundle: true,
  platform: 'node',
  // The CLI's floor (package.json engines): syntax and built-ins of Node 20.
  target: 'node20',
  format: 'cjs',
  minify: true,
  // Error classes and stack frames keep their names: messages and --verbose output stay readable.
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: root,
};
