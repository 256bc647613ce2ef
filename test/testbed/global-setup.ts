import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { SCRIPT, TESTBED_DIR } from './env';

/**
 * Starts the real registry and radosgw once for the whole run. radosgw is started unless IMAGEVAULT_TESTBED_S3=0
 * (for a quick local loop); tests that need it then fail rather than skip.
 */
export default function globalSetup(): void {
  process.env.IMAGEVAULT_TESTBED_DIR = TESTBED_DIR;
  execFileSync('bash', [SCRIPT, 'stop', TESTBED_DIR], { stdio: 'ignore' });
  rmSync(TESTBED_DIR, { recursive: true, force: true });
  const args = [SCRIPT, 'start', TESTBED_DIR];
  if (process.env.IMAGEVAULT_TESTBED_S3 !== '0') args.push('rgw');
  try {
    execFileSync('bash', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    // jest runs no teardown after a failed setup: stop what did start, or it outlives the run.
    execFileSync('bash', [SCRIPT, 'stop', TESTBED_DIR], { stdio: 'ignore' });
    throw e;
  }
}
