/**
 * `npm run bench:s3`: the S3 store's part size and queue depth, chosen by measurement. For each part size × queue
 * depth, side by side in one run: radosgw's ceiling (a bare lib-storage Upload of the image's blobs) and our snapshot
 * of the same image from the registry (the library with those settings), each a whole child process with its peak
 * RSS; plus the registry's read ceiling. `--cli` measures the built CLI instead (its defaults), and `--cpus` pins the
 * children to some CPUs (the test bed to the others), for the throughput one vCPU gives. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  bareDownload,
  bareUpload,
  bundleCeiling,
  librarySnapshot,
  type CeilingRun,
  type ChildOptions,
} from './ceiling';
import { cachedImage, imageSpec, pushImage, type BenchImage } from './fixtures';
import { measure, median, pickRssProbe, quietSdkNotice } from './measure';
import { createBucket, deletePrefix, Testbed } from './testbed';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'imagevault.js');
const MiB = 1024 * 1024;
const BUCKET = 'imagevault-sweep';
const TAG = '1';

const log = (msg: string) => process.stderr.write(`bench:s3: ${msg}\n`);

function list(v: string): number[] {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1))
    throw new InvalidArgumentError('a list of positive whole numbers');
  return xs;
}

function images(v: string): { layers: number; layerMib: number }[] {
  return v.split(',').map((s) => {
    // The fixture cache's names (bench/fixtures.ts imageSpec): 1x128mib, 16x4mib, 1x1gib.
    const m = /^(\d+)x(\d+)(mib|gib)$/.exec(s);
    if (!m) throw new InvalidArgumentError(`images are LAYERSxSIZE(mib|gib), e.g. 1x128mib, got ${s}`);
    return { layers: Number(m[1]), layerMib: Number(m[2]) * (m[3] === 'gib' ? 1024 : 1) };
  });
}

const program = new Command('bench:s3')
  .description('S3 part size and queue depth: ceiling and ours side by side; or the CLI on given CPUs')
  .option(
    '--images <list>',
    'images, LAYERSxSIZE as the fixture cache names them (1x128mib, 16x4mib, 1x1gib)',
    images,
    images('1x128mib'),
  )
  .option('--part-mib <list>', 'part sizes to try, MiB', list, [5, 8, 16])
  .option('--queue <list>', 'queue depths to try', list, [2, 4, 8])
  .option('--runs <n>', 'runs of every setting; medians are reported', (v) => list(v)[0], 3)
  .option(
    '--cli',
    'ours = the built CLI with its own defaults (the grid is then only for the ceiling)',
    false,
  )
  .option('--cpus <list>', 'run the measured children with taskset -c LIST, the test bed on the other CPUs')
  .option('--json <file>', 'write every sample and the summary as JSON')
  .option('--cache <dir>', 'fixture cache', path.join(ROOT, '.imagevault', 'bench-cache'));

interface Sample {
  image: string;
  side: 'ceiling' | 'ours' | 'registry-read';
  partMiB?: number;
  queueSize?: number;
  run: number;
  bytes: number;
  seconds: number;
  workSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/** Pins every test bed daemon (registry, ceph, radosgw; all their threads) to the CPUs the measured child is not on. */
function pinTestbed(dir: string, measured: string): void {
  const n = cpus().length;
  const mine = new Set(measured.split(',').map(Number));
  const others = Array.from({ length: n }, (_, i) => i).filter((i) => !mine.has(i));
  if (others.length === 0) throw new Error(`--cpus ${measured} leaves no CPU for the test bed`);
  const pidFiles = [
    ...readdirSync(dir).map((d) => path.join(dir, d, 'pid')),
    ...(existsSync(path.join(dir, 'rgw', 'run'))
      ? readdirSync(path.join(dir, 'rgw', 'run'))
          .filter((f) => f.endsWith('.pid'))
          .map((f) => path.join(dir, 'rgw', 'run', f))
      : []),
  ].filter((f) => existsSync(f));
  for (const f of pidFiles) {
    execFileSync('taskset', ['-a', '-p', '-c', others.join(','), readFileSync(f, 'utf8').trim()], {
      stdio: 'ignore',
    });
  }
  log(
    `test bed (${pidFiles.length} daemons) on CPU ${others.join(',')}, measured children on CPU ${measured}`,
  );
}

