/**
 * `npm run bench`: snapshot and restore throughput of the imagevault CLI next to `skopeo copy`, on the same registry
 * and the same images, in one run; MiB/s, ratio and peak RSS of every child process. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE } from '../lib/content/s3';
import { DEFAULT_CONCURRENCY } from '../lib/copy';
import {
  bareDownload,
  bareUpload,
  bundleCeiling,
  nodeFloor,
  nodeRestoreFloor,
  type CeilingRun,
  type ChildOptions,
} from './ceiling';
import { BULK_IMAGES, measureBulk, pushBulkImages, type BulkRow } from './bulk';
import { measureDurability, pushSmallBlobs, SMALL_LAYERS, type DurabilityRow } from './durability';
import { cachedImage, imageSpec, pushImage, type BenchImage } from './fixtures';
import {
  CommandError,
  killCurrentChild,
  measure,
  median,
  onPath,
  pickRssProbe,
  quietSdkNotice,
  type Measured,
  type RssProbe,
} from './measure';
import { createBucket, deletePrefix, registryDigest, Testbed } from './testbed';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'imagevault.js');
const MiB = 1024 * 1024;
const BUCKET = 'imagevault-bench';
const TAG = '1';

interface Options {
  runs: number;
  quick: boolean;
  layers: number;
  layerMib: number;
  bigMib: number;
  refMib: number;
  json?: string;
  s3: boolean;
  build: boolean;
  keep: boolean;
  cache: string;
  cpuProf?: string;
  /** Images in the bulk restore (0: none). */
  bulk: number;
}

type Op = 'snapshot' | 'restore';
/** `ceiling-s3`: a bare lib-storage upload of the image's blobs; `registry-read`: a bare download of them. */
type Side = 'ours-dir' | 'ours-s3' | 'skopeo' | 'ceiling-s3' | 'registry-read' | 'node-floor';

interface Sample {
  op: Op;
  image: string;
  side: Side;
  run: number;
  bytes: number;
  seconds: number;
  mibPerSec: number;
  peakRssMiB: number;
  /**
   * ours: the copy's own duration as the CLI reports it (no process start, module loading or vault set-up); the
   * ceilings: the transfer's own duration as their process reports it (no process start or module loading).
   */
  copySeconds?: number;
}

interface Row {
  op: Op;
  image: string;
  store: 'dir' | 's3';
  oursMiBps: number;
  oursCopyMiBps?: number;
  skopeoMiBps: number;
  /** Snapshots to and restores from a directory: the Node floor (bench/node-floor.ts), whole process, over skopeo. */
  floorRatio?: number;
  ratio: number;
  oursPeakRssMiB: number;
  skopeoPeakRssMiB: number;
  target?: { ratioAtLeast: number; pass: boolean };
}

/** What S3 and the registry give on their own, next to our snapshot to S3 of the same image (medians). */
interface Ceiling {
  image: string;
  /** The S3 store's part size and queue depth, which the bare upload uses too. */
  partMiB: number;
  queueSize: number;
  /** Bare lib-storage upload of the image's blobs from local files: whole process and the upload alone. */
  uploadMiBps: number;
  uploadCopyMiBps: number;
  /** Bare download of the image's blobs from the registry, thrown away: whole process and the download alone. */
  registryReadMiBps: number;
  registryReadCopyMiBps: number;
  oursMiBps: number;
  oursCopyMiBps: number;
  /** ours / the bare upload: whole process to whole process, and copy-only to the upload alone. */
  ofUpload: number;
  copyOfUpload: number;
  /** The side with the lower in-process ceiling: what bounds a copy from one to the other. */
  boundBy: 'S3' | 'registry';
  /** On copy-only / the upload alone: both without process start, which is not an S3 cost. */
  target: { copyOfUploadAtLeast: number; pass: boolean };
}

interface RssRatio {
  op: Op;
  store: 'dir' | 's3';
  big: string;
  reference: string;
  bigPeakRssMiB: number;
  referencePeakRssMiB: number;
  ratio: number;
  target: { atMost: number; pass: boolean };
}

/**
 * Whole process, ours to a directory vault next to skopeo to an OCI layout (the issue's targets), by the image's role:
 * the multi-layer image, the single big layer, the small single layer. The S3 rows have no skopeo to match: their
 * target is the share of radosgw's own ceiling.
 */
const RATIO_TARGETS: Record<
  Op,
  [multi: number | undefined, big: number | undefined, small: number | undefined]
> = {
  snapshot: [1.5, 2.0, 1.0],
  restore: [1.2, undefined, 1.2],
};
/** Ours, largest peak RSS of any row, in MiB. */
const PEAK_RSS_TARGET_MIB = 160;
/** Our snapshot to S3, copy-only, as a share of a bare lib-storage upload of the same bytes (the issue's item). */
const CEILING_TARGET = 0.9;
/** `imagevault --help`, whole process, median: the start-up every command pays before it does anything. */
const STARTUP_TARGET_S = 0.15;
const STARTUP_RUNS = 11;

