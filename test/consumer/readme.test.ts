import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
/** The README marks the block it keeps equal to the fixture with this comment, right above the block. */
export const README_MARKER =
  '<!-- test/consumer/app.ts: synthesized and checked by the tests, keep equal -->';

describe('README', () => {
  it('shows the consumer app that the tests synthesize, verbatim', () => {
    // GIVEN
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const fixture = readFileSync(path.join(__dirname, 'app.ts'), 'utf8');
    // WHEN
    const parts = readme.split(README_MARKER);
    const block = /^\s*```ts\n([\s\S]*?)^```$/m.exec(parts[1] ?? '')?.[1];
    // THEN
    expect(parts).toHaveLength(2);
    expect(block).toBe(fixture);
  });
});
