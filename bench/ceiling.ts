/**
 * The S3 ceiling measurements: each a child process running bench/s3-ceiling.ts (see there), bundled and minified
 * as the CLI is (scripts/build-cli.ts), so its process starts as our CLI's does and whole-process times compare.
 */
import * as path from 'node:path';
import { build } from 'esbuild';
import { CLI_BUNDLE_OPTIONS } from '../scripts/cli-bundle-options';
import type { BenchImage } from './fixtures';
import { measure, type RssProbe } from './measure';

const ROOT = path.resolve(__dirname, '..');

/** Bundles bench/NAME.ts (s3-ceiling or node-floor) into `outDir`; returns the file. */
export async function bundleCeiling(outDir: string, name = 's3-ceiling'): Promise<string> {
  const outfile = path.join(outDir, `${name}.js`);
  await build({ ...CLI_BUNDLE_OPTIONS, entryPoints: [path.join(ROOT, 'bench', `${name}.ts`)], outfile });
  return outfile;
}

/** One child's figures: whole process (wall time, peak RSS) and the work alone, as the child timed it. */
export interface CeilingRun {
  seconds: number;
  workSeconds: number;
  bytes: number;
  peakRss: number;
  /** CPU seconds of the whole process, user + system. */
  cpuSeconds: number;
  digest?: string;
}

export interface ChildOptions {
  script: string;
  probe: RssProbe;
  scratch: string;
  env: NodeJS.ProcessEnv;
  timeoutSeconds: number;
  /** Put before node, e.g. `taskset -c 0`. @default none */
  wrap?: string[];
}

/** The image's blobs as the child takes them: the manifest with its media type (it is read as a manifest). */
function blobsArg(img: BenchImage): string {
  return JSON.stringify(
    img.blobs.map((b) => (b.digest === img.digest ? { ...b, mediaType: img.mediaType } : b)),
  );
}

async function child(o: ChildOptions, args: string[]): Promise<CeilingRun> {
  const m = await measure([...(o.wrap ?? []), process.execPath, o.script, ...args], {
    probe: o.probe,
    scratch: o.scratch,
    env: o.env,
    cwd: o.scratch,
    timeoutSeconds: o.timeoutSeconds,
  });
  const out = JSON.parse(m.stdout) as { seconds: number; bytes: number; digest?: string };
  return {
    seconds: m.seconds,
    workSeconds: out.seconds,
    bytes: out.bytes,
    peakRss: m.peakRss,
    cpuSeconds: m.cpuSeconds,
    digest: out.digest,
  };
}

/** radosgw's ceiling: the image's blob files uploaded with lib-storage's Upload, nothing else. */
export function bareUpload(
  o: ChildOptions,
  img: BenchImage,
  s3Url: string,
  partMiB: number,
  queueSize: number,
): Promise<CeilingRun> {
  return child(o, ['upload', img.layoutDir, blobsArg(img), s3Url, String(partMiB), String(queueSize)]);
}

/** The registry's ceiling: the image's blobs downloaded and thrown away. */
export function bareDownload(
  o: ChildOptions,
  img: BenchImage,
  registry: string,
  repo: string,
): Promise<CeilingRun> {
  return child(o, ['download', registry, repo, blobsArg(img)]);
}

/** Our snapshot through the library with the S3 store's part size and queue depth given (the CLI has no such flags). */
export function librarySnapshot(
  o: ChildOptions,
  ref: string,
  s3Url: string,
  partMiB: number,
  queueSize: number,
): Promise<CeilingRun> {
  return child(o, ['snapshot', ref, s3Url, String(partMiB), String(queueSize)]);
}

/**
 * The Node floor of a snapshot (bench/node-floor.ts, bundled as `o.script`): the image's blobs downloaded, hashed,
 * written and synced into `outDir`, nothing else.
 */
export function nodeFloor(
  o: ChildOptions,
  img: BenchImage,
  registry: string,
  repo: string,
  outDir: string,
  concurrency: number,
): Promise<CeilingRun> {
  return child(o, ['snapshot', registry, repo, blobsArg(img), outDir, String(concurrency)]);
}

/**
 * The Node floor of a restore: the image's blob files read from its OCI layout, hashed and uploaded to `registry`
 * (one POST and one PUT each), then its manifest PUT under `tag`, nothing else.
 */
export function nodeRestoreFloor(
  o: ChildOptions,
  img: BenchImage,
  registry: string,
  repo: string,
  tag: string,
  concurrency: number,
): Promise<CeilingRun> {
  return child(o, ['restore', registry, repo, blobsArg(img), img.layoutDir, String(concurrency), tag]);
}
