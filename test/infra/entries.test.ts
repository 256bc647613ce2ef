import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HANDLER_NAMES, handlerCode, projectRoot } from '../../lib/infra/entries';

const ROOT = path.resolve(__dirname, '../..');

describe('Lambda code (lib/infra/entries.ts)', () => {
  it('finds the project root from the sources and from the compiled constructs alike', () => {
    expect(projectRoot(path.join(ROOT, 'lib', 'infra'))).toBe(ROOT);
    expect(projectRoot(path.join(ROOT, 'dist', 'constructs', 'infra'))).toBe(ROOT);
  });

  it('takes each handler from its prebundled folder', () => {
    for (const name of HANDLER_NAMES) {
      expect(handlerCode(name)).toBe(path.join(ROOT, 'dist', 'lambdas', name));
    }
  });

  it('fails in one line that says what to do when a bundle is missing', () => {
    // GIVEN a package root without dist/lambdas
    const root = mkdtempSync(path.join(os.tmpdir(), 'imagevault-nobundle-'));
    try {
      // WHEN / THEN
      expect(() => handlerCode('snapshot', root)).toThrow(
        new Error(
          `imagevault: no Lambda bundle at ${root}/dist/lambdas/snapshot/index.js: run npm run build`,
        ),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
