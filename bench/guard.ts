/**
 * `npm run bench:guard`: a cheap regression check of copy speed, for CI. Runs `npm run bench -- --quick --no-s3`
 * (small images, directory store, its own test bed) with JSON output, then compares our copy-only MiB/s — the bytes over
 * the copy time the CLI reports, without process start — of each snapshot and restore row with the floor committed in
 * bench/guard-floor.json. Fails (exit 1) only when a row is below its floor: floors sit at about a third of what a
 * shared, loaded 2-core machine measured, so only a large regression (a second hash of every byte, a lost pipeline,
 * a per-chunk syscall storm) trips it, not noise. A measurement, not a test: it prints the numbers either way.
 *
 *   npx tsx bench/guard.ts [--runs N] [--json FILE] [--cache DIR] [--no-build]
 *   npx tsx bench/guard.ts --from FILE    (compare a bench JSON already written, with --quick --no-s3)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const FLOOR_FILE = path.join(__dirname, 'guard-floor.json');

interface Floor {
  /** Why the numbers are what they are, for whoever changes them. */
  note: string;
  /** Copy-only MiB/s at or above which each row passes, keyed `op image store`, e.g. `snapshot 16x4mib dir`. */
  copyMiBps: Record<string, number>;
}

interface BenchRow {
  op: string;
  image: string;
  store: string;
  oursMiBps: number;
  oursCopyMiBps?: number;
  skopeoMiBps: number;
  ratio: number;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function main(): number {
  const args = process.argv.slice(2);
  const floor = JSON.parse(readFileSync(FLOOR_FILE, 'utf8')) as Floor;
  const work = mkdtempSync(path.join(tmpdir(), 'imagevault-guard-'));
  const json = option(args, '--json') ?? path.join(work, 'bench.json');
  const started = Date.now();
  try {
    // Copy speed only: the bulk restore is the full bench's.
    const benchArgs = ['tsx', 'bench/bench.ts', '--quick', '--no-s3', '--bulk', '0', '--json', json];
    benchArgs.push('--runs', option(args, '--runs') ?? '3');
    const cache = option(args, '--cache');
    if (cache) benchArgs.push('--cache', cache);
    if (args.includes('--no-build')) benchArgs.push('--no-build');
    const from = option(args, '--from');
    if (!from) {
      try {
        execFileSync('npx', benchArgs, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      } catch {
        process.stderr.write('bench:guard: the bench itself failed (see above): nothing to compare\n');
        return 2;
      }
    }
    const rows = (JSON.parse(readFileSync(from ?? json, 'utf8')) as { rows: BenchRow[] }).rows;
    const failures: string[] = [];
    const lines: string[] = [];
    for (const [key, min] of Object.entries(floor.copyMiBps)) {
      const row = rows.find((r) => `${r.op} ${r.image} ${r.store}` === key);
      const got = row?.oursCopyMiBps;
      if (got === undefined) {
        failures.push(`${key}: not measured (the bench's rows changed? update bench/guard-floor.json)`);
        continue;
      }
      const pass = got >= min;
      lines.push(
        `${pass ? 'ok  ' : 'FAIL'} ${key.padEnd(24)} copy-only ${got.toFixed(0).padStart(5)} MiB/s (floor ${min}), ` +
          `whole process ${row!.oursMiBps.toFixed(0)} MiB/s = ${row!.ratio.toFixed(2)}× the comparison tool`,
      );
      if (!pass)
        failures.push(`${key}: ${got.toFixed(0)} MiB/s copy-only is below the floor of ${min} MiB/s`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stderr.write(`bench:guard: measured in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    for (const f of failures) process.stderr.write(`bench:guard: ${f}\n`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = main();