interface Startup {
  runs: number;
  /** The very first `--help`: no code cache yet, as right after an install. */
  helpFirstSeconds: number;
  helpSeconds: number;
  versionSeconds: number;
  /** `node -e 0`: what any Node program pays, for reference. */
  nodeSeconds: number;
  target: { atMost: number; pass: boolean };
}
/** A measurement slower than this (0.5 MiB/s, plus 2 minutes) is a hang, not a result. */
const timeoutFor = (img: BenchImage) => 120 + (2 * img.bytes) / MiB;
const RSS_TARGET = 1.2;
/** Snapshots each way for the cost of durable writes: cheap ones, so at least this many whatever --runs says. */
const DURABILITY_RUNS = 5;

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench')
    .description('snapshot/restore throughput and peak RSS of imagevault next to skopeo copy')
    .option(
      '--runs <n>',
      'measurements of each scenario; the median MiB/s and the largest RSS are reported',
      int,
    )
    .option('--quick', 'small images (16 × 4 MiB, 1 × 128 MiB, RSS reference 1 × 16 MiB) and 1 run', false)
    .option('--layers <n>', 'layers of the multi-layer image', int)
    .option('--layer-mib <n>', 'MiB per layer of the multi-layer image', int)
    .option('--big-mib <n>', 'MiB of the single-layer image', int)
    .option('--ref-mib <n>', 'MiB of the small single-layer image, the reference for the peak RSS ratio', int)
    .option('--json <file>', 'also write every sample and the summary as JSON')
    .option('--no-s3', 'directory store only (no radosgw)')
    .option('--no-build', 'use dist/ as it is (default: npm run build first)')
    .option('--keep', 'keep the scratch directory (logs, test bed) for a look afterwards', false)
    .option('--cache <dir>', 'fixture cache', path.join(ROOT, '.imagevault', 'bench-cache'))
    .option('--cpu-prof <dir>', 'run our CLI with node --cpu-prof, profiles into this directory')
    .option(
      '--bulk <n>',
      `images in the bulk restore, one restore --all next to a loop of skopeo copies (default ${BULK_IMAGES}; 20 with --quick)`,
      wholeOrZero,
    )
    .showHelpAfterError();
  program.parse(argv);
  const o = program.opts<
    Partial<Options> & { s3: boolean; build: boolean; keep: boolean; quick: boolean; cache: string }
  >();
  const q = o.quick;
  return {
    runs: o.runs ?? (q ? 1 : 3),
    quick: q,
    layers: o.layers ?? 16,
    layerMib: o.layerMib ?? (q ? 4 : 32),
    bigMib: o.bigMib ?? (q ? 128 : 1024),
    refMib: o.refMib ?? (q ? 16 : 64),
    json: o.json && path.resolve(o.json),
    s3: o.s3,
    build: o.build,
    keep: o.keep,
    cache: path.resolve(o.cache),
    cpuProf: o.cpuProf && path.resolve(o.cpuProf),
    bulk: o.bulk ?? (q ? 20 : BULK_IMAGES),
  };
}

