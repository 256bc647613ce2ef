/**
 * Builds the installable CLI into dist/cli, bundled CommonJS files: imagevault.js, the package's bin (argument
 * parsing and help: small, so `--help` is quick), commands.js, everything the commands run, loaded when one
 * does, and inventory-scanners.js, the ECS, Lambda and Kubernetes clients (the last ESM, made CommonJS here), loaded
 * only when `imagevault inventory` scans. The published package carries only these, so an install pulls in no dependency at all: no CDK, no test or
 * build tools.
 *
 *   npx tsx scripts/build-cli.ts [--metafile FILE]
 */
import { build } from 'esbuild';
import { CLI_BUNDLE_OPTIONS as common } from './cli-bundle-options';
import { writeFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'dist', 'cli');

async function main(): Promise<void> {
  const metaArg = process.argv.indexOf('--metafile');
  rmSync(outdir, { recursive: true, force: true });
  const cli = await build({
    ...common,
    entryPoints: { commands: 'lib/cli/commands/index.ts' },
    outdir,
    metafile: true,
    // The inventory's scanners and their clients are a bundle of their own, loaded at run time by a scan, with
    // require(): this bundle runs from V8's code cache (lib/cli/code-cache.ts), where import() has no loader.
    supported: { 'dynamic-import': false },
    plugins: [
      {
        name: 'scanners-apart',
        setup(b) {
          b.onResolve({ filter: /\/inventory-scanners$/ }, () => ({
            path: './inventory-scanners.js',
            external: true,
          }));
        },
      },
    ],
  });
  await build({
    ...common,
    entryPoints: { 'inventory-scanners': 'lib/cli/inventory-scanners.ts' },
    outdir,
  });
  await build({
    ...common,
    entryPoints: { imagevault: 'bin/imagevault.ts' },
    outdir,
    // The commands are loaded from their own bundle at run time (bin/imagevault.ts), never inlined here.
    plugins: [
      {
        name: 'commands-apart',
        setup(b) {
          b.onResolve({ filter: /^\.\/commands$/ }, () => ({ path: './commands.js', external: true }));
        },
      },
    ],
  });
  if (metaArg > 0) writeFileSync(process.argv[metaArg + 1], JSON.stringify(cli.metafile));
  const size = (f: string) => `${(statSync(path.join(outdir, f)).size / 1048576).toFixed(1)} MiB`;
  console.log(
    `dist/cli: imagevault.js ${size('imagevault.js')}, commands.js ${size('commands.js')}, inventory-scanners.js ${size('inventory-scanners.js')}`,
  );
}

main().catch((e: Error) => {
  console.error(`build-cli: ${e.message}`);
  process.exit(1);
});
