/**
 * A jest transform for the few ESM-only packages the Kubernetes adapter loads (@kubernetes/client-node and what it
 * imports): jest's CommonJS runtime cannot require ES modules on Node 20, so each file is turned into CommonJS with
 * esbuild — the same conversion the CLI bundle makes (scripts/build-cli.ts). Jest caches the result by file content.
 */
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const { code, map } = transformSync(source, {
      loader: 'js',
      format: 'cjs',
      target: 'node20',
      sourcefile: filename,
      sourcemap: 'external',
    });
    return { code, map };
  },
};