function wholeOrZero(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('must be a whole number (0: no bulk restore)');
  return n;
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** What the bench needs; it installs nothing itself. */
function checkTools(opts: Options): RssProbe {
  const need = ['skopeo', 'docker-registry', 'jq', 'curl', 'python3', 'setsid'];
  if (opts.s3) need.push('ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph');
  const missing = need.filter((c) => !onPath(c));
  if (missing.length > 0) {
    throw new SetupError(
      `missing ${missing.join(', ')}: install the test bed first with \`bash scripts/testbed.sh install\` (root or sudo)` +
        (opts.s3 ? ', or run with --no-s3 for the directory store only' : ''),
    );
  }
  const probe = pickRssProbe();
  if (!probe) throw new SetupError('cannot measure peak RSS: neither /usr/bin/time nor python3 is there');
  return probe;
}

class SetupError extends Error {}

function tool(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The CLI's environment: the test bed's S3 settings, and no tsx loader inherited from this process. */
function childEnv(tb: Testbed, work: string): NodeJS.ProcessEnv {
  // A code cache of the bench's own (~/.cache/imagevault otherwise), so every bench starts from none.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...tb.s3ChildEnv(),
    XDG_CACHE_HOME: path.join(work, 'cache'),
  };
  if (env.NODE_OPTIONS?.includes('tsx')) delete env.NODE_OPTIONS;
  delete env.IMAGEVAULT_STORE;
  return env;
}

interface Ctx {
  opts: Options;
  /** The bundled ceiling script (bench/s3-ceiling.ts), with S3 only. */
  ceilingScript?: string;
  floorScript: string;
  tb: Testbed;
  probe: RssProbe;
  work: string;
  env: NodeJS.ProcessEnv;
  samples: Sample[];
}

function record(ctx: Ctx, s: Omit<Sample, 'mibPerSec' | 'peakRssMiB'> & { peakRss: number }): void {
  const { peakRss, ...rest } = s;
  const sample: Sample = { ...rest, mibPerSec: s.bytes / MiB / s.seconds, peakRssMiB: peakRss / MiB };
  ctx.samples.push(sample);
  const extra = sample.copySeconds
    ? `, copy alone ${(s.bytes / MiB / sample.copySeconds).toFixed(0)} MiB/s`
    : '';
  log(
    `  ${s.op.padEnd(8)} ${s.image.padEnd(10)} ${s.side.padEnd(13)} ${sample.mibPerSec.toFixed(0).padStart(5)} MiB/s` +
      ` (${s.seconds.toFixed(2)} s${extra}), peak RSS ${sample.peakRssMiB.toFixed(0)} MiB`,
  );
}

function oursArgv(ctx: Ctx, args: string[]): string[] {
  const prof = ctx.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', ctx.opts.cpuProf] : [];
  return [process.execPath, ...prof, CLI, '--no-progress', '--json', ...args];
}

async function snapshotOurs(
  ctx: Ctx,
  img: BenchImage,
  run: number,
  side: Side,
  store: string,
): Promise<void> {
  const ref = `${ctx.tb.registry}/bench/${img.id}:${TAG}`;
  const m = await measure(oursArgv(ctx, ['--store', store, 'snapshot', ref]), {
    probe: ctx.probe,
    scratch: ctx.work,
    env: ctx.env,
    cwd: ctx.work,
    timeoutSeconds: timeoutFor(img),
  });
  const out = JSON.parse(m.stdout) as {
    snapshots: { descriptor: { digest: string }; copy: { seconds: number } }[];
    failures: unknown[];
  };
  const digest = out.snapshots[0]?.descriptor.digest;
  if (out.failures.length > 0 || digest !== img.digest) {
    throw new Error(
      `our snapshot of ${ref} into ${store} recorded ${digest}, expected ${img.digest}: ${m.stdout}`,
    );
  }
  record(ctx, {
    op: 'snapshot',
    image: img.id,
    side,
    run,
    bytes: img.bytes,
    seconds: m.seconds,
    peakRss: m.peakRss,
    copySeconds: out.snapshots[0].copy.seconds,
  });
}

/** The S3 store's own part size and queue depth (lib/content/s3.ts), so the bare upload uses what ours does. */
function storeUploadSettings(): { partMiB: number; queueSize: number } {
  return { partMiB: DEFAULT_PART_SIZE / MiB, queueSize: DEFAULT_QUEUE_SIZE };
}

/**
 * Runs one of the bench's own child processes (a ceiling or a Node floor) for an image's snapshot or restore and
 * records it, after checking it moved every byte of the image.
 */
async function recordChild(
  ctx: Ctx,
  img: BenchImage,
  run: number,
  side: 'ceiling-s3' | 'registry-read' | 'node-floor',
  script: string,
  start: (o: ChildOptions) => Promise<CeilingRun>,
  op: Op = 'snapshot',
): Promise<void> {
  const o: ChildOptions = {
    script,
    probe: ctx.probe,
    scratch: ctx.work,
    env: ctx.env,
    timeoutSeconds: timeoutFor(img),
  };
  const r = await start(o);
  if (r.bytes !== img.bytes)
    throw new Error(`${side} of ${img.id} moved ${r.bytes} bytes, expected ${img.bytes}`);
  record(ctx, {
    op,
    image: img.id,
    side,
    run,
    bytes: img.bytes,
    seconds: r.seconds,
    peakRss: r.peakRss,
    copySeconds: r.workSeconds,
  });
}

/** The ceilings of one image: a bare upload of its blobs to radosgw, or a bare download of them from the registry. */
async function ceiling(
  ctx: Ctx,
  img: BenchImage,
  run: number,
  side: 'ceiling-s3' | 'registry-read',
  s3Url: string,
) {
  const { partMiB, queueSize } = storeUploadSettings();
  await recordChild(ctx, img, run, side, ctx.ceilingScript!, (o) =>
    side === 'ceiling-s3'
      ? bareUpload(o, img, s3Url, partMiB, queueSize)
      : bareDownload(o, img, ctx.tb.registry, `bench/${img.id}`),
  );
}

/** The Node floor of one image: its blobs downloaded, hashed, written and synced by a minimal process. */
async function floor(ctx: Ctx, img: BenchImage, run: number, dir: string): Promise<void> {
  const outDir = mkdtempSync(path.join(dir, 'floor-'));
  await recordChild(ctx, img, run, 'node-floor', ctx.floorScript, (o) =>
    nodeFloor(o, img, ctx.tb.registry, `bench/${img.id}`, outDir, DEFAULT_CONCURRENCY),
  );
}

/** The Node floor of one image's restore: into a registry of its own, checked as every restore is. */
async function restoreFloor(ctx: Ctx, img: BenchImage, run: number): Promise<void> {
  await intoEmptyRegistry(ctx, img, 'node-floor', (registry, repo) =>
    recordChild(
      ctx,
      img,
      run,
      'node-floor',
      ctx.floorScript,
      (o) => nodeRestoreFloor(o, img, registry, repo, TAG, DEFAULT_CONCURRENCY),
      'restore',
    ),
  );
}

async function snapshotSkopeo(ctx: Ctx, img: BenchImage, run: number, ociDir: string): Promise<void> {
  const ref = `${ctx.tb.registry}/bench/${img.id}:${TAG}`;
  const m = await measure(
    ['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${ociDir}:x`],
    { probe: ctx.probe, scratch: ctx.work, cwd: ctx.work, timeoutSeconds: timeoutFor(img) },
  );
  const index = JSON.parse(readFileSync(path.join(ociDir, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  if (index.manifests[0]?.digest !== img.digest) {
    throw new Error(`skopeo copied ${ref} as ${index.manifests[0]?.digest}, expected ${img.digest}`);
  }
  record(ctx, {
    op: 'snapshot',
    image: img.id,
    side: 'skopeo',
    run,
    bytes: img.bytes,
    seconds: m.seconds,
    peakRss: m.peakRss,
  });
}

/**
 * Runs one restore of `img` into a registry of its own (empty, so nothing is skipped), then checks the digest the
 * registry reports for it: every side's restore, ours, skopeo's and the Node floor's, is held to the same check.
 */
async function intoEmptyRegistry(
  ctx: Ctx,
  img: BenchImage,
  side: Side,
  restoreInto: (registry: string, repo: string) => Promise<void>,
): Promise<void> {
  const repo = `bench/${img.id}`;
  const fresh = ctx.tb.freshRegistry();
  try {
    await restoreInto(fresh.registry, repo);
    const reported = await registryDigest(fresh.registry, repo, TAG);
    if (reported !== img.digest) {
      throw new Error(
        `after the ${side} restore, ${fresh.registry}/${repo}:${TAG} reports ${reported}, expected ${img.digest}`,
      );
    }
  } finally {
    fresh.stop();
  }
}

/** Restores with skopeo or ours, each into an empty registry, and records it once the registry reports the image. */
async function restore(ctx: Ctx, img: BenchImage, run: number, side: Side, source: string): Promise<void> {
  let m: Measured | undefined;
  let copySeconds: number | undefined;
  await intoEmptyRegistry(ctx, img, side, async (registry, repo) => {
    const dest = `${registry}/${repo}:${TAG}`;
    if (side === 'skopeo') {
      m = await measure(
        ['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${source}:x`, `docker://${dest}`],
        {
          probe: ctx.probe,
          scratch: ctx.work,
          cwd: ctx.work,
          timeoutSeconds: timeoutFor(img),
        },
      );
    } else {
      m = await measure(oursArgv(ctx, ['--store', source, 'restore', `${repo}:${TAG}`, '--to', dest]), {
        probe: ctx.probe,
        scratch: ctx.work,
        env: ctx.env,
        cwd: ctx.work,
        timeoutSeconds: timeoutFor(img),
      });
      const out = JSON.parse(m.stdout) as { verifiedDigest?: string; copy: { seconds: number } };
      if (out.verifiedDigest !== img.digest) {
        throw new Error(`our restore to ${dest} verified ${out.verifiedDigest}, expected ${img.digest}`);
      }
      copySeconds = out.copy.seconds;
    }
  });
  record(ctx, {
    op: 'restore',
    image: img.id,
    side,
    run,
    bytes: img.bytes,
    seconds: m!.seconds,
    peakRss: m!.peakRss,
    copySeconds,
  });
}

/** Start-up of the CLI as installed (dist/cli is what the package holds), next to Node's own, in turn. */
async function startup(ctx: Ctx): Promise<Startup> {
  const time = async (argv: string[]) =>
    (await measure(argv, { probe: ctx.probe, scratch: ctx.work, env: ctx.env, cwd: ctx.work })).seconds;
  const help = [process.execPath, CLI, '--help'];
  const helpFirstSeconds = await time(help);
  const node: number[] = [];
  const helps: number[] = [];
  const versions: number[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    node.push(await time([process.execPath, '-e', '0']));
    helps.push(await time(help));
    versions.push(await time([process.execPath, CLI, '--version']));
  }
  const helpSeconds = median(helps);
  log(
    `  start-up: --help ${helpSeconds.toFixed(3)} s (first ${helpFirstSeconds.toFixed(3)} s), node -e 0 ${median(node).toFixed(3)} s`,
  );
  return {
    runs: STARTUP_RUNS,
    helpFirstSeconds,
    helpSeconds,
    versionSeconds: median(versions),
    nodeSeconds: median(node),
    target: { atMost: STARTUP_TARGET_S, pass: helpSeconds <= STARTUP_TARGET_S },
  };
}

/** One round over one image: every snapshot, then every restore, each in a fresh target; ours/skopeo alternate. */
async function round(ctx: Ctx, img: BenchImage, run: number): Promise<void> {
  const dir = mkdtempSync(path.join(ctx.work, `run${run}-${img.id}-`));
  const ociDir = path.join(dir, 'skopeo-oci');
  const vaultUrl = `file://${path.join(dir, 'vault')}`;
  const prefix = `run${run}-${img.id}-${path.basename(dir).split('-').pop()}`;
  const s3Url = `s3://${BUCKET}/${prefix}`;
  // The bare upload's keys, apart from the vault's.
  const ceilingPrefix = `${prefix}-ceiling`;
  const client = ctx.opts.s3 ? ctx.tb.s3Client() : undefined;
  try {
    type Step = () => Promise<void>;
    const snaps: Step[] = [
      () => snapshotSkopeo(ctx, img, run, ociDir),
      () => snapshotOurs(ctx, img, run, 'ours-dir', vaultUrl),
      () => floor(ctx, img, run, dir),
      ...(ctx.opts.s3
        ? [
            () => snapshotOurs(ctx, img, run, 'ours-s3', s3Url),
            () => ceiling(ctx, img, run, 'ceiling-s3', `s3://${BUCKET}/${ceilingPrefix}`),
            () => ceiling(ctx, img, run, 'registry-read', ''),
          ]
        : []),
    ];
    const restores: Step[] = [
      () => restore(ctx, img, run, 'skopeo', ociDir),
      () => restore(ctx, img, run, 'ours-dir', vaultUrl),
      () => restoreFloor(ctx, img, run),
      ...(ctx.opts.s3 ? [() => restore(ctx, img, run, 'ours-s3', s3Url)] : []),
    ];
    // Odd runs go in the opposite order, so a slow spell of the machine does not always hit the same side.
    for (const step of run % 2 === 0 ? snaps : [...snaps].reverse()) await step();
    for (const step of run % 2 === 0 ? restores : [...restores].reverse()) await step();
  } finally {
    if (!ctx.opts.keep) {
      rmSync(dir, { recursive: true, force: true });
      if (client) {
        for (const p of [prefix, ceilingPrefix]) {
          await deletePrefix(client, BUCKET, p).catch((e: Error) =>
            log(`cleaning s3://${BUCKET}/${p}: ${e.message}`),
          );
        }
        ctx.tb.collectGarbage();
      }
    }
    client?.destroy();
  }
}

function summarize(
  opts: Options,
  images: BenchImage[],
  samples: Sample[],
): { rows: Row[]; rss: RssRatio[]; ceilings: Ceiling[] } {
  const pick = (op: Op, image: string, side: Side) =>
    samples.filter((s) => s.op === op && s.image === image && s.side === side);
  const rows: Row[] = [];
  const [, big, ref] = images;
  for (const op of ['snapshot', 'restore'] as Op[]) {
    for (const img of images) {
      const sk = pick(op, img.id, 'skopeo');
      for (const store of opts.s3 ? (['dir', 's3'] as const) : (['dir'] as const)) {
        const ours = pick(op, img.id, store === 'dir' ? 'ours-dir' : 'ours-s3');
        if (ours.length === 0 || sk.length === 0) continue;
        const o = median(ours.map((s) => s.mibPerSec));
        const k = median(sk.map((s) => s.mibPerSec));
        const copy = ours.filter((s) => s.copySeconds).map((s) => s.bytes / MiB / s.copySeconds!);
        const ratioTarget = store === 'dir' ? RATIO_TARGETS[op][images.indexOf(img)] : undefined;
        const floors = store === 'dir' ? pick(op, img.id, 'node-floor') : [];
        rows.push({
          op,
          image: img.id,
          store,
          oursMiBps: o,
          oursCopyMiBps: copy.length ? median(copy) : undefined,
          skopeoMiBps: k,
          floorRatio: floors.length ? median(floors.map((s) => s.mibPerSec)) / k : undefined,
          ratio: o / k,
          oursPeakRssMiB: Math.max(...ours.map((s) => s.peakRssMiB)),
          skopeoPeakRssMiB: Math.max(...sk.map((s) => s.peakRssMiB)),
          target:
            ratioTarget === undefined ? undefined : { ratioAtLeast: ratioTarget, pass: o / k >= ratioTarget },
        });
      }
    }
  }
  const rss: RssRatio[] = [];
  for (const row of rows.filter((r) => r.image === big.id)) {
    const reference = rows.find((r) => r.op === row.op && r.store === row.store && r.image === ref.id);
    if (!reference) continue;
    const ratio = row.oursPeakRssMiB / reference.oursPeakRssMiB;
    rss.push({
      op: row.op,
      store: row.store,
      big: big.id,
      reference: ref.id,
      bigPeakRssMiB: row.oursPeakRssMiB,
      referencePeakRssMiB: reference.oursPeakRssMiB,
      ratio,
      target: { atMost: RSS_TARGET, pass: ratio <= RSS_TARGET },
    });
  }
  return { rows, rss, ceilings: summarizeCeilings(images, samples) };
}

function summarizeCeilings(images: BenchImage[], samples: Sample[]): Ceiling[] {
  const ceilings: Ceiling[] = [];
  for (const img of images) {
    const of = (side: Side) =>
      samples.filter((s) => s.op === 'snapshot' && s.image === img.id && s.side === side);
    const whole = (xs: Sample[]) => median(xs.map((s) => s.mibPerSec));
    const alone = (xs: Sample[]) => median(xs.map((s) => s.bytes / MiB / s.copySeconds!));
    const [up, read, ours] = [of('ceiling-s3'), of('registry-read'), of('ours-s3')];
    if (up.length === 0 || read.length === 0 || ours.length === 0) continue;
    const copyOfUpload = alone(ours) / alone(up);
    ceilings.push({
      image: img.id,
      ...storeUploadSettings(),
      uploadMiBps: whole(up),
      uploadCopyMiBps: alone(up),
      registryReadMiBps: whole(read),
      registryReadCopyMiBps: alone(read),
      oursMiBps: whole(ours),
      oursCopyMiBps: alone(ours),
      ofUpload: whole(ours) / whole(up),
      copyOfUpload,
      boundBy: alone(up) <= alone(read) ? 'S3' : 'registry',
      target: { copyOfUploadAtLeast: CEILING_TARGET, pass: copyOfUpload >= CEILING_TARGET },
    });
  }
  return ceilings;
}

function ceilingTable(ceilings: Ceiling[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  const f0 = (n: number) => n.toFixed(0);
  return table(
    [
      'snapshot → S3 vs ceilings (MiB/s, median)',
      'bare upload',
      'alone',
      'registry read',
      'alone',
      'ours',
      'copy-only',
      'ours % of upload',
      'copy-only %',
      'bound by',
      'target',
    ],
    ceilings.map((c) => [
      `${c.image} (parts ${c.partMiB} MiB × ${c.queueSize})`,
      f0(c.uploadMiBps),
      f0(c.uploadCopyMiBps),
      f0(c.registryReadMiBps),
      f0(c.registryReadCopyMiBps),
      f0(c.oursMiBps),
      f0(c.oursCopyMiBps),
      pct(c.ofUpload),
      pct(c.copyOfUpload),
      c.boundBy,
      `${c.target.pass ? 'PASS' : 'MISS'} (copy-only ≥ ${pct(c.target.copyOfUploadAtLeast)})`,
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7, 8]),
  );
}

function table(header: string[], body: string[][], right: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

function bulkTable(b: BulkRow): string {
  const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  return table(
    [
      'bulk restore, whole process (median)',
      'ours s',
      'skopeo loop s',
      'speed-up',
      'ours peak RSS',
      'skopeo peak RSS',
      'target',
    ],
    [
      [
        `${b.images} images sharing base layers (${mib(b.bytes)}; ${mib(b.uniqueBytes)} distinct)`,
        b.oursSeconds.toFixed(2),
        b.skopeoSeconds.toFixed(2),
        `${b.speedup.toFixed(2)}×`,
        `${b.oursPeakRssMiB.toFixed(0)} MiB`,
        `${b.skopeoPeakRssMiB.toFixed(0)} MiB`,
        `${b.target.pass ? 'PASS' : 'MISS'} (≥ ${b.target.speedupAtLeast.toFixed(1)}×)`,
      ],
    ],
    new Set([1, 2, 3, 4, 5]),
  );
}

function durabilityTable(rows: DurabilityRow[]): string {
  return table(
    ['durable directory writes (median)', 'blobs', 'MiB', 'durable s', 'without syncs s', 'ratio'],
    rows.map((r) => [
      r.scenario,
      String(r.blobs),
      (r.bytes / MiB).toFixed(1),
      r.durableSeconds.toFixed(3),
      r.unsyncedSeconds.toFixed(3),
      `${r.ratio.toFixed(2)}×`,
    ]),
    new Set([1, 2, 3, 4, 5]),
  );
}

function report(
  opts: Options,
  images: BenchImage[],
  rows: Row[],
  rss: RssRatio[],
  start: Startup,
  durability: DurabilityRow[],
  ceilings: Ceiling[],
  bulk: BulkRow | undefined,
): string {
  const f0 = (n: number) => n.toFixed(0);
  const scenario = (r: Row) =>
    `${r.op} ${r.image} ${r.op === 'snapshot' ? `→ ${r.store === 'dir' ? 'dir' : 'S3'}` : `from ${r.store === 'dir' ? 'dir' : 'S3'}`}`;
  const verdict = (r: Row) =>
    r.target
      ? `${r.target.pass ? 'PASS' : 'MISS'} (≥ ${r.target.ratioAtLeast.toFixed(1)}×)`
      : r.image === images[2].id
        ? 'RSS reference'
        : '–';
  const main = table(
    [
      'scenario',
      'ours MiB/s',
      'ours copy-only MiB/s',
      'skopeo MiB/s',
      'ratio',
      'Node floor ratio',
      'ours peak RSS',
      'skopeo peak RSS',
      'target',
    ],
    rows.map((r) => [
      scenario(r),
      f0(r.oursMiBps),
      r.oursCopyMiBps === undefined ? '–' : f0(r.oursCopyMiBps),
      f0(r.skopeoMiBps),
      `${r.ratio.toFixed(2)}×`,
      r.floorRatio === undefined ? '–' : `${r.floorRatio.toFixed(2)}×`,
      `${f0(r.oursPeakRssMiB)} MiB`,
      `${f0(r.skopeoPeakRssMiB)} MiB`,
      verdict(r),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7]),
  );
  const largest = (op: Op, store: 'dir' | 's3') =>
    Math.max(...rows.filter((r) => r.op === op && r.store === store).map((r) => r.oursPeakRssMiB));
  const rssTable = table(
    [
      'ours peak RSS',
      `${images[1].id}`,
      `${images[2].id}`,
      'ratio',
      'target',
      'largest, any image',
      'target',
    ],
    rss.map((r) => [
      `${r.op} ${r.op === 'snapshot' ? '→' : 'from'} ${r.store === 'dir' ? 'dir' : 'S3'}`,
      `${f0(r.bigPeakRssMiB)} MiB`,
      `${f0(r.referencePeakRssMiB)} MiB`,
      `${r.ratio.toFixed(2)}×`,
      `${r.target.pass ? 'PASS' : 'MISS'} (≤ ${r.target.atMost.toFixed(1)}×)`,
      `${f0(largest(r.op, r.store))} MiB`,
      `${largest(r.op, r.store) <= PEAK_RSS_TARGET_MIB ? 'PASS' : 'MISS'} (≤ ${PEAK_RSS_TARGET_MIB} MiB)`,
    ]),
    new Set([1, 2, 3, 5]),
  );
  const notes = [
    `Images: ${images.map((i) => `${i.id} (${(i.bytes / MiB).toFixed(1)} MiB, gzip layers)`).join(', ')}; ${opts.runs} run${opts.runs > 1 ? 's' : ''} each, median MiB/s, largest peak RSS.`,
    'MiB/s = bytes of the image (layers + config + manifest) / wall time of the whole process (start-up included);',
    '"ours copy-only" = the same bytes / the copy time the CLI reports itself (no process start, module load, vault set-up).',
    'skopeo snapshot = skopeo copy docker://REGISTRY/… oci:FRESH_DIR; skopeo restore = skopeo copy oci:DIR docker://EMPTY_REGISTRY/….',
    `Node floor ratio = a minimal Node process (bench/node-floor.ts, bundled as the CLI is), whole process, over skopeo: a snapshot's`,
    `GETs the blobs, ${DEFAULT_CONCURRENCY} at once, hashes, writes and syncs them into files; a restore's reads the blob files of the`,
    `image's OCI layout, hashes them and uploads each with one POST and one PUT, ${DEFAULT_CONCURRENCY} at once, then PUTs the manifest,`,
    'into an empty registry. It is what any Node CLI pays; ratio ÷ floor ratio = the share of it we reach.',
    ...(opts.s3
      ? [
          'skopeo has no S3 target: the S3 rows compare ours-to/from-S3 with the same skopeo registry↔oci-dir numbers.',
          'S3 ceilings, each its own process (bundled as the CLI is): "bare upload" = the image\'s blob files uploaded',
          'to the same radosgw with lib-storage Upload, our client settings, part size and queue depth, as many blobs',
          'at once as our copy; "registry read" = the same blobs downloaded from the registry and thrown away.',
          '"alone" = the transfer\'s own time, without process start; it is what "copy-only" is compared with (the',
          'target), since the whole-process figures also carry our per-invocation cost (see start-up).',
          '"bound by" = the side with the lower ceiling (alone).',
        ]
      : []),
    'Every restore goes into an empty registry and is checked: the digest the registry reports equals the original.',
    ...(bulk
      ? [
          `Bulk restore: ${bulk.images} images (two shared gzip base layers, 4 and 2 MiB, and 256 KiB of their own), snapshotted`,
          'into a directory vault; ours = one `restore --all --prefix bulk/` process; skopeo = a shell loop of one',
          '`skopeo copy oci:LAYOUT:img-NNN docker://EMPTY_REGISTRY/…` per image; speed-up = skopeo loop / ours.',
        ]
      : []),
    `Before the runs, one untimed round over ${images[2].id} makes the CLI's code cache, as any earlier use would.`,
    `Durable writes: the same snapshot (in this process, library calls) into a fresh directory vault with the store's`,
    `syncs (file before rename, directory after) and without them (unsafe; exists only for this measurement),`,
    `alternating, ${durability[0]?.runs ?? DURABILITY_RUNS} each way; ratio = durable / without (1.00× = free).`,
  ];
  const startTable = table(
    ['start-up (whole process, median)', 'seconds', 'target'],
    [
      [
        'imagevault --help',
        start.helpSeconds.toFixed(3),
        `${start.target.pass ? 'PASS' : 'MISS'} (≤ ${start.target.atMost} s)`,
      ],
      ['imagevault --version', start.versionSeconds.toFixed(3), '–'],
      ['imagevault --help, first run (no code cache)', start.helpFirstSeconds.toFixed(3), '–'],
      ['node -e 0 (Node alone)', start.nodeSeconds.toFixed(3), '–'],
    ],
    new Set([1]),
  );
  const ceilingPart = ceilings.length > 0 ? `${ceilingTable(ceilings)}\n\n` : '';
  const bulkPart = bulk ? `${bulkTable(bulk)}\n\n` : '';
  return `\n${main}\n\n${ceilingPart}${bulkPart}${rssTable}\n\n${startTable}\n\n${durabilityTable(durability)}\n\n${notes.join('\n')}\n`;
}

async function run(opts: Options, cleanup: { tb?: Testbed; work?: string }): Promise<void> {
  const probe = checkTools(opts);
  if (opts.build) {
    log('npm run build');
    try {
      execFileSync('npm', ['run', '--silent', 'build'], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    } catch {
      throw new SetupError(
        'npm run build failed (see above); fix it, or run with --no-build to use dist/ as it is',
      );
    }
  }
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });

  const specs = [imageSpec(opts.layers, opts.layerMib), imageSpec(1, opts.bigMib), imageSpec(1, opts.refMib)];
  mkdirSync(opts.cache, { recursive: true });
  const images: BenchImage[] = [];
  for (const spec of specs) images.push(await cachedImage(opts.cache, spec, log));

  const work = mkdtempSync(path.join(tmpdir(), 'imagevault-bench-'));
  cleanup.work = work;
  const tb = new Testbed(path.join(work, 'testbed'));
  cleanup.tb = tb;
  log(`starting the test bed in ${tb.dir} (registry${opts.s3 ? ' + radosgw' : ''})`);
  tb.start(opts.s3);
  if (opts.s3) {
    const client = tb.s3Client();
    await createBucket(client, BUCKET);
    client.destroy();
  }
  for (const img of images) {
    log(`pushing ${img.id} to ${tb.registry}/bench/${img.id}:${TAG} with skopeo`);
    await pushImage(img, `${tb.registry}/bench/${img.id}:${TAG}`);
  }

  const ceilingScript = opts.s3 ? await bundleCeiling(work) : undefined;
  const floorScript = await bundleCeiling(work, 'node-floor');
  const ctx: Ctx = {
    opts,
    tb,
    probe,
    work,
    ceilingScript,
    floorScript,
    env: childEnv(tb, work),
    samples: [],
  };
  const start = await startup(ctx);
  log(`warm-up: one untimed round over ${images[2].id}`);
  await round({ ...ctx, samples: [] }, images[2], 0);
  const started = Date.now();
  for (let r = 0; r < opts.runs; r++) {
    log(`run ${r + 1} of ${opts.runs}`);
    for (const img of images) await round(ctx, img, r);
  }
  const durabilityRuns = Math.max(DURABILITY_RUNS, opts.runs);
  log(
    `durable writes: ${images[2].id} and ${SMALL_LAYERS} small layers, ${durabilityRuns} snapshots each way`,
  );
  const durability = [
    await measureDurability(
      `1 × ${opts.refMib} MiB layer`,
      `${tb.registry}/bench/${images[2].id}:${TAG}`,
      work,
      durabilityRuns,
    ),
    await measureDurability(
      `${SMALL_LAYERS} × 8 KiB layers`,
      await pushSmallBlobs(tb.registry, work),
      work,
      durabilityRuns,
    ),
  ];
  for (const d of durability)
    log(
      `  ${d.scenario}: durable ${d.durableSeconds.toFixed(3)} s, without syncs ${d.unsyncedSeconds.toFixed(3)} s`,
    );
  let bulk: BulkRow | undefined;
  if (opts.bulk > 0) {
    log(`bulk restore: ${opts.bulk} images sharing base layers, ${opts.runs} runs each way`);
    const images = await pushBulkImages(tb.registry, path.join(work, 'bulk-layout'), opts.bulk);
    bulk = await measureBulk(
      { tb, probe, work, env: ctx.env, cli: [process.execPath, CLI, '--no-progress'] },
      images,
      `file://${path.join(work, 'bulk-vault')}`,
      opts.runs,
    );
    log(`  ours ${bulk.oursSeconds.toFixed(2)} s, skopeo loop ${bulk.skopeoSeconds.toFixed(2)} s`);
  }
  const { rows, rss, ceilings } = summarize(opts, images, ctx.samples);
  process.stdout.write(report(opts, images, rows, rss, start, durability, ceilings, bulk));
  log(`measured in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  if (opts.json) {
    const result = {
      when: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      skopeo: tool('skopeo', ['--version']),
      rssProbe: probe,
      options: { runs: opts.runs, quick: opts.quick, s3: opts.s3 },
      targets: {
        ratioAtLeast: RATIO_TARGETS,
        peakRssMiBAtMost: PEAK_RSS_TARGET_MIB,
        s3CopyOfUploadAtLeast: CEILING_TARGET,
        rssRatioAtMost: RSS_TARGET,
        helpSecondsAtMost: STARTUP_TARGET_S,
      },
      images: images.map(({ id, layers, layerMiB, digest, bytes }) => ({
        id,
        layers,
        layerMiB,
        layerFormat: 'gzip',
        digest,
        bytes,
      })),
      rows,
      rssRatios: rss,
      s3Ceilings: ceilings,
      startup: start,
      durability,
      bulk,
      samples: ctx.samples,
    };
    writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`);
    log(`results written to ${opts.json}`);
  }
}

async function mainBench(): Promise<number> {
  const opts = parseOptions(process.argv);
  quietSdkNotice();
  const cleanup: { tb?: Testbed; work?: string } = {};
  let cleaned = false;
  const clean = () => {
    if (cleaned) return;
    cleaned = true;
    killCurrentChild();
    cleanup.tb?.stop();
    if (cleanup.work) {
      if (opts.keep) log(`kept ${cleanup.work}`);
      else rmSync(cleanup.work, { recursive: true, force: true });
    }
  };
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping the test bed`);
      clean();
      process.exit(code);
    });
  }
  try {
    await run(opts, cleanup);
    return 0;
  } catch (e) {
    if (e instanceof SetupError || e instanceof CommandError) log(e.message);
    else log((e as Error).stack ?? String(e));
    return 1;
  } finally {
    clean();
  }
}

mainBench().then((code) => {
  process.exitCode = code;
});