async function main(): Promise<void> {
  program.parse(process.argv);
  quietSdkNotice();
  const o = program.opts<{
    images: { layers: number; layerMib: number }[];
    partMib: number[];
    queue: number[];
    runs: number;
    cli: boolean;
    cpus?: string;
    json?: string;
    cache: string;
  }>();
  const probe = pickRssProbe();
  if (!probe) throw new Error('cannot measure peak RSS: neither /usr/bin/time nor python3 is there');
  if (o.cli && !existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  const imgs: BenchImage[] = [];
  for (const s of o.images)
    imgs.push(await cachedImage(path.resolve(o.cache), imageSpec(s.layers, s.layerMib), log));

  const work = mkdtempSync(path.join(tmpdir(), 'imagevault-bench-s3-'));
  const tb = new Testbed(path.join(work, 'testbed'));
  const stop = () => {
    tb.stop();
    rmSync(work, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    tb.start(true);
    if (o.cpus) pinTestbed(tb.dir, o.cpus);
    const client = tb.s3Client();
    await createBucket(client, BUCKET);
    for (const img of imgs) await pushImage(img, `${tb.registry}/bench/${img.id}:${TAG}`);
    const script = await bundleCeiling(work);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...tb.s3ChildEnv(),
      XDG_CACHE_HOME: path.join(work, 'cache'),
    };
    if (env.NODE_OPTIONS?.includes('tsx')) delete env.NODE_OPTIONS;
    const samples: Sample[] = [];
    const settings = o.partMib.flatMap((p) => o.queue.map((q) => ({ partMiB: p, queueSize: q })));
    let n = 0;
    for (const img of imgs) {
      const ref = `${tb.registry}/bench/${img.id}:${TAG}`;
      const co: ChildOptions = {
        script,
        probe,
        scratch: work,
        env,
        timeoutSeconds: 120 + (2 * img.bytes) / MiB,
        wrap: o.cpus ? ['taskset', '-c', o.cpus] : undefined,
      };
      const take = async (
        side: Sample['side'],
        run: number,
        job: (url: string) => Promise<CeilingRun>,
        setting: { partMiB?: number; queueSize?: number } = {},
      ) => {
        const prefix = `s${++n}`;
        try {
          const r = await job(`s3://${BUCKET}/${prefix}`);
          if (r.digest && r.digest !== img.digest)
            throw new Error(`snapshot recorded ${r.digest}, not ${img.digest}`);
          const s: Sample = {
            image: img.id,
            side,
            ...setting,
            run,
            bytes: img.bytes,
            seconds: r.seconds,
            workSeconds: r.workSeconds,
            cpuSeconds: r.cpuSeconds,
            peakRssMiB: r.peakRss / MiB,
          };
          samples.push(s);
          const what = setting.partMiB ? ` ${setting.partMiB} MiB × ${setting.queueSize}` : '';
          log(
            `  ${img.id} ${side}${what}: ${(img.bytes / MiB / s.seconds).toFixed(0)} MiB/s whole, ` +
              `${(img.bytes / MiB / s.workSeconds).toFixed(0)} work alone, ${s.cpuSeconds.toFixed(2)} CPU s, ` +
              `${s.peakRssMiB.toFixed(0)} MiB RSS`,
          );
        } finally {
          await deletePrefix(client, BUCKET, prefix);
          tb.collectGarbage();
        }
      };
      const oursCli = async (url: string): Promise<CeilingRun> => {
        const m = await measure(
          [
            ...(co.wrap ?? []),
            process.execPath,
            CLI,
            '--no-progress',
            '--json',
            '--store',
            url,
            'snapshot',
            ref,
          ],
          { probe, scratch: work, env, cwd: work, timeoutSeconds: co.timeoutSeconds },
        );
        const out = JSON.parse(m.stdout) as {
          snapshots: { descriptor: { digest: string }; copy: { seconds: number } }[];
        };
        const s = out.snapshots[0];
        return {
          seconds: m.seconds,
          workSeconds: s.copy.seconds,
          bytes: img.bytes,
          peakRss: m.peakRss,
          cpuSeconds: m.cpuSeconds,
          digest: s.descriptor.digest,
        };
      };
      for (let run = 0; run < o.runs; run++) {
        log(`${img.id}: run ${run + 1} of ${o.runs}`);
        // Odd runs go through the settings backwards, so a slow spell of the machine does not always hit the same one.
        const order = run % 2 === 0 ? settings : [...settings].reverse();
        await take('registry-read', run, () => bareDownload(co, img, tb.registry, `bench/${img.id}`));
        if (o.cli) await take('ours', run, oursCli);
        for (const s of order) {
          const steps = [
            () => take('ceiling', run, (url) => bareUpload(co, img, url, s.partMiB, s.queueSize), s),
            ...(o.cli
              ? []
              : [() => take('ours', run, (url) => librarySnapshot(co, ref, url, s.partMiB, s.queueSize), s)]),
          ];
          for (const step of run % 2 === 0 ? steps : steps.reverse()) await step();
        }
      }
    }
    client.destroy();
    const summary = summarize(samples);
    process.stdout.write(`\n${report(summary, o)}\n`);
    if (o.json) {
      writeFileSync(
        path.resolve(o.json),
        `${JSON.stringify({ when: new Date().toISOString(), options: o, summary, samples }, null, 2)}\n`,
      );
    }
  } finally {
    stop();
  }
}

interface SummaryRow {
  image: string;
  side: Sample['side'];
  partMiB?: number;
  queueSize?: number;
  runs: number;
  mibPerSec: number;
  workMiBps: number;
  /** Image MiB per CPU second of the whole process: what one fully used vCPU moves, start-up included. */
  mibPerCpuSecond: number;
  peakRssMiB: number;
}

function summarize(samples: Sample[]): SummaryRow[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.image}|${s.side}|${s.partMiB ?? ''}|${s.queueSize ?? ''}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return [...groups.values()].map((g) => ({
    image: g[0].image,
    side: g[0].side,
    partMiB: g[0].partMiB,
    queueSize: g[0].queueSize,
    runs: g.length,
    mibPerSec: median(g.map((s) => s.bytes / MiB / s.seconds)),
    workMiBps: median(g.map((s) => s.bytes / MiB / s.workSeconds)),
    mibPerCpuSecond: median(g.map((s) => s.bytes / MiB / s.cpuSeconds)),
    peakRssMiB: Math.max(...g.map((s) => s.peakRssMiB)),
  }));
}

