import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
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
  // Every temporary directory of the run (the tests', the CLI's they spawn, CDK's cdk.out) goes under one that the
  // teardown removes: thousands left behind per run once filled the disk, and radosgw will not start on a full one.
  // Caches meant to outlive the run (test/contract's synthesized templates) stay in the machine's own.
  process.env.IMAGEVAULT_SHARED_TMPDIR = tmpdir();
  process.env.TMPDIR = mkdtempSync(path.join(tmpdir(), 'imagevault-run-'));
}
