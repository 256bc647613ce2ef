import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { SCRIPT, TESTBED_DIR } from './env';

export default function globalTeardown(): void {
  if (process.env.IMAGEVAULT_KEEP_TESTBED === '1') return;
  execFileSync('bash', [SCRIPT, 'stop', TESTBED_DIR], { stdio: 'inherit' });
  rmSync(TESTBED_DIR, { recursive: true, force: true });
  // The run's temporary directory (test/testbed/global-setup.ts).
  const runTmp = process.env.TMPDIR;
  if (runTmp && path.basename(runTmp).startsWith('imagevault-run-'))
    rmSync(runTmp, { recursive: true, force: true });
}
