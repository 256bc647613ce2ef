import type { MultiBar as MultiBarType, SingleBar } from 'cli-progress';
import type { CopyEvent } from '../copy';

export interface Progress {
  /** Starts a display for one image; returns the event sink for its copy. */
  image(label: string): (event: CopyEvent) => void;
  /** Ends the display of one image. */
  done(label: string, line: string): void;
  stop(): void;
}

/** Progress goes to stderr, data to stdout: piping `--json` output stays clean. */
export function createProgress(mode: 'bars' | 'lines' | 'none'): Progress {
  if (mode === 'none') return { image: () => () => undefined, done: () => undefined, stop: () => undefined };
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