function report(rows: SummaryRow[], o: { cli: boolean; cpus?: string; runs: number }): string {
  const head = [
    'image',
    'measured',
    'part × queue',
    'MiB/s whole',
    'MiB/s work alone',
    'MiB per CPU s',
    'peak RSS',
    'runs',
  ];
  const body = rows.map((r) => [
    r.image,
    r.side === 'ours'
      ? o.cli
        ? 'ours (CLI)'
        : 'ours (library)'
      : r.side === 'ceiling'
        ? 'bare Upload'
        : 'registry read',
    r.partMiB ? `${r.partMiB} MiB × ${r.queueSize}` : o.cli && r.side === 'ours' ? 'defaults' : '–',
    r.mibPerSec.toFixed(0),
    r.workMiBps.toFixed(0),
    r.mibPerCpuSecond.toFixed(0),
    `${r.peakRssMiB.toFixed(0)} MiB`,
    String(r.runs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) =>
    `| ${c.map((x, i) => (i >= 3 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i >= 3 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [
    line(head),
    rule,
    ...body.map(line),
    '',
    `Medians of ${o.runs} run(s); peak RSS the largest. "whole" = image bytes / wall time of the child process;`,
    '"work alone" = the same bytes / the time the child reports for the transfer (no process start or module loading);',
    '"MiB per CPU s" = the same bytes / the child\'s user + system CPU time (whole process).',
    ...(o.cpus ? [`Measured children pinned to CPU ${o.cpus} (taskset), the test bed to the others.`] : []),
  ].join('\n');
}

main().catch((e: Error) => {
  log(e.stack ?? e.message);
  process.exitCode = 1;
});
