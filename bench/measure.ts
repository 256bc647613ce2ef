import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';

/** One child process, measured from the outside: wall time and peak RSS (the kernel's high-water mark). */
export interface Measured {
  seconds: number;
  /** Peak resident set of the child, bytes. */
  peakRss: number;
  /** CPU time of the child, user + system, seconds (what a CPU-bound run needs per vCPU, whatever else runs). */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(
      `${argv.join(' ')} exited ${code ?? 'on a signal'}${stderr.trim() ? `:\n${tail(stderr, 20)}` : ''}`,
    );
    this.name = 'CommandError';
  }
}

function tail(text: string, lines: number): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * How peak RSS is taken. GNU time (`/usr/bin/time -f %M`) where installed; otherwise python3 (which the test bed
 * needs anyway) waits for the child and reads getrusage(RUSAGE_CHILDREN).ru_maxrss. Both report the largest
 * resident set the kernel saw for the child, in KiB, with no polling, so a short spike is never missed; and its
 * user and system CPU seconds.
 */
export type RssProbe = 'gnu-time' | 'python-rusage';

export function pickRssProbe(): RssProbe | undefined {
  if (existsSync('/usr/bin/time')) return 'gnu-time';
  return onPath('python3') ? 'python-rusage' : undefined;
}

export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(path.join(dir, cmd)));
}

const PY_WRAPPER = [
  'import resource, subprocess, sys',
  'rc = subprocess.call(sys.argv[2:])',
  'u = resource.getrusage(resource.RUSAGE_CHILDREN)',
  'open(sys.argv[1], "w").write("%d %.2f %.2f\\n" % (u.ru_maxrss, u.ru_utime, u.ru_stime))',
  'sys.exit(rc if rc >= 0 else 128 - rc)',
].join('\n');

/** The child currently running, so a Ctrl-C can stop it (and only it) before the test bed goes down. */
let current: ChildProcess | undefined;

export function killCurrentChild(): void {
  if (current && current.exitCode === null && current.pid) killGroup(current.pid);
}

/** Each child runs in a process group of its own (the probe and what it runs), so both go down together. */
function killGroup(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** Runs argv to completion under the RSS probe; throws CommandError on a non-zero exit. */
export async function measure(
  argv: string[],
  opts: { probe: RssProbe; scratch: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutSeconds?: number },
): Promise<Measured> {
  const rssFile = path.join(
    opts.scratch,
    `.rss-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  );
  const wrapped =
    opts.probe === 'gnu-time'
      ? ['/usr/bin/time', '-f', '%M %U %S', '-o', rssFile, ...argv]
      : ['python3', '-c', PY_WRAPPER, rssFile, ...argv];
  const started = process.hrtime.bigint();
  const child = spawn(wrapped[0], wrapped.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  current = child;
  // A stalled peer (a full OSD makes radosgw hang, not fail) must not stall the bench forever.
  let timedOut = false;
  const timer = opts.timeoutSeconds
    ? setTimeout(() => {
        timedOut = true;
        killGroup(child.pid!);
        setTimeout(() => killGroup(child.pid!, 'SIGKILL'), 3000).unref();
      }, opts.timeoutSeconds * 1000)
    : undefined;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearTimeout(timer);
  current = undefined;
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  let kib = NaN;
  let cpuSeconds = NaN;
  if (existsSync(rssFile)) {
    // GNU time writes "Command exited with non-zero status N" above the values on failure: they are last.
    const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
    const [maxRss, user, system] = lines[lines.length - 1].split(' ').map(Number);
    kib = maxRss;
    cpuSeconds = user + system;
    rmSync(rssFile, { force: true });
  }
  if (timedOut) throw new CommandError(argv, code, `${stderr}\n(killed after ${opts.timeoutSeconds} s)`);
  if (code !== 0) throw new CommandError(argv, code, stderr);
  if (!Number.isFinite(kib)) throw new Error(`no peak RSS recorded for ${argv.join(' ')}`);
  return { seconds, peakRss: kib * 1024, cpuSeconds, stdout, stderr };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The AWS SDK's notice that it will want Node 22 in 2027 says nothing about this run; other warnings still print. */
export function quietSdkNotice(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'NodeVersionSupportWarning' && !w.message.startsWith('NodeVersionSupportWarning')) {
      process.stderr.write(`${w.name}: ${w.message}\n`);
    }
  });
}
