import type { MultiBar as MultiBarType, SingleBar } from 'cli-progress';
import type { CopyEvent } from '../copy';

export interface Progress {
  /** Starts a display for one image; returns the event sink for its copy. */
  image(label: string): (event: CopyEvent) => void;
  /** Ends the display of one image. A failure's line is printed even with no progress display: it is not progress. */
  done(label: string, line: string, failed?: boolean): void;
  stop(): void;
}

/** Without a progress display, a failed image still gets its line on stderr, like any other failure. */
const failureLine = (_label: string, line: string, failed?: boolean) => {
  if (failed) process.stderr.write(`imagevault: ${line}\n`);
};

/** Progress goes to stderr, data to stdout: piping `--json` output stays clean. */
export function createProgress(mode: 'bars' | 'lines' | 'none'): Progress {
  if (mode === 'none') return { image: () => () => undefined, done: failureLine, stop: () => undefined };
  if (mode === 'lines') {
    return {
      image: () => () => undefined,
      done: (_label, line) => process.stderr.write(`${line}\n`),
      stop: () => undefined,
    };
  }
  // Loaded only when bars are drawn (a terminal): --json and scripted runs skip its start-up cost.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MultiBar, Presets } = require('cli-progress') as typeof import('cli-progress');
  const multi: MultiBarType = new MultiBar(
    {
      stream: process.stderr,
      format: ' {bar} {percentage}% | {value}/{total} MiB | {label}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      forceRedraw: true,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;
  return {
    image(label) {
      // Totals grow as the walk discovers content: a graph's size is not known until its manifests are read.
      let total = 0;
      let done = 0;
      const bar = multi.create(1, 0, { label });
      bars.set(label, bar);
      return (e) => {
        if (e.type === 'start') total += e.descriptor.size;
        else if (e.type === 'skip' || e.type === 'mount') {
          total += e.descriptor.size;
          done += e.descriptor.size;
        } else if (e.type === 'progress') done += e.bytes;
        else return;
        bar.setTotal(Math.max(mib(total), 0.1));
        bar.update(mib(done), { label });
      };
    },
    done(label, line) {
      const bar = bars.get(label);
      bar?.update(bar.getTotal(), { label: line });
    },
    stop() {
      multi.stop();
    },
  };
}

export interface BulkProgress {
  /** How many images the run will restore. */
  plan(total: number): void;
  /** Starts the display of one image; returns the event sink for its copy. */
  image(label: string): (event: CopyEvent) => void;
  /** Ends one image with its line; the overall count moves on. A failure's line is printed in every mode. */
  done(label: string, line: string, failed?: boolean): void;
  stop(): void;
}

/**
 * Progress of a bulk restore on stderr: images done of total and bytes copied. On a terminal, an overall bar
 * plus one bar per image in flight (gone when it ends, its line printed above); otherwise one line per image.
 */
export function createBulkProgress(mode: 'bars' | 'lines' | 'none'): BulkProgress {
  let total = 0;
  let finished = 0;
  let bytes = 0;
  const count = (e: CopyEvent) => {
    if (e.type === 'progress') bytes += e.bytes;
  };
  const mib = (n: number) => (n / 1048576).toFixed(1);
  if (mode === 'none') {
    return {
      plan: () => undefined,
      image: () => () => undefined,
      done: failureLine,
      stop: () => undefined,
    };
  }
  if (mode === 'lines') {
    return {
      plan(n) {
        total = n;
        process.stderr.write(`restoring ${n} images\n`);
      },
      image: () => count,
      done(_label, line) {
        finished++;
        process.stderr.write(`[${finished}/${total}, ${mib(bytes)} MiB] ${line}\n`);
      },
      stop: () => undefined,
    };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MultiBar, Presets } = require('cli-progress') as typeof import('cli-progress');
  const multi: MultiBarType = new MultiBar(
    {
      stream: process.stderr,
      format: ' {bar} {value}/{total} {label}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      forceRedraw: true,
    },
    Presets.shades_classic,
  );
  const overall = multi.create(1, 0, { label: 'images' });
  const bars = new Map<string, SingleBar>();
  const redrawOverall = () => overall.update(finished, { label: `images, ${mib(bytes)} MiB copied` });
  return {
    plan(n) {
      total = n;
      overall.setTotal(Math.max(n, 1));
      redrawOverall();
    },
    image(label) {
      let size = 0;
      let done = 0;
      const bar = multi.create(1, 0, { label });
      bars.set(label, bar);
      return (e) => {
        count(e);
        if (e.type === 'start') size += e.descriptor.size;
        else if (e.type === 'skip' || e.type === 'mount') {
          size += e.descriptor.size;
          done += e.descriptor.size;
        } else if (e.type === 'progress') done += e.bytes;
        else return;
        // Per-image bars count KiB: most images here are small, and a whole number reads better than 0.0.
        bar.setTotal(Math.max(Math.ceil(size / 1024), 1));
        bar.update(Math.floor(done / 1024), { label: `KiB ${label}` });
        redrawOverall();
      };
    },
    done(label, line) {
      finished++;
      const bar = bars.get(label);
      if (bar) {
        multi.remove(bar);
        bars.delete(label);
      }
      multi.log(`${line}\n`);
      redrawOverall();
    },
    stop() {
      multi.stop();
    },
  };
}
